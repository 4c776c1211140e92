"""The PostgreSQL registry backend (``pip install 'headwater[postgres]'``, psycopg 3).

Its tables, the same as SQLite's (see :mod:`headwater.registry.sql`), live in one
schema (``headwater`` by default), created on first use under an advisory lock so
that processes starting together do not race. Changes lock the model's row
(``SELECT … FOR UPDATE``), so version numbers and alias moves are serialised per model
across processes and machines. psycopg's errors become
:class:`~headwater.errors.BackendError` naming the server (without its password);
a connection found broken is replaced at the next call.

psycopg is imported when a backend is created, not when this module is, so
``import headwater.registry`` works without it; creating one without it raises
:class:`~headwater.errors.MissingExtraError`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from headwater.errors import BackendError, MissingExtraError, ValidationError
from headwater.locations import redacted
from headwater.registry.sql import Session, SqlBackend

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresRegistryBackend"]

_SCHEMA_NAME: Final = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_TABLES: Final = """
CREATE TABLE models (
    name TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
CREATE TABLE versions (
    model TEXT NOT NULL REFERENCES models (name),
    version BIGINT NOT NULL,
    parent BIGINT,
    sha256 TEXT NOT NULL,
    files BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    status_at BIGINT NOT NULL,
    lineage TEXT NOT NULL,
    PRIMARY KEY (model, version),
    FOREIGN KEY (model, parent) REFERENCES versions (model, version)
);
CREATE INDEX versions_by_parent ON versions (model, parent);
CREATE TABLE aliases (
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES versions (model, version)
);
CREATE TABLE alias_moves (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model TEXT NOT NULL REFERENCES models (name),
    alias TEXT NOT NULL,
    from_version BIGINT,
    to_version BIGINT,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX alias_moves_by_alias ON alias_moves (model, alias, seq);
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;
CREATE TRIGGER versions_immutable BEFORE UPDATE OF
    model, version, parent, sha256, files, bytes, created_at, lineage ON versions
    FOR EACH ROW EXECUTE FUNCTION refuse_change('model versions are immutable');
CREATE TRIGGER versions_kept BEFORE DELETE ON versions
    FOR EACH ROW EXECUTE FUNCTION refuse_change('model versions are never deleted');
CREATE TRIGGER alias_moves_append_only BEFORE UPDATE OR DELETE ON alias_moves
    FOR EACH ROW EXECUTE FUNCTION refuse_change('the alias history is append-only');
"""

# Added since the first schema: (a table, the statements that create it). A schema
# made before a table existed gains it when a backend next connects, under the same
# advisory lock as the first creation.
_MIGRATIONS: Final = (
    ("trust_changes", """
CREATE TABLE trust_changes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    trusted BOOLEAN NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE TRIGGER trust_changes_append_only BEFORE UPDATE OR DELETE ON trust_changes
    FOR EACH ROW EXECUTE FUNCTION refuse_change('the trust history is append-only');
"""),
    ("leases", """
CREATE TABLE leases (
    model TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
"""),
)


class _Session:
    def __init__(self, connection: psycopg.Connection[tuple[Any, ...]]) -> None:
        self._connection = connection

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        cursor = self._connection.execute(sql.replace("?", "%s"), params)
        return cursor.fetchall() if cursor.description is not None else []


class PostgresRegistryBackend(SqlBackend):
    """The registry backend in schema ``schema`` of the PostgreSQL database at ``url``
    (``postgresql://user@host:port/database``)."""

    for_update = " FOR UPDATE"
    # Each step of a lineage query is an index lookup. Without statistics (a table never
    # analysed, as after a burst of registrations) the planner may hash-join the whole
    # model at every step, which is quadratic; so lineage queries use index scans only.
    lineage_plan = ("SELECT set_config('enable_hashjoin', 'off', true), "
                    "set_config('enable_mergejoin', 'off', true), "
                    "set_config('enable_bitmapscan', 'off', true), "
                    "set_config('enable_seqscan', 'off', true)")

    def __init__(self, url: str, *, schema: str = "headwater",
                 connect_timeout_s: int = 10) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise MissingExtraError("The PostgreSQL model store", "postgres", "psycopg") from exc
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ValidationError("schema", f"{schema!r} is not a lower-case SQL identifier")
        self._psycopg = psycopg
        self._url = url
        self._schema = schema
        self._timeout = connect_timeout_s
        self._lock = threading.Lock()
        self._connection = self._connect()

    @property
    def schema(self) -> str:
        return self._schema

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Session]:
        with self._lock:
            if self._connection.broken:
                self._connection = self._connect()
            try:
                with self._connection.transaction():
                    yield _Session(self._connection)
            except self._psycopg.Error as exc:
                raise self._failed("", exc) from exc

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """Plain reads run without BEGIN and COMMIT: at read committed, statements in a
        transaction each see their own snapshot anyway, and it saves two round trips."""
        with self._lock:
            if self._connection.broken:
                self._connection = self._connect()
            try:
                yield _Session(self._connection)
            except self._psycopg.Error as exc:
                raise self._failed("", exc) from exc

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            connection = self._psycopg.connect(self._url, autocommit=True,
                                               connect_timeout=self._timeout)
        except self._psycopg.Error as exc:
            raise self._failed("cannot connect: ", exc) from exc
        try:
            with connection.transaction():
                connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                                   (f"headwater.registry.{self._schema}",))
                connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
                connection.execute(f'SET LOCAL search_path TO "{self._schema}"')
                if not _exists(connection, "alias_moves"):
                    connection.execute(_TABLES)
                for table, statements in _MIGRATIONS:
                    if not _exists(connection, table):
                        connection.execute(statements)
            connection.execute(f'SET search_path TO "{self._schema}"')
        except self._psycopg.Error as exc:
            connection.close()
            raise self._failed("cannot create the registry tables: ", exc) from exc
        return connection

    def _failed(self, doing: str, exc: Exception) -> BackendError:
        return BackendError(f"PostgreSQL registry at {_location(self._url)} "
                            f"(schema {self._schema}): {doing}{exc}")


def _exists(connection: psycopg.Connection[tuple[Any, ...]], table: str) -> bool:
    """Whether ``table`` is in the schema on the connection's search path."""
    found = connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()
    return found is not None and found[0] is not None


def _location(url: str) -> str:
    """``url`` without its password, for messages (:func:`headwater.locations.redacted`).

    >>> _location("postgresql://ada:secret@db:5432/ml")
    'postgresql://ada@db:5432/ml'
    """
    return redacted(url)
