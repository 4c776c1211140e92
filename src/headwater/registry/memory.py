"""An in-memory registry backend, for tests (a public test seam).

Everything lives in this process; several :class:`~headwater.registry.ModelRegistry`
objects over one :class:`MemoryRegistryBackend` see the same models.

>>> from headwater.registry import Artifact, Lineage
>>> backend = MemoryRegistryBackend()
>>> artifact = Artifact(sha256="0" * 64, files=1, bytes=1)
>>> first = backend.add_version("churn", None, artifact, Lineage(created_at=1))
>>> second = backend.add_version("churn", None, artifact, Lineage(parent=1, created_at=2))
>>> [v.version for v in backend.ancestors("churn", 2)]
[1]
"""

from __future__ import annotations

import threading
from collections import defaultdict

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
from headwater.registry.lineage import Lineage
from headwater.registry.records import (
    AliasMove,
    Artifact,
    Lease,
    ModelSummary,
    ModelVersion,
    TrustChange,
    VersionStatus,
)

__all__ = ["MemoryRegistryBackend"]


class MemoryRegistryBackend:
    """The registry backend protocol over dictionaries, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._versions: dict[str, dict[int, ModelVersion]] = {}
        self._children: dict[tuple[str, int], list[int]] = defaultdict(list)
        self._aliases: dict[str, dict[str, int]] = defaultdict(dict)
        self._moves: list[AliasMove] = []
        self._leases: dict[str, Lease] = {}
        self._trust: list[TrustChange] = []

    def add_version(self, model: str, version: int | None, artifact: Artifact,
                    lineage: Lineage, lease: Lease | None = None) -> ModelVersion:
        with self._lock:
            self._check_lease(lease, model)
            known = self._versions.get(model, {})
            if version is None:
                version = max(known, default=0) + 1
            elif version in known:
                raise VersionExistsError(model, version)
            if lineage.parent is not None and lineage.parent not in known:
                raise missing_parent(model, lineage.parent)
            record = ModelVersion(model=model, version=version, artifact=artifact,
                                  lineage=lineage, status_at=lineage.created_at or 0)
            self._versions.setdefault(model, {})[version] = record
            if lineage.parent is not None:
                self._children[model, lineage.parent].append(version)
            return record

    def version(self, model: str, version: int) -> ModelVersion:
        with self._lock:
            known = self._model(model)
            try:
                return known[version]
            except KeyError:
                raise UnknownVersionError(model, version) from None

    def versions(self, model: str) -> list[ModelVersion]:
        with self._lock:
            known = self._model(model)
            return [known[v] for v in sorted(known)]

    def models(self) -> list[ModelSummary]:
        with self._lock:
            return [
                ModelSummary(name=name, versions=len(known), latest=max(known),
                             created_at=min(v.created_at for v in known.values()),
                             updated_at=max(v.created_at for v in known.values()))
                for name, known in sorted(self._versions.items())
            ]

    def ancestors(self, model: str, version: int, limit: int | None = None) -> list[ModelVersion]:
        with self._lock:
            known = self._model(model)
            current = self.version(model, version)
            chain: list[ModelVersion] = []
            while current.parent is not None and (limit is None or len(chain) < limit):
                current = known[current.parent]
                chain.append(current)
            return chain

    def descendants(self, model: str, version: int) -> list[ModelVersion]:
        with self._lock:
            known = self._model(model)
            self.version(model, version)
            found: list[int] = []
            pending = [version]
            while pending:
                children = self._children.get((model, pending.pop()), [])
                found.extend(children)
                pending.extend(children)
            return [known[v] for v in sorted(found)]

    def set_status(self, model: str, version: int, status: VersionStatus,
                   reason: str | None, at: int) -> ModelVersion:
        with self._lock:
            record = self.version(model, version)
            aliased = [a for a, v in self._aliases[model].items() if v == version]
            if status != "candidate" and aliased:
                raise still_aliased(model, version, aliased, status)
            record = msgspec.structs.replace(record, status=status, status_reason=reason,
                                             status_at=at)
            self._versions[model][version] = record
            return record

    def aliases(self, model: str) -> dict[str, int]:
        with self._lock:
            self._model(model)
            return dict(sorted(self._aliases[model].items()))

    def alias(self, model: str, alias: str) -> int:
        with self._lock:
            self._model(model)
            try:
                return self._aliases[model][alias]
            except KeyError:
                raise UnknownAliasError(model, alias) from None

    def move_alias(self, move: AliasMove, lease: Lease | None = None) -> AliasMove:
        with self._lock:
            self._check_lease(lease, move.model)
            self._model(move.model)
            if move.to_version is not None:
                target = self.version(move.model, move.to_version)
                if target.status != "candidate":
                    raise not_candidate(move.model, move.to_version, target.status)
            current = self._aliases[move.model].get(move.alias)
            if current != move.from_version:
                raise moved_meanwhile(move, current)
            recorded = msgspec.structs.replace(move, seq=len(self._moves) + 1)
            self._moves.append(recorded)
            if move.to_version is None:
                del self._aliases[move.model][move.alias]
            else:
                self._aliases[move.model][move.alias] = move.to_version
            return recorded

    def history(self, model: str, alias: str | None = None) -> list[AliasMove]:
        with self._lock:
            self._model(model)
            return [m for m in self._moves
                    if m.model == model and (alias is None or m.alias == alias)]

    def acquire_lease(self, model: str, holder: str, now: int, ttl: int) -> Lease:
        with self._lock:
            lease = grant_lease(self._leases.get(model), model, holder, now, ttl)
            self._leases[model] = lease
            return lease

    def renew_lease(self, lease: Lease, now: int, ttl: int) -> Lease:
        with self._lock:
            self._check_lease(lease)
            renewed = msgspec.structs.replace(lease, expires_at=now + ttl)
            self._leases[lease.model] = renewed
            return renewed

    def release_lease(self, lease: Lease) -> None:
        with self._lock:
            if still_held(lease, self._leases.get(lease.model)):
                self._leases[lease.model] = msgspec.structs.replace(lease, holder="",
                                                                    expires_at=0)

    def lease(self, model: str) -> Lease | None:
        with self._lock:
            current = self._leases.get(model)
            return current if current is not None and current.holder else None

    def _check_lease(self, lease: Lease | None, model: str | None = None) -> None:
        if lease is None:
            return
        if model is not None and lease.model != model:
            raise ValidationError("lease", f"a lease of model {lease.model!r} does not "
                                  f"cover model {model!r}")
        if not still_held(lease, self._leases.get(lease.model)):
            raise lease_lost(lease, self._leases.get(lease.model))
    def change_trust(self, change: TrustChange) -> TrustChange:
        with self._lock:
            recorded = msgspec.structs.replace(change, seq=len(self._trust) + 1)
            self._trust.append(recorded)
            return recorded

    def trust_history(self) -> list[TrustChange]:
        with self._lock:
            return list(self._trust)

    def close(self) -> None:
        pass

    def _model(self, model: str) -> dict[int, ModelVersion]:
        try:
            return self._versions[model]
        except KeyError:
            raise UnknownModelError(model) from None
