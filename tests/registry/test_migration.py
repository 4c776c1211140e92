"""Registries made before a table existed gain it when opened, keeping what they hold.

Each SQL backend keeps its first schema (``_SCHEMA`` for SQLite, ``_TABLES`` for
PostgreSQL) apart from what came after (``_MIGRATIONS``). A registry is made here with
the first schema alone and rows written by hand, as a release before the trust history
left it; opening it with today's backend must keep every record and make the trust
history work — once, however many processes open it at the same time.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.errors import BackendError
from headwater.registry import (
    Lineage,
    LocalArtifacts,
    ModelRegistry,
    RegistryBackend,
    SqliteRegistryBackend,
    encode_lineage,
)
from tests.extras import require_extra
from tests.log.harness import unavailable
from tests.registry.harness import POSTGRES_URL, START_US, drop_schema

SHA = "ab" * 32
ROWS = [
    ("INSERT INTO models (name, created_at) VALUES (?, ?)", ("churn", START_US)),
    ("INSERT INTO versions (model, version, parent, sha256, files, bytes, created_at, status, "
     "status_reason, status_at, lineage) VALUES (?, 1, NULL, ?, 1, 3, ?, 'candidate', NULL, ?, ?)",
     ("churn", SHA, START_US, START_US,
      encode_lineage(Lineage(created_at=START_US, metrics={"auc": 0.8})).decode())),
    ("INSERT INTO aliases (model, alias, version) VALUES (?, 'champion', 1)", ("churn",)),
    ("INSERT INTO alias_moves (model, alias, from_version, to_version, kind, actor, reason, at) "
     "VALUES (?, 'champion', NULL, 1, 'promote', 'ada', 'first', ?)", ("churn", START_US)),
]


def check_kept_and_migrated(backend: RegistryBackend, tmp_path: Path) -> None:
    registry = ModelRegistry(backend, LocalArtifacts(tmp_path / "artifacts", fsync="never"))
    version = registry.get("churn", "champion")
    assert (version.version, version.artifact.sha256) == (1, SHA)
    assert version.lineage.metrics == {"auc": 0.8}
    assert [(m.actor, m.to_version) for m in registry.history("churn")] == [("ada", 1)]
    assert registry.trust_history() == []
    granted = registry.trust(actor="ops", reason="after the upgrade")
    assert registry.trust_history() == [granted]


def test_a_sqlite_registry_from_before_the_trust_history(tmp_path: Path) -> None:
    from headwater.registry import sqlite as module

    path = tmp_path / "registry.db"
    raw = sqlite3.connect(path)
    raw.executescript(module._SCHEMA)
    for statement, params in ROWS:
        raw.execute(statement, params)
    raw.commit()
    assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'trust_changes'"
                       ).fetchall() == []
    raw.close()
    backend = SqliteRegistryBackend(path, synchronous="normal")
    check_kept_and_migrated(backend, tmp_path)
    backend.close()
    again = SqliteRegistryBackend(path, synchronous="normal")  # a second open changes nothing
    assert [c.actor for c in again.trust_history()] == ["ops"]
    again.close()
    raw = sqlite3.connect(path)
    for statement in ("UPDATE trust_changes SET trusted = 0", "DELETE FROM trust_changes"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(statement)
    raw.close()


@pytest.fixture
def old_postgres_schema() -> Iterator[str]:
    """A PostgreSQL schema with the first tables and a few rows, and no trust history."""
    psycopg = require_extra("psycopg", "postgres")
    from headwater.registry import postgres as module

    schema = f"hwtest_{uuid.uuid4().hex[:12]}"
    try:
        raw = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        unavailable(f"PostgreSQL at {POSTGRES_URL}: {exc}")
    try:
        with raw.transaction():
            raw.execute(f'CREATE SCHEMA "{schema}"')
            raw.execute(f'SET LOCAL search_path TO "{schema}"')
            raw.execute(module._TABLES)
            for statement, params in ROWS:
                raw.execute(statement.replace("?", "%s"), params)
        yield schema
    finally:
        raw.close()
        drop_schema(schema)


def test_a_postgres_registry_from_before_the_trust_history(old_postgres_schema: str,
                                                           tmp_path: Path) -> None:
    from headwater.registry.postgres import PostgresRegistryBackend

    opened: list[PostgresRegistryBackend] = []
    failures: list[BaseException] = []

    def connect() -> None:
        try:
            opened.append(PostgresRegistryBackend(POSTGRES_URL, schema=old_postgres_schema))
        except BackendError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=connect) for _ in range(3)]  # processes starting
    for thread in threads:                                           # together migrate once
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    try:
        check_kept_and_migrated(opened[0], tmp_path)
        assert [c.actor for c in opened[1].trust_history()] == ["ops"]
    finally:
        for backend in opened:
            backend.close()
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as raw:
        raw.execute(f'SET search_path TO "{old_postgres_schema}"')
        for statement in ("UPDATE trust_changes SET trusted = false",
                          "DELETE FROM trust_changes"):
            with pytest.raises(psycopg.Error, match="append-only"):
                raw.execute(statement)
