"""The model store: register immutable versions, check them out verified, load them
under one trust rule, query their lineage, and move aliases with a recorded, reversible
history.

:class:`ModelRegistry` joins an artifact store (where the files are) and a registry
backend (where the records are) under one clock. Registering copies and hashes the
artifact first, then records the version, so a recorded version always had its
artifact stored; a crash in between leaves at most an unreferenced artifact.

The trust rule. Every component that needs a model from the store — trainers,
``reproduce``, evaluation, the prediction service, the demos — gets it from
:meth:`ModelRegistry.load`, which checks the artifact against its recorded hash and then
loads it. An artifact that can run code when loaded (pickle-based formats, skops types
outside skops' trusted list) loads only if the registry's operator has opted in, once,
with :meth:`ModelRegistry.trust` (recorded with who, when and why; revocable with
:meth:`ModelRegistry.revoke_trust`); otherwise :class:`~headwater.errors.UntrustedVersionError`
says so. The hash proves the bytes are the registered ones, not who registered them: the
opt-in is the operator vouching for everyone who can write to the store. Safe formats
(the built-in linear models, safetensors, skops with trusted types) need no opt-in. A
revocation stops new loads; a process keeps what it has already loaded.

An alias is moved only to a version that loads: :meth:`ModelRegistry.promote` and
:meth:`ModelRegistry.rollback` verify the target (and load it, when it is a model) first
and refuse with :class:`~headwater.errors.AliasTargetError` naming the reason.

>>> import tempfile
>>> from pathlib import Path
>>> from headwater.registry import LocalArtifacts, Lineage, MemoryRegistryBackend
>>> from headwater.time import ManualClock
>>> tmp = Path(tempfile.mkdtemp())
>>> (tmp / "model").mkdir()
>>> _ = (tmp / "model" / "weights.txt").write_text("0.5 0.25")
>>> registry = ModelRegistry(MemoryRegistryBackend(), LocalArtifacts(tmp / "store"),
...                          clock=ManualClock(1_700_000_000_000_000))
>>> first = registry.register("churn", tmp / "model")
>>> second = registry.register("churn", tmp / "model", lineage=Lineage(parent=1))
>>> registry.promote("churn", 2, actor="docs", reason="better logloss").to_version
2
>>> registry.get("churn", "champion").version
2
>>> (registry.checkout("churn", "champion") / "weights.txt").read_text()
'0.5 0.25'
>>> version, path = registry.open("churn", "champion")
>>> version.version, (path / "weights.txt").read_text()
(2, '0.5 0.25')
>>> [v.version for v in registry.ancestors("churn", 2)]
[1]
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import msgspec

from headwater.errors import (
    AliasError,
    AliasTargetError,
    ArtifactCorruptError,
    ArtifactMissingError,
    ConfigError,
    ModelError,
    UnknownAliasError,
    UnknownModelError,
    UnknownVersionError,
    UntrustedArtifactError,
    UntrustedVersionError,
    ValidationError,
    VersionExistsError,
    VersionLoadError,
)
from headwater.models import Model, load_model
from headwater.models.artifact import MANIFEST
from headwater.registry.aliases import undone_by_rollback
from headwater.registry.artifacts import ArtifactStore
from headwater.registry.backend import RegistryBackend, missing_parent
from headwater.registry.code import detect_code_version
from headwater.registry.lineage import CodeVersion, Lineage, check_lineage
from headwater.registry.names import check_alias, check_model_name, check_version
from headwater.registry.records import (
    AliasMove,
    Lease,
    ModelSummary,
    ModelVersion,
    MoveKind,
    TrustChange,
    TrustKind,
    VersionStatus,
)
from headwater.registry.tree import LineageTree
from headwater.time import Clock, SystemClock

__all__ = ["CheckedOut", "LoadedVersion", "ModelRegistry", "trust_hint"]

_STATUSES: tuple[VersionStatus, ...] = ("candidate", "rejected", "archived")


class CheckedOut(NamedTuple):
    """A version and the local, verified, read-only directory of its artifact."""

    version: ModelVersion
    path: Path


class LoadedVersion(NamedTuple):
    """A version, the verified directory of its artifact and the model loaded from it."""

    version: ModelVersion
    path: Path
    model: Model


def trust_hint(kind: TrustKind = "pickle") -> str:
    """What an operator runs to opt in to artifacts of ``kind``."""
    return (f"run `headwater models trust --{kind} --actor NAME --reason WHY` once if you "
            "trust everyone who can write to this registry")


class ModelRegistry:
    """Model versions with lineage, artifacts verified on checkout, and aliases.

    ``ref`` arguments take a version number or an alias name (``"champion"``).
    """

    def __init__(self, backend: RegistryBackend, artifacts: ArtifactStore, *,
                 clock: Clock | None = None) -> None:
        self.backend = backend
        self.artifacts = artifacts
        self.clock: Clock = clock or SystemClock()
        self._code: CodeVersion | None = None

    def register(self, name: str, artifact_dir: str | Path, *, lineage: Lineage | None = None,
                 version: int | None = None, lease: Lease | None = None) -> ModelVersion:
        """Store a copy of ``artifact_dir`` as a new ``candidate`` version of ``name``.

        The version number is the next one unless ``version`` is given; a number is
        registered once (:class:`~headwater.errors.VersionExistsError`). ``lineage``
        is checked field by field; its ``code`` and ``created_at`` are filled in when
        ``None``. A parent that is not a version of ``name`` is a
        :class:`~headwater.errors.ValidationError` naming ``lineage.parent``. Given a
        ``lease`` (:meth:`acquire_lease`), the version is recorded only while that lease
        is held (:class:`~headwater.errors.FencedError` otherwise).
        """
        check_model_name(name)
        if version is not None:
            check_version(version)
        lineage = check_lineage(lineage if lineage is not None else Lineage())
        if lineage.code is None:
            if self._code is None:  # the code running now: looked up once
                self._code = detect_code_version()
            lineage = msgspec.structs.replace(lineage, code=self._code)
        if lineage.created_at is None:
            lineage = msgspec.structs.replace(lineage, created_at=self.clock.now_us())
        self._check_new(name, version, lineage.parent)
        artifact = self.artifacts.put(name, Path(artifact_dir))
        return self.backend.add_version(name, version, artifact, lineage, lease)

    def get(self, name: str, ref: int | str) -> ModelVersion:
        """The version ``ref`` (a number or an alias) of model ``name``."""
        check_model_name(name)
        return self.backend.version(name, self._number(name, ref))

    def checkout(self, name: str, ref: int | str) -> Path:
        """A local directory with the artifact of version ``ref``, verified against its
        recorded hash (:class:`~headwater.errors.ArtifactMissingError`,
        :class:`~headwater.errors.ArtifactCorruptError`). It is read-only: copy it to
        change anything. Loading a model from it is the caller's business."""
        return self.artifacts.checkout(self.get(name, ref))

    def open(self, name: str, ref: int | str) -> CheckedOut:
        """The version ``ref`` resolves to now and its verified artifact directory, in one
        step: what to use with an alias, which may move between two calls."""
        version = self.get(name, ref)
        return CheckedOut(version, self.artifacts.checkout(version))

    def load(self, name: str, ref: int | str) -> LoadedVersion:
        """The model of version ``ref``, by the trust rule (see the module docstring):
        the artifact is checked against its recorded hash, then loaded, code-running
        formats only if this registry trusts them.

        Raises :class:`~headwater.errors.UntrustedVersionError` for an artifact that can
        run code in a registry that has not opted in, and
        :class:`~headwater.errors.VersionLoadError` for any other reason the version
        cannot load (a missing or altered artifact, an unreadable model, a missing extra).
        """
        version = self.get(name, ref)
        path = self._verified(version)
        return LoadedVersion(version, path, self._load_at(version, path))

    def trust(self, kind: TrustKind = "pickle", *, actor: str, reason: str) -> TrustChange:
        """Opt in to artifacts of ``kind`` (``"pickle"``: artifacts that can run code when
        loaded), recorded with who, why and when. Trusting what is already trusted
        records nothing and returns the grant in force."""
        return self._change_trust(kind, True, actor, reason)

    def revoke_trust(self, kind: TrustKind = "pickle", *, actor: str,
                     reason: str) -> TrustChange | None:
        """Withdraw the opt-in to artifacts of ``kind``, recorded like a grant. Processes
        keep the versions they have loaded; new loads are refused. Revoking what is not
        trusted records nothing and returns the change in force (``None``: never
        trusted)."""
        if not self.trusts(kind):
            return self.trust_state(kind)
        return self._change_trust(kind, False, actor, reason)

    def trust_state(self, kind: TrustKind = "pickle") -> TrustChange | None:
        """The latest change of the trust in artifacts of ``kind`` (``None``: never
        granted): whether it is trusted, by whom, since when and why."""
        _check_kind(kind)
        return next((c for c in reversed(self.backend.trust_history()) if c.kind == kind),
                    None)

    def trusts(self, kind: TrustKind = "pickle") -> bool:
        """Whether this registry loads artifacts of ``kind``."""
        state = self.trust_state(kind)
        return state is not None and state.trusted

    def trust_history(self) -> list[TrustChange]:
        """Every grant and revocation, oldest first."""
        return self.backend.trust_history()

    def verify(self, name: str, ref: int | str) -> ModelVersion:
        """Check the artifact of version ``ref`` against its recorded hash; return it."""
        version = self.get(name, ref)
        self.artifacts.checkout(version)
        return version

    def models(self) -> list[ModelSummary]:
        """Every model in the store, by name."""
        return self.backend.models()

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, by number."""
        return self.backend.versions(check_model_name(name))

    def ancestors(self, name: str, ref: int | str, *,
                  limit: int | None = None) -> list[ModelVersion]:
        """The parent chain of ``ref``, nearest first (at most ``limit`` versions)."""
        if limit is not None and (isinstance(limit, bool) or limit < 0):
            raise ValidationError("limit", f"expected a count from 0, got {limit!r}")
        return self.backend.ancestors(name, self._number(name, ref), limit)

    def descendants(self, name: str, ref: int | str) -> list[ModelVersion]:
        """Every version trained, directly or through others, from ``ref``, by number."""
        return self.backend.descendants(name, self._number(name, ref))

    def lineage_tree(self, name: str, ref: int | str | None = None) -> LineageTree:
        """The lineage tree of every version of ``name`` or, given ``ref``, of that
        version's ancestors, itself and its descendants."""
        check_model_name(name)
        if ref is None:
            versions = self.backend.versions(name)
        else:
            number = self._number(name, ref)
            versions = [*self.backend.ancestors(name, number),
                        self.backend.version(name, number),
                        *self.backend.descendants(name, number)]
        return LineageTree.build(name, versions, self.backend.aliases(name))

    def aliases(self, name: str) -> dict[str, int]:
        """Where each alias of ``name`` points."""
        return self.backend.aliases(check_model_name(name))

    def promote(self, name: str, ref: int | str, alias: str = "champion", *, actor: str,
                reason: str, lease: Lease | None = None) -> AliasMove:
        """Point ``alias`` at version ``ref`` and record the move (who, why, when).

        Promoting to where the alias already points records nothing and returns the
        move that put it there. Given a ``lease``, the move is made only while that lease
        is held (:class:`~headwater.errors.FencedError` otherwise).
        """
        check_alias(alias)
        _check_who(actor, reason)
        number = self._number(name, ref)
        current = self._current(name, alias)
        if current == number:
            return self.backend.history(name, alias)[-1]
        self._check_target(name, number, alias)
        return self._move(name, alias, current, number, "promote", actor, reason, lease)

    def rollback(self, name: str, alias: str = "champion", *, actor: str,
                 reason: str) -> AliasMove:
        """Move ``alias`` back to where it pointed before its latest move not yet undone
        (see :mod:`headwater.registry.aliases`), as a new ``rollback`` move."""
        check_model_name(name)
        check_alias(alias)
        _check_who(actor, reason)
        undone = undone_by_rollback(self.backend.history(name, alias))
        if undone is None:
            raise AliasError(f"alias {alias!r} of model {name!r} has no move to roll back")
        if undone.from_version is None:
            raise AliasError(f"alias {alias!r} of model {name!r} was not set before "
                             f"version {undone.to_version}; nothing to roll back to "
                             "(remove the alias instead)")
        self._check_target(name, undone.from_version, alias)
        return self._move(name, alias, undone.to_version, undone.from_version, "rollback",
                          actor, reason)

    def remove_alias(self, name: str, alias: str, *, actor: str, reason: str) -> AliasMove:
        """Remove ``alias`` (recorded as a move to no version)."""
        check_model_name(name)
        check_alias(alias)
        _check_who(actor, reason)
        current = self.backend.alias(name, alias)
        return self._move(name, alias, current, None, "remove", actor, reason)

    def history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """The moves of ``alias`` (or of every alias of ``name``), oldest first."""
        check_model_name(name)
        return self.backend.history(name, None if alias is None else check_alias(alias))

    def set_status(self, name: str, ref: int | str, status: VersionStatus, *,
                   reason: str | None = None) -> ModelVersion:
        """Mark version ``ref`` ``candidate``, ``rejected`` (a reason is required) or
        ``archived``. A version an alias points at cannot be rejected or archived."""
        if status not in _STATUSES:
            raise ValidationError("status", f"expected one of {', '.join(_STATUSES)}, "
                                  f"got {status!r}")
        if status == "rejected" and not (reason and reason.strip()):
            raise ValidationError("reason", "a rejected version needs the reason")
        number = self._number(name, ref)
        return self.backend.set_status(name, number, status, reason, self.clock.now_us())

    def reject(self, name: str, ref: int | str, *, reason: str) -> ModelVersion:
        """Mark version ``ref`` rejected, keeping it with ``reason``."""
        return self.set_status(name, ref, "rejected", reason=reason)

    def archive(self, name: str, ref: int | str, *, reason: str | None = None) -> ModelVersion:
        """Mark version ``ref`` archived."""
        return self.set_status(name, ref, "archived", reason=reason)

    # -- leases ------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, *, ttl_us: int) -> Lease:
        """Become the one trainer of ``name`` for ``ttl_us`` (µs, by this registry's
        clock): the lease, granted when nobody holds it, when it expired, or to
        ``holder`` again. A live lease of another holder is a
        :class:`~headwater.errors.LeaseHeldError` naming it and its expiry."""
        check_model_name(name)
        return self.backend.acquire_lease(name, holder, self.clock.now_us(), ttl_us)

    def renew_lease(self, lease: Lease, *, ttl_us: int) -> Lease:
        """``lease`` extended to ``ttl_us`` from now; :class:`~headwater.errors.FencedError`
        if another holder has taken it over meanwhile."""
        if ttl_us <= 0:
            raise ValidationError("ttl_us", f"expected a positive duration, got {ttl_us!r}")
        return self.backend.renew_lease(lease, self.clock.now_us(), ttl_us)

    def release_lease(self, lease: Lease) -> None:
        """Let ``lease`` go now, so another process may take it without waiting."""
        self.backend.release_lease(lease)

    def lease(self, name: str) -> Lease | None:
        """The lease of ``name`` as recorded (perhaps expired), or ``None``."""
        return self.backend.lease(check_model_name(name))

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> ModelRegistry:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _number(self, name: str, ref: int | str) -> int:
        check_model_name(name)
        if isinstance(ref, str):
            return self.backend.alias(name, check_alias(ref, field="ref"))
        return check_version(ref, field="ref")

    def _current(self, name: str, alias: str) -> int | None:
        try:
            return self.backend.alias(name, alias)
        except UnknownAliasError:
            return None

    def _check_new(self, name: str, version: int | None, parent: int | None) -> None:
        """Fail before copying an artifact that could not be recorded (the backend checks
        again, atomically, when recording)."""
        if version is not None and self._exists(name, version):
            raise VersionExistsError(name, version)
        if parent is not None and not self._exists(name, parent):
            raise missing_parent(name, parent)

    def _exists(self, name: str, number: int) -> bool:
        try:
            self.backend.version(name, number)
        except (UnknownModelError, UnknownVersionError):
            return False
        return True

    def _check_target(self, name: str, number: int, alias: str) -> None:
        """Refuse to point ``alias`` at a version that would not load: its artifact is
        verified and, when it is a model, loaded by the trust rule."""
        version = self.backend.version(name, number)
        try:
            path = self._verified(version)
            if (path / MANIFEST).is_file():
                self._load_at(version, path)
        except VersionLoadError as exc:
            raise AliasTargetError(f"alias {alias!r} of model {name!r} was not moved: "
                                   f"{exc}") from exc

    def _verified(self, version: ModelVersion) -> Path:
        try:
            return self.artifacts.checkout(version)
        except (ArtifactMissingError, ArtifactCorruptError) as exc:
            raise VersionLoadError(version.model, version.version, str(exc)) from exc

    def _load_at(self, version: ModelVersion, path: Path) -> Model:
        """The one place a model is loaded from the store (the trust rule)."""
        try:
            return load_model(path, trusted=self.trusts("pickle"))
        except UntrustedArtifactError as exc:
            raise UntrustedVersionError(
                version.model, version.version, f"{exc.risk}, and this registry does not "
                f"trust pickle-based artifacts; {trust_hint()}") from exc
        except (ModelError, ConfigError) as exc:
            raise VersionLoadError(version.model, version.version, str(exc)) from exc

    def _change_trust(self, kind: TrustKind, trusted: bool, actor: str,
                      reason: str) -> TrustChange:
        _check_kind(kind)
        _check_who(actor, reason)
        state = self.trust_state(kind)
        if state is not None and state.trusted == trusted:
            return state
        return self.backend.change_trust(TrustChange(kind=kind, trusted=trusted, actor=actor,
                                                     reason=reason, at=self.clock.now_us()))

    def _move(self, name: str, alias: str, current: int | None, target: int | None,
              kind: MoveKind, actor: str, reason: str, lease: Lease | None = None
              ) -> AliasMove:
        move = AliasMove(model=name, alias=alias, from_version=current, to_version=target,
                         kind=kind, actor=actor, reason=reason, at=self.clock.now_us())
        return self.backend.move_alias(move, lease)


def _check_who(actor: str, reason: str) -> None:
    for field, text in (("actor", actor), ("reason", reason)):
        if not isinstance(text, str) or not text.strip():
            raise ValidationError(field, "an alias move or a trust change records who made "
                                         "it and why")


def _check_kind(kind: str) -> None:
    if kind != "pickle":
        raise ValidationError("kind", f"expected 'pickle', got {kind!r}")
