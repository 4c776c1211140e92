"""The protocol a registry metadata backend implements.

A backend keeps the records of the model store — versions with their lineage and
status, aliases and the append-only history of their moves, and the append-only history
of what the registry's operators trust — and answers the lineage queries. Artifacts are
not its business (see :mod:`headwater.registry.artifacts`).
Implementations: SQLite (embedded, the default), PostgreSQL, and in memory (tests); each
passes ``tests/registry/test_contract.py``.

Rules every backend keeps, atomically (whatever other processes do at the same time):

- ``add_version`` numbers a version ``max + 1`` when asked for none, refuses a number
  that exists (:class:`~headwater.errors.VersionExistsError`) and a parent that does
  not (:class:`~headwater.errors.ValidationError` naming ``lineage.parent``). Versions
  are never deleted, and only their status changes.
- ``move_alias`` records the move only if the alias still points at
  ``move.from_version`` (:class:`~headwater.errors.AliasError` otherwise) and the
  target is a ``candidate``; moves are never changed or deleted.
- ``set_status`` refuses to reject or archive a version an alias points at.
- Leases: one holder per model. ``acquire_lease`` grants the lease when nobody holds
  it, when it expired, or to its holder again (the same epoch, extended); a new holder
  gets the next epoch; a live lease of another holder is a
  :class:`~headwater.errors.LeaseHeldError` naming it. ``renew_lease`` extends a lease
  still held under its epoch (expired or not: nobody took it over) and raises
  :class:`~headwater.errors.FencedError` for one taken over; ``release_lease`` lets it
  go at once. ``add_version`` and ``move_alias`` given a ``lease`` make the change only
  if that lease is still held under its epoch, in the same transaction
  (:class:`~headwater.errors.FencedError` otherwise): a process that lost its lease
  never registers or promotes, however long it was paused. Expiry is judged by the
  ``now`` the caller passes (the registry's clock).
- ``change_trust`` appends; trust changes are never changed or deleted.
- Unknown names raise :class:`~headwater.errors.UnknownModelError`,
  :class:`~headwater.errors.UnknownVersionError` or
  :class:`~headwater.errors.UnknownAliasError`.
"""

from __future__ import annotations

from typing import Protocol

from headwater.errors import AliasError, FencedError, LeaseHeldError, ValidationError
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
from headwater.time import format_micros

__all__ = ["RegistryBackend", "grant_lease", "lease_held", "lease_lost", "missing_parent",
           "moved_meanwhile", "not_candidate", "still_aliased", "still_held"]


class RegistryBackend(Protocol):
    """Storage for model versions, lineage, statuses and aliases."""

    def add_version(self, model: str, version: int | None, artifact: Artifact,
                    lineage: Lineage, lease: Lease | None = None) -> ModelVersion:
        """Record a new ``candidate`` version (``lineage.created_at`` is set)."""
        ...

    def version(self, model: str, version: int) -> ModelVersion: ...

    def versions(self, model: str) -> list[ModelVersion]:
        """Every version of ``model``, by number."""
        ...

    def models(self) -> list[ModelSummary]:
        """Every model, by name."""
        ...

    def ancestors(self, model: str, version: int, limit: int | None = None) -> list[ModelVersion]:
        """The parent chain of ``version``, nearest first (at most ``limit``)."""
        ...

    def descendants(self, model: str, version: int) -> list[ModelVersion]:
        """Every version trained, directly or not, from ``version``, by number."""
        ...

    def set_status(self, model: str, version: int, status: VersionStatus,
                   reason: str | None, at: int) -> ModelVersion: ...

    def aliases(self, model: str) -> dict[str, int]:
        """Where each alias of ``model`` points now."""
        ...

    def alias(self, model: str, alias: str) -> int:
        """The version ``alias`` points at."""
        ...

    def move_alias(self, move: AliasMove, lease: Lease | None = None) -> AliasMove:
        """Record ``move`` and apply it; return it with its ``seq``."""
        ...

    def history(self, model: str, alias: str | None = None) -> list[AliasMove]:
        """The moves of one alias (or of all of them), oldest first."""
        ...

    def acquire_lease(self, model: str, holder: str, now: int, ttl: int) -> Lease:
        """The lease of ``model`` for ``holder`` until ``now + ttl``."""
        ...

    def renew_lease(self, lease: Lease, now: int, ttl: int) -> Lease:
        """``lease`` extended to ``now + ttl``."""
        ...

    def release_lease(self, lease: Lease) -> None:
        """Let ``lease`` go (nothing if it was taken over already)."""
        ...

    def lease(self, model: str) -> Lease | None:
        """The lease of ``model`` as recorded (perhaps expired), or ``None``."""
        ...

    def change_trust(self, change: TrustChange) -> TrustChange:
        """Record ``change``; return it with its ``seq``."""
        ...

    def trust_history(self) -> list[TrustChange]:
        """Every trust change, oldest first."""
        ...

    def close(self) -> None: ...


def missing_parent(model: str, parent: int) -> ValidationError:
    """The error for a lineage whose parent is not a version of the model."""
    return ValidationError("lineage.parent", f"model {model!r} has no version {parent}")


def moved_meanwhile(move: AliasMove, current: int | None) -> AliasError:
    """The error for a move whose ``from_version`` is no longer where the alias points."""
    where = "is not set" if current is None else f"points at version {current}"
    return AliasError(f"alias {move.alias!r} of model {move.model!r} {where}, not "
                      f"{move.from_version}: it was moved meanwhile; look again and retry")


def not_candidate(model: str, version: int, status: str) -> AliasError:
    """The error for pointing an alias at a rejected or archived version."""
    return AliasError(f"version {version} of model {model!r} is {status}; "
                      "aliases point only at candidates")


def still_aliased(model: str, version: int, aliases: list[str], status: str) -> AliasError:
    """The error for rejecting or archiving a version an alias points at."""
    return AliasError(f"version {version} of model {model!r} is {', '.join(sorted(aliases))}; "
                      f"move the alias before marking it {status}")


def lease_held(current: Lease) -> LeaseHeldError:
    """The error for acquiring a lease another holder has."""
    return LeaseHeldError(
        f"model {current.model!r} is trained by {current.holder!r}, whose lease (epoch "
        f"{current.epoch}) runs until {format_micros(current.expires_at)} unless renewed",
        holder=current.holder, expires_at=current.expires_at)


def lease_lost(lease: Lease, current: Lease | None) -> FencedError:
    """The error for using a lease that is no longer held under its epoch."""
    now = ("released" if current is None or not current.holder else
           f"held by {current.holder!r} under epoch {current.epoch}")
    return FencedError(f"the lease of model {lease.model!r} that {lease.holder!r} held under "
                       f"epoch {lease.epoch} is {now}: it may no longer train the model")


def grant_lease(current: Lease | None, model: str, holder: str, now: int, ttl: int) -> Lease:
    """The lease ``acquire_lease`` grants given the one recorded (``None``: never any),
    or the error it raises: the rule every backend applies inside its transaction."""
    if not holder:
        raise ValidationError("holder", "a lease holder needs a name")
    if ttl <= 0:
        raise ValidationError("ttl", f"expected a positive duration, got {ttl!r}")
    if current is None or not current.holder:
        epoch = (current.epoch if current is not None else 0) + 1
    elif current.holder == holder:
        epoch = current.epoch
    elif current.expires_at <= now:
        epoch = current.epoch + 1
    else:
        raise lease_held(current)
    return Lease(model=model, holder=holder, epoch=epoch, expires_at=now + ttl)


def still_held(lease: Lease, current: Lease | None) -> bool:
    """Whether ``lease`` is the one recorded (the same holder and epoch)."""
    return current is not None and current.holder == lease.holder and \
        current.epoch == lease.epoch
