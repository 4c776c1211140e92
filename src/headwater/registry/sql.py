"""The registry backend over SQL, shared by SQLite and PostgreSQL.

Both keep the same five tables::

    models       (name PK, created_at)
    versions     (model, version) PK, parent, sha256, files, bytes, created_at,
                 status, status_reason, status_at, lineage (JSON);
                 (model, parent) references versions and is indexed
    aliases      (model, alias) PK, version      where each alias points now
    alias_moves  seq PK (increasing), model, alias, from_version, to_version,
                 kind, actor, reason, at; indexed by (model, alias, seq)
    leases       model PK, holder ('' when released), epoch, expires_at: the one
                 trainer of each model (see the backend protocol's lease rules)
    trust_changes  seq PK (increasing), kind, trusted, actor, reason, at

Triggers refuse to change a version's identity, artifact or lineage, to delete a
version, and to change or delete an alias move or a trust change, so the histories are
append-only even against hand-written SQL. ``leases`` and ``trust_changes`` came after
the other four: opening a registry made before them adds them (see each backend's
migrations). Ancestors and descendants are ``WITH RECURSIVE`` queries over the parent
index: one query whatever the depth. Every change runs in one transaction that first
locks the model's row (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``SELECT … FOR
UPDATE``), so numbering and alias moves are serialised per model across processes. A
change made under a lease first locks the model's lease row and checks it, so it is
serialised with the lease passing to another holder. Queries are written with ``?``
placeholders.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Final, Protocol

import msgspec

from headwater.errors import (
    UnknownAliasError,
    UnknownModelError,
    UnknownVersionError,
    ValidationError,
    VersionExistsError,
)
from headwater.registry.backend import (
    grant_lease,
    lease_lost,
    missing_parent,
    moved_meanwhile,
    not_candidate,
    still_aliased,
    still_held,
)
from headwater.registry.lineage import Lineage, encode_lineage
from headwater.registry.records import (
    AliasMove,
    Artifact,
    Lease,
    ModelSummary,
    ModelVersion,
    TrustChange,
    VersionStatus,
)

__all__ = ["Session", "SqlBackend"]

_COLUMNS: Final = "v.model, v.version, v.sha256, v.files, v.bytes, v.status, " \
                  "v.status_reason, v.status_at, v.lineage"
_MOVE_COLUMNS: Final = "model, alias, from_version, to_version, kind, actor, reason, at, seq"
_LEASE_COLUMNS: Final = "holder, epoch, expires_at"
_NO_LIMIT: Final = 1 << 62
_LINEAGE: Final = msgspec.json.Decoder(Lineage)

_ANCESTORS: Final = f"""
WITH RECURSIVE chain(version, depth) AS (
    SELECT parent, 1 FROM versions WHERE model = ? AND version = ? AND parent IS NOT NULL
    UNION ALL
    SELECT v.parent, chain.depth + 1 FROM chain
    JOIN versions v ON v.model = ? AND v.version = chain.version
    WHERE v.parent IS NOT NULL AND chain.depth < ?
)
SELECT {_COLUMNS} FROM chain JOIN versions v ON v.model = ? AND v.version = chain.version
ORDER BY chain.depth"""

_DESCENDANTS: Final = f"""
WITH RECURSIVE below(version) AS (
    SELECT version FROM versions WHERE model = ? AND parent = ?
    UNION ALL
    SELECT v.version FROM below JOIN versions v ON v.model = ? AND v.parent = below.version
)
SELECT {_COLUMNS} FROM below JOIN versions v ON v.model = ? AND v.version = below.version
ORDER BY v.version"""


class Session(Protocol):
    """One transaction: run a statement, get its rows (none for most changes)."""

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...


class SqlBackend(ABC):
    """:class:`~headwater.registry.RegistryBackend` over a SQL database."""

    #: Appended to the statement that locks a model's row (``" FOR UPDATE"`` on PostgreSQL).
    for_update: str = ""
    #: A statement run before the recursive lineage queries, in their transaction.
    lineage_plan: str | None = None

    @abstractmethod
    def transaction(self, *, write: bool) -> AbstractContextManager[Session]:
        """A transaction; ``write`` ones are serialised with every other writer."""

    def reading(self) -> AbstractContextManager[Session]:
        """Where plain reads run: a read transaction unless the database gives a
        transaction nothing more than single statements get (PostgreSQL, read committed)."""
        return self.transaction(write=False)

    def add_version(self, model: str, version: int | None, artifact: Artifact,
                    lineage: Lineage, lease: Lease | None = None) -> ModelVersion:
        created = lineage.created_at or 0
        with self.transaction(write=True) as s:
            self._check_lease(s, model, lease)
            s.rows("INSERT INTO models (name, created_at) VALUES (?, ?) "
                   "ON CONFLICT (name) DO NOTHING", (model, created))
            s.rows("SELECT name FROM models WHERE name = ?" + self.for_update, (model,))
            if version is None:
                version = int(s.rows("SELECT COALESCE(MAX(version), 0) + 1 FROM versions "
                                     "WHERE model = ?", (model,))[0][0])
            elif _exists(s, model, version):
                raise VersionExistsError(model, version)
            if lineage.parent is not None and not _exists(s, model, lineage.parent):
                raise missing_parent(model, lineage.parent)
            s.rows("INSERT INTO versions (model, version, parent, sha256, files, bytes, "
                   "created_at, status, status_reason, status_at, lineage) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, 'candidate', NULL, ?, ?)",
                   (model, version, lineage.parent, artifact.sha256, artifact.files,
                    artifact.bytes, created, created, encode_lineage(lineage).decode()))
        return ModelVersion(model=model, version=version, artifact=artifact, lineage=lineage,
                            status_at=created)

    def version(self, model: str, version: int) -> ModelVersion:
        with self.reading() as s:
            return _version(s, model, version)

    def versions(self, model: str) -> list[ModelVersion]:
        with self.reading() as s:
            rows = s.rows(f"SELECT {_COLUMNS} FROM versions v WHERE v.model = ? "
                          "ORDER BY v.version", (model,))
            if not rows:
                raise UnknownModelError(model)
        return [_version_of(row) for row in rows]

    def models(self) -> list[ModelSummary]:
        with self.reading() as s:
            rows = s.rows("SELECT model, COUNT(*), MAX(version), MIN(created_at), "
                          "MAX(created_at) FROM versions GROUP BY model")
        return sorted((ModelSummary(name=r[0], versions=int(r[1]), latest=int(r[2]),
                                    created_at=int(r[3]), updated_at=int(r[4])) for r in rows),
                      key=lambda summary: summary.name)

    def ancestors(self, model: str, version: int, limit: int | None = None) -> list[ModelVersion]:
        depth = _NO_LIMIT if limit is None else limit
        with self.transaction(write=False) as s:
            _check(s, model, version)
            if depth <= 0:
                return []
            if self.lineage_plan:
                s.rows(self.lineage_plan)
            rows = s.rows(_ANCESTORS, (model, version, model, depth, model))
        return [_version_of(row) for row in rows]

    def descendants(self, model: str, version: int) -> list[ModelVersion]:
        with self.transaction(write=False) as s:
            _check(s, model, version)
            if self.lineage_plan:
                s.rows(self.lineage_plan)
            rows = s.rows(_DESCENDANTS, (model, version, model, model))
        return [_version_of(row) for row in rows]

    def set_status(self, model: str, version: int, status: VersionStatus,
                   reason: str | None, at: int) -> ModelVersion:
        with self.transaction(write=True) as s:
            self._lock_model(s, model)
            _check(s, model, version)
            aliased = [r[0] for r in s.rows("SELECT alias FROM aliases WHERE model = ? "
                                            "AND version = ?", (model, version))]
            if status != "candidate" and aliased:
                raise still_aliased(model, version, aliased, status)
            s.rows("UPDATE versions SET status = ?, status_reason = ?, status_at = ? "
                   "WHERE model = ? AND version = ?", (status, reason, at, model, version))
            return _version(s, model, version)

    def aliases(self, model: str) -> dict[str, int]:
        with self.reading() as s:
            _check_model(s, model)
            rows = s.rows("SELECT alias, version FROM aliases WHERE model = ?", (model,))
        return {alias: int(version) for alias, version in sorted(rows)}

    def alias(self, model: str, alias: str) -> int:
        with self.reading() as s:
            rows = s.rows("SELECT version FROM aliases WHERE model = ? AND alias = ?",
                          (model, alias))
            if not rows:
                _check_model(s, model)
                raise UnknownAliasError(model, alias)
        return int(rows[0][0])

    def move_alias(self, move: AliasMove, lease: Lease | None = None) -> AliasMove:
        with self.transaction(write=True) as s:
            self._check_lease(s, move.model, lease)
            self._lock_model(s, move.model)
            if move.to_version is not None:
                status = _version(s, move.model, move.to_version).status
                if status != "candidate":
                    raise not_candidate(move.model, move.to_version, status)
            rows = s.rows("SELECT version FROM aliases WHERE model = ? AND alias = ?",
                          (move.model, move.alias))
            current = int(rows[0][0]) if rows else None
            if current != move.from_version:
                raise moved_meanwhile(move, current)
            seq = s.rows("INSERT INTO alias_moves (model, alias, from_version, to_version, "
                         "kind, actor, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
                         (move.model, move.alias, move.from_version, move.to_version,
                          move.kind, move.actor, move.reason, move.at))[0][0]
            if move.to_version is None:
                s.rows("DELETE FROM aliases WHERE model = ? AND alias = ?",
                       (move.model, move.alias))
            else:
                s.rows("INSERT INTO aliases (model, alias, version) VALUES (?, ?, ?) "
                       "ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version",
                       (move.model, move.alias, move.to_version))
        return msgspec.structs.replace(move, seq=int(seq))

    def history(self, model: str, alias: str | None = None) -> list[AliasMove]:
        where, params = ("model = ?", (model,)) if alias is None else \
            ("model = ? AND alias = ?", (model, alias))
        with self.reading() as s:
            _check_model(s, model)
            rows = s.rows(f"SELECT {_MOVE_COLUMNS} FROM alias_moves WHERE {where} ORDER BY seq",
                          params)
        return [AliasMove(model=r[0], alias=r[1], from_version=r[2], to_version=r[3],
                          kind=r[4], actor=r[5], reason=r[6], at=int(r[7]), seq=int(r[8]))
                for r in rows]

    # -- leases ------------------------------------------------------------------

    def acquire_lease(self, model: str, holder: str, now: int, ttl: int) -> Lease:
        with self.transaction(write=True) as s:
            lease = grant_lease(self._lock_lease(s, model), model, holder, now, ttl)
            s.rows("UPDATE leases SET holder = ?, epoch = ?, expires_at = ? WHERE model = ?",
                   (lease.holder, lease.epoch, lease.expires_at, model))
        return lease

    def renew_lease(self, lease: Lease, now: int, ttl: int) -> Lease:
        with self.transaction(write=True) as s:
            self._check_lease(s, lease.model, lease)
            s.rows("UPDATE leases SET expires_at = ? WHERE model = ?", (now + ttl, lease.model))
        return msgspec.structs.replace(lease, expires_at=now + ttl)

    def release_lease(self, lease: Lease) -> None:
        with self.transaction(write=True) as s:
            if still_held(lease, self._lock_lease(s, lease.model)):
                s.rows("UPDATE leases SET holder = '', expires_at = 0 WHERE model = ?",
                       (lease.model,))

    def lease(self, model: str) -> Lease | None:
        with self.reading() as s:
            rows = s.rows(f"SELECT {_LEASE_COLUMNS} FROM leases WHERE model = ?", (model,))
        current = _lease_of(model, rows)
        return current if current is not None and current.holder else None

    def _lock_lease(self, s: Session, model: str) -> Lease | None:
        s.rows("INSERT INTO leases (model, holder, epoch, expires_at) VALUES (?, '', 0, 0) "
               "ON CONFLICT (model) DO NOTHING", (model,))
        return _lease_of(model, s.rows(f"SELECT {_LEASE_COLUMNS} FROM leases WHERE model = ?"
                                       + self.for_update, (model,)))

    def _check_lease(self, s: Session, model: str, lease: Lease | None) -> None:
        if lease is None:
            return
        if lease.model != model:
            raise ValidationError("lease", f"a lease of model {lease.model!r} does not "
                                  f"cover model {model!r}")
        current = _lease_of(model, s.rows(f"SELECT {_LEASE_COLUMNS} FROM leases WHERE "
                                          "model = ?" + self.for_update, (model,)))
        if not still_held(lease, current):
            raise lease_lost(lease, current)
    def change_trust(self, change: TrustChange) -> TrustChange:
        with self.transaction(write=True) as s:
            seq = s.rows("INSERT INTO trust_changes (kind, trusted, actor, reason, at) "
                         "VALUES (?, ?, ?, ?, ?) RETURNING seq",
                         (change.kind, change.trusted, change.actor, change.reason,
                          change.at))[0][0]
        return msgspec.structs.replace(change, seq=int(seq))

    def trust_history(self) -> list[TrustChange]:
        with self.reading() as s:
            rows = s.rows("SELECT kind, trusted, actor, reason, at, seq FROM trust_changes "
                          "ORDER BY seq")
        return [TrustChange(kind=r[0], trusted=bool(r[1]), actor=r[2], reason=r[3],
                            at=int(r[4]), seq=int(r[5])) for r in rows]

    def _lock_model(self, s: Session, model: str) -> None:
        if not s.rows("SELECT name FROM models WHERE name = ?" + self.for_update, (model,)):
            raise UnknownModelError(model)


def _lease_of(model: str, rows: list[tuple[Any, ...]]) -> Lease | None:
    if not rows:
        return None
    holder, epoch, expires_at = rows[0]
    return Lease(model=model, holder=holder, epoch=int(epoch), expires_at=int(expires_at))


def _exists(s: Session, model: str, version: int) -> bool:
    return bool(s.rows("SELECT 1 FROM versions WHERE model = ? AND version = ?",
                       (model, version)))


def _check_model(s: Session, model: str) -> None:
    if not s.rows("SELECT 1 FROM models WHERE name = ?", (model,)):
        raise UnknownModelError(model)


def _check(s: Session, model: str, version: int) -> None:
    if not _exists(s, model, version):
        _check_model(s, model)
        raise UnknownVersionError(model, version)


def _version(s: Session, model: str, version: int) -> ModelVersion:
    rows = s.rows(f"SELECT {_COLUMNS} FROM versions v WHERE v.model = ? AND v.version = ?",
                  (model, version))
    if not rows:
        _check_model(s, model)
        raise UnknownVersionError(model, version)
    return _version_of(rows[0])


def _version_of(row: tuple[Any, ...]) -> ModelVersion:
    model, version, sha256, files, size, status, reason, status_at, lineage = row
    return ModelVersion(model=model, version=int(version),
                        artifact=Artifact(sha256=sha256, files=int(files), bytes=int(size)),
                        lineage=_LINEAGE.decode(lineage), status=status, status_reason=reason,
                        status_at=int(status_at))
