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
- ``change_trust`` appends; trust changes are never changed or deleted.
- Unknown names raise :class:`~headwater.errors.UnknownModelError`,
  :class:`~headwater.errors.UnknownVersionError` or
  :class:`~headwater.errors.UnknownAliasError`.
"""

from __future__ import annotations

from typing import Protocol

from headwater.errors import AliasError, ValidationError
from headwater.registry.lineage import Lineage
from headwater.registry.records import (
    AliasMove,
    Artifact,
    ModelSummary,
    ModelVersion,
    TrustChange,
    VersionStatus,
)

__all__ = ["RegistryBackend", "missing_parent", "moved_meanwhile", "not_candidate", "still_aliased"]


class RegistryBackend(Protocol):
    """Storage for model versions, lineage, statuses and aliases."""

    def add_version(self, model: str, version: int | None, artifact: Artifact,
                    lineage: Lineage) -> ModelVersion:
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

    def move_alias(self, move: AliasMove) -> AliasMove:
        """Record ``move`` and apply it; return it with its ``seq``."""
        ...

    def history(self, model: str, alias: str | None = None) -> list[AliasMove]:
        """The moves of one alias (or of all of them), oldest first."""
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
