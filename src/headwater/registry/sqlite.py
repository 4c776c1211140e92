"""The embedded registry backend: one SQLite file (standard library, no server).

The database runs in WAL mode, so readers never wait for the writer; changes take the
write lock up front (``BEGIN IMMEDIATE``) and wait up to ``timeout_s`` for it, so
several processes can share one file on a local disk (not on a network filesystem:
SQLite's locks are not reliable there). ``synchronous="full"`` (the default) makes a
returned change survive a power cut; ``"normal"`` only a process crash, and is faster.

>>> import tempfile
>>> from headwater.registry import Artifact, Lineage
>>> with tempfile.TemporaryDirectory() as tmp:
...     backend = SqliteRegistryBackend(f"{tmp}/registry.db")
...     _ = backend.add_version("churn", None, Artifact(sha256="0" * 64, files=1, bytes=1),
...                             Lineage(created_at=1))
...     print([m.name for m in backend.models()])
...     backend.close()
['churn']
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final, Literal

from headwater.errors import BackendError
from headwater.registry.sql import Session, SqlBackend

__all__ = ["SqliteRegistryBackend"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    model TEXT NOT NULL REFERENCES models (name),
    version INTEGER NOT NULL,
    parent INTEGER,
    sha256 TEXT NOT NULL,
    files INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    status_at INTEGER NOT NULL,
    lineage TEXT NOT NULL,
    PRIMARY KEY (model, version),
    FOREIGN KEY (model, parent) REFERENCES versions (model, version)
);
CREATE INDEX IF NOT EXISTS versions_by_parent ON versions (model, parent);
CREATE TABLE IF NOT EXISTS aliases (
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES versions (model, version)
);
CREATE TABLE IF NOT EXISTS alias_moves (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL REFERENCES models (name),
    alias TEXT NOT NULL,
    from_version INTEGER,
    to_version INTEGER,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alias_moves_by_alias ON alias_moves (model, alias, seq);
CREATE TABLE IF NOT EXISTS leases (
    model TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS versions_immutable BEFORE UPDATE OF
    model, version, parent, sha256, files, bytes, created_at, lineage ON versions
BEGIN SELECT RAISE(ABORT, 'model versions are immutable'); END;
CREATE TRIGGER IF NOT EXISTS versions_kept BEFORE DELETE ON versions
BEGIN SELECT RAISE(ABORT, 'model versions are never deleted'); END;
CREATE TRIGGER IF NOT EXISTS alias_moves_unchanged BEFORE UPDATE ON alias_moves
BEGIN SELECT RAISE(ABORT, 'the alias history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS alias_moves_kept BEFORE DELETE ON alias_moves
BEGIN SELECT RAISE(ABORT, 'the alias history is append-only'); END;
"""

# Added since the first schema. Every statement is idempotent and runs on every open
# (in the same transaction as the schema), so a registry file made before a table
# existed gains it the first time it is opened.
_MIGRATIONS: Final = """
CREATE TABLE IF NOT EXISTS trust_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    trusted INTEGER NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS trust_changes_unchanged BEFORE UPDATE ON trust_changes
BEGIN SELECT RAISE(ABORT, 'the trust history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS trust_changes_kept BEFORE DELETE ON trust_changes
BEGIN SELECT RAISE(ABORT, 'the trust history is append-only'); END;
"""


class _Session:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._connection.execute(sql, params).fetchall()


def _use_wal(connection: sqlite3.Connection, timeout_s: float) -> None:
    """Switch to write-ahead logging. Two processes opening a new database at once can
    race on the switch, and SQLite reports that as "locked" without waiting on the busy
    timeout, so wait here, up to the same timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SqliteRegistryBackend(SqlBackend):
    """The registry backend in the SQLite file ``path`` (created with its directory)."""

    def __init__(self, path: str | Path, *, synchronous: Literal["full", "normal"] = "full",
                 timeout_s: float = 30.0) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(self._path, timeout=timeout_s,
                                               isolation_level=None, check_same_thread=False)
            self._connection.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            _use_wal(self._connection, timeout_s)
            self._connection.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            self._connection.execute("PRAGMA foreign_keys = ON")
            self._connection.executescript("BEGIN IMMEDIATE;" + _SCHEMA + _MIGRATIONS
                                           + "COMMIT;")
        except (OSError, sqlite3.Error) as exc:
            raise BackendError(f"cannot open the SQLite registry {str(self._path)!r}: {exc}") \
                from exc

    @property
    def path(self) -> Path:
        return self._path

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Session]:
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc
            try:
                yield _Session(self._connection)
            except sqlite3.Error as exc:
                self._connection.execute("ROLLBACK")
                raise self._failed(exc) from exc
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as exc:
                self._connection.execute("ROLLBACK")
                raise self._failed(exc) from exc

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def _failed(self, exc: sqlite3.Error) -> BackendError:
        return BackendError(f"SQLite registry {str(self._path)!r}: {exc}")
