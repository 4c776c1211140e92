"""What the SQL backends do beyond the contract: optional extras, schema triggers that
keep the history append-only, errors from the server, locations by URL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.config import Settings
from headwater.errors import BackendError, ConfigError, MissingExtraError, ValidationError
from headwater.registry import (
    Artifact,
    Lineage,
    LocalArtifacts,
    MemoryRegistryBackend,
    ModelRegistry,
    SqliteRegistryBackend,
    open_registry,
)
from tests.extras import require_extra
from tests.registry.harness import POSTGRES_URL, Harness, postgres_harness

ARTIFACT = Artifact(sha256="ab" * 32, files=1, bytes=3)


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from headwater.registry.postgres import PostgresRegistryBackend

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'headwater\[postgres\]'") as caught:
        PostgresRegistryBackend(POSTGRES_URL)
    assert caught.value.extra == "postgres"
    assert "The PostgreSQL model store needs the 'psycopg' package" in str(caught.value)
    with pytest.raises(MissingExtraError):
        open_registry("postgresql://nobody@127.0.0.1/db", artifacts=tmp_path)


def test_missing_fsspec_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)
    monkeypatch.setitem(sys.modules, "fsspec.core", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'headwater\[fsspec\]'"):
        open_registry(tmp_path / "r", artifacts="s3://bucket/models")


def test_importing_the_registry_imports_no_optional_dependency() -> None:
    code = ("import sys, headwater.registry; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'fsspec')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_postgres_errors_are_wrapped_without_the_password() -> None:
    require_extra("psycopg", "postgres")
    from headwater.registry.postgres import PostgresRegistryBackend

    with pytest.raises(BackendError, match="cannot connect") as caught:
        PostgresRegistryBackend("postgresql://ada:secret@127.0.0.1:1/db", connect_timeout_s=2)
    assert "secret" not in str(caught.value)
    with pytest.raises(ValidationError, match="schema"):
        PostgresRegistryBackend(POSTGRES_URL, schema="Robert'); DROP TABLE")


def test_locations(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"), fsync="never")
    with open_registry(settings=settings) as registry:
        assert isinstance(registry.backend, SqliteRegistryBackend)
        assert registry.backend.path == tmp_path / "home" / "registry" / "registry.db"
        assert registry.artifacts.location == str(tmp_path / "home" / "registry" / "artifacts")
    with open_registry(f"file://{tmp_path}/r", settings=settings) as registry:
        assert registry.artifacts.location == str(tmp_path / "r" / "artifacts")
    with open_registry("memory://", artifacts=tmp_path / "a", settings=settings) as registry:
        assert isinstance(registry.backend, MemoryRegistryBackend)
    with pytest.raises(ConfigError, match="give the artifact location"):
        open_registry("memory://", settings=settings)
    with pytest.raises(ConfigError, match="unknown scheme"):
        open_registry("ftp://x", settings=settings)


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Harness]:
    with postgres_harness(tmp_path) as harness:
        yield harness


def test_postgres_schema_from_the_url(postgres: Harness, tmp_path: Path) -> None:
    from headwater.registry.postgres import PostgresRegistryBackend

    backend = postgres.open()
    assert isinstance(backend, PostgresRegistryBackend)
    schema = backend.schema
    with open_registry(f"{POSTGRES_URL}?schema={schema}", artifacts=tmp_path / "a",
                       settings=Settings(fsync="never")) as registry:
        assert isinstance(registry.backend, PostgresRegistryBackend)
        assert registry.backend.schema == schema
        assert registry.models() == []


def test_sqlite_history_is_append_only(tmp_path: Path) -> None:
    backend = SqliteRegistryBackend(tmp_path / "r.db", synchronous="normal")
    registry = ModelRegistry(backend, LocalArtifacts(tmp_path / "a", fsync="never"))
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w").write_text("w")
    registry.register("churn", tmp_path / "m")
    registry.promote("churn", 1, actor="a", reason="r")
    backend.close()
    raw = sqlite3.connect(tmp_path / "r.db")
    for statement in ("UPDATE versions SET sha256 = 'x'", "UPDATE versions SET lineage = '{}'",
                      "DELETE FROM versions", "UPDATE alias_moves SET reason = 'x'",
                      "DELETE FROM alias_moves"):
        with pytest.raises(sqlite3.IntegrityError, match=r"immutable|never deleted|append-only"):
            raw.execute(statement)
    raw.execute("UPDATE versions SET status = 'archived'")  # status may change
    raw.close()


def test_postgres_history_is_append_only(postgres: Harness) -> None:
    import psycopg

    from headwater.registry.postgres import PostgresRegistryBackend

    backend = postgres.open()
    assert isinstance(backend, PostgresRegistryBackend)
    backend.add_version("churn", None, ARTIFACT, Lineage(created_at=1))
    schema = backend.schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as raw:
        for statement in ("UPDATE versions SET sha256 = 'x'", "DELETE FROM versions",
                          "UPDATE alias_moves SET reason = 'x'", "DELETE FROM alias_moves"):
            raw.execute(f'SET search_path TO "{schema}"')
            if "alias_moves" in statement:
                raw.execute("INSERT INTO alias_moves (model, alias, from_version, to_version, "
                            "kind, actor, reason, at) VALUES ('churn', 'c', NULL, 1, 'promote', "
                            "'a', 'r', 1)")
            with pytest.raises(psycopg.Error, match=r"immutable|never deleted|append-only"):
                raw.execute(statement)


def test_sqlite_failures_are_backend_errors(tmp_path: Path) -> None:
    (tmp_path / "r.db").write_bytes(b"not a database" * 100)
    with pytest.raises(BackendError, match="SQLite registry"):
        SqliteRegistryBackend(tmp_path / "r.db")


def test_a_second_sqlite_handle_sees_the_first(tmp_path: Path) -> None:
    one = SqliteRegistryBackend(tmp_path / "r.db", synchronous="normal")
    two = SqliteRegistryBackend(tmp_path / "r.db", synchronous="normal")
    one.add_version("churn", None, ARTIFACT, Lineage(created_at=1))
    assert [v.version for v in two.versions("churn")] == [1]
    assert two.add_version("churn", None, ARTIFACT, Lineage(parent=1, created_at=2)).version == 2
    assert one.version("churn", 2).parent == 1
    one.close()
    two.close()
