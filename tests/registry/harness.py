"""One harness per registry backend, so every contract test runs against all of them.

A harness opens backends onto one storage; opening another after closing the first is
how tests simulate a restart. PostgreSQL tests use a fresh schema each, dropped after;
they skip when the server is absent, unless ``HEADWATER_REQUIRE_SERVICES=1`` (CI) makes
that a failure (see :func:`tests.log.harness.unavailable`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from headwater.errors import BackendError
from headwater.registry import MemoryRegistryBackend, RegistryBackend, SqliteRegistryBackend
from tests.extras import require_extra
from tests.log.harness import unavailable

START_US = 1_700_000_000_000_000
POSTGRES_URL = os.environ.get("HEADWATER_TEST_POSTGRES_URL",
                              "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Harness:
    """Opens backends over one storage; ``reopen`` simulates a restart."""

    name: str
    make: Callable[[], RegistryBackend]
    opened: list[RegistryBackend] = field(default_factory=list)

    def open(self) -> RegistryBackend:
        backend = self.make()
        self.opened.append(backend)
        return backend

    def reopen(self, backend: RegistryBackend) -> RegistryBackend:
        backend.close()
        return self.open()

    def close(self) -> None:
        for backend in self.opened:
            backend.close()


@contextmanager
def memory_harness(tmp_path: Path) -> Iterator[Harness]:
    backend = MemoryRegistryBackend()
    yield Harness("memory", lambda: backend)


@contextmanager
def sqlite_harness(tmp_path: Path) -> Iterator[Harness]:
    path = tmp_path / "registry.db"
    harness = Harness("sqlite", lambda: SqliteRegistryBackend(path, synchronous="normal"))
    try:
        yield harness
    finally:
        harness.close()


@contextmanager
def postgres_harness(tmp_path: Path) -> Iterator[Harness]:
    require_extra("psycopg", "postgres")
    from headwater.registry.postgres import PostgresRegistryBackend

    schema = f"hwtest_{uuid.uuid4().hex[:12]}"
    try:
        PostgresRegistryBackend(POSTGRES_URL, schema=schema, connect_timeout_s=3).close()
    except BackendError as exc:
        unavailable(f"PostgreSQL at {POSTGRES_URL}: {exc}")
    # Commits need not wait for the disk in tests.
    url = POSTGRES_URL + ("&" if "?" in POSTGRES_URL else "?") + \
        "options=-c%20synchronous_commit%3Doff"
    harness = Harness("postgres", lambda: PostgresRegistryBackend(url, schema=schema))
    try:
        yield harness
    finally:
        harness.close()
        drop_schema(schema)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute("SET synchronous_commit = off")
        connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


HARNESSES = {
    "memory": memory_harness,
    "sqlite": sqlite_harness,
    "postgres": postgres_harness,
}
