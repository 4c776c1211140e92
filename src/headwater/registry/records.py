"""The records of the model store: versions, their artifacts, alias moves, summaries,
and the leases of the processes that train a model.

All are frozen msgspec structs; they encode to JSON as they are.

>>> artifact = Artifact(sha256="ab" * 32, files=2, bytes=1024)
>>> version = ModelVersion(model="churn", version=4, artifact=artifact,
...                        lineage=Lineage(parent=3, created_at=10), status_at=10)
>>> version.parent, version.created_at, version.status
(3, 10, 'candidate')
"""

from __future__ import annotations

from typing import Literal

import msgspec

from headwater.registry.lineage import Lineage

__all__ = [
    "AliasMove",
    "Artifact",
    "Lease",
    "ModelSummary",
    "ModelVersion",
    "MoveKind",
    "TrustChange",
    "TrustKind",
    "VersionStatus",
]

VersionStatus = Literal["candidate", "rejected", "archived"]
"""``candidate``: registered and usable (aliases may point at it); ``rejected``: kept,
with the reason, after failing evaluation; ``archived``: retired. Aliases only ever
point at candidates."""

MoveKind = Literal["promote", "rollback", "remove"]
"""How an alias moved: pointed at a version, undid the latest move not yet undone, or
was removed."""


TrustKind = Literal["pickle"]
"""What a registry can be told to trust. ``pickle``: artifacts that can run code when
loaded — the pickle-based formats (``river-pickle``, ``sklearn-pickle``) and skops files
holding types outside skops' trusted list."""


class _Record(msgspec.Struct, frozen=True, gc=False):
    """Not tracked by the garbage collector: records never form cycles."""


class Artifact(_Record, frozen=True, kw_only=True):
    """A stored artifact directory: its content hash and size.

    ``sha256`` is the hex SHA-256 of the directory's manifest (see
    :mod:`headwater.registry.hashing`), which covers every file's path and bytes.
    """

    sha256: str
    files: int
    bytes: int


class ModelVersion(_Record, frozen=True, kw_only=True):
    """One immutable version of a model: its artifact, its lineage and its status.

    Only ``status``, ``status_reason`` and ``status_at`` ever change.
    """

    model: str
    version: int
    artifact: Artifact
    lineage: Lineage
    status: VersionStatus = "candidate"
    status_reason: str | None = None
    status_at: int

    @property
    def parent(self) -> int | None:
        """The version this one was trained from, or ``None``."""
        return self.lineage.parent

    @property
    def created_at(self) -> int:
        """When the version was created (µs since the epoch)."""
        return self.lineage.created_at or 0


class AliasMove(_Record, frozen=True, kw_only=True):
    """One entry of the append-only history of an alias.

    ``from_version`` is where the alias pointed before (``None``: it was not set) and
    ``to_version`` where it points after (``None``: removed). ``seq`` is given by the
    store and increases with every move it records; ``at`` is µs since the epoch.
    """

    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    kind: MoveKind
    actor: str
    reason: str
    at: int
    seq: int = 0


class ModelSummary(_Record, frozen=True, kw_only=True):
    """A model at a glance: how many versions, the latest, first and last creation."""

    name: str
    versions: int
    latest: int
    created_at: int
    updated_at: int


class Lease(_Record, frozen=True, kw_only=True):
    """The lease that makes one process the trainer of a model.

    ``holder`` names the process; ``epoch`` grows by one every time the lease passes to
    another holder, so a write made under an older epoch is known stale; the lease runs
    until ``expires_at`` (µs since the epoch) unless renewed, and may then be taken over.
    """

    model: str
    holder: str
    epoch: int
    expires_at: int
class TrustChange(_Record, frozen=True, kw_only=True):
    """One entry of the append-only history of what a registry trusts: the operator
    ``actor`` granted (``trusted``) or revoked trust in artifacts of ``kind``, at ``at``
    (µs since the epoch), for ``reason``. ``seq`` is given by the store."""

    kind: TrustKind
    trusted: bool
    actor: str
    reason: str
    at: int
    seq: int = 0
