"""The loaded model versions of one model, swapped atomically when an alias moves.

A :class:`Deployment` holds one immutable :class:`Snapshot` — the routing policy, the
version loaded for each arm (alias) and the version each arm had before — in a single
attribute. A request reads that attribute once and uses what it got to the end, so a
request in flight finishes on the versions it started with. :meth:`Deployment.reload`
reads the aliases, loads any version not loaded yet (outside any lock the hot path
takes), builds a new snapshot and replaces the attribute: one reference assignment,
atomic in Python. :meth:`Deployment.start` polls the aliases every ``poll_ms`` in a
background thread.

Versions are loaded by the source's ``load`` — :meth:`headwater.registry.ModelRegistry.load`,
the store's one trust rule. A version that fails to load is not swapped in; the arm
keeps the version it had, the failure is counted (``load_errors``, ``last_error``), the
reason is kept per arm (:attr:`Deployment.problems`: what the HTTP layer answers with)
and told to ``on_problem`` when it first appears and every ``remind_s`` while it lasts.
The load is tried again at every poll, so a version that could not load (an operator
had not yet opted in to its format, say) is served as soon as it can be.

The previous version of each arm stays loaded as its fallback: the predictor answers
with it when the current one raises (see :mod:`headwater.serving.predictor`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Protocol

from headwater.errors import HeadwaterError, UnknownModelError, VersionLoadError
from headwater.models import Model
from headwater.models.updates import apply_update
from headwater.registry import LoadedVersion
from headwater.registry.updates import ModelUpdate
from headwater.repeat import Repeater
from headwater.routing.policies import Policy
from headwater.serving.inputs import InputSpec
from headwater.time import Clock, SystemClock

__all__ = ["Deployment", "LoadedModel", "Snapshot", "VersionSource"]


class VersionSource(Protocol):
    """Where versions come from: :class:`~headwater.registry.ModelRegistry` is one."""

    def aliases(self, name: str) -> dict[str, int]: ...

    def load(self, name: str, ref: int | str) -> LoadedVersion: ...


@dataclass(frozen=True, slots=True, eq=False)
class LoadedModel:
    """One version of the model, loaded, with the spec of its input row.

    ``update`` is the offset of the model update applied to the version (``None``: the
    version as registered), ``checkpoint`` the version's own model the update was
    applied to, ``created_at`` when the version was registered (µs).
    """

    name: str
    version: int
    model: Model
    inputs: InputSpec
    update: int | None = None
    checkpoint: Model | None = None
    created_at: int = 0

    @property
    def base(self) -> Model:
        """The version's model as registered (what every update applies to)."""
        return self.checkpoint if self.checkpoint is not None else self.model


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What serves now: the policy, each arm's version and each arm's previous version.

    Immutable: a swap builds a new one. ``generation`` counts swaps.
    """

    policy: Policy
    arms: Mapping[str, LoadedModel]
    previous: Mapping[str, LoadedModel] = field(default_factory=dict)
    generation: int = 0
    loaded_at: int = 0

    def model_for(self, arm: str) -> LoadedModel | None:
        """The version serving ``arm`` or, if the arm has none, the first arm's of the
        policy that has one (``None`` when nothing is loaded)."""
        loaded = self.arms.get(arm)
        if loaded is not None:
            return loaded
        for other in self.policy.arms:
            loaded = self.arms.get(other)
            if loaded is not None:
                return loaded
        return None

    @property
    def ready(self) -> bool:
        """Whether at least the policy's first arm has a version."""
        return self.policy.arms[0] in self.arms

    def describe(self) -> dict[str, Any]:
        """The snapshot as JSON-able values (for ``GET /models``)."""
        return {
            "generation": self.generation, "loaded_at": self.loaded_at,
            "policy": self.policy.describe(),
            "arms": {arm: m.version for arm, m in self.arms.items()},
            "updates": {arm: m.update for arm, m in self.arms.items()},
            "previous": {arm: m.version for arm, m in self.previous.items()},
        }


class Deployment:
    """The versions of model ``name`` that ``policy`` routes to, kept current.

    ``on_problem`` is told, as a sentence, why an arm does not serve the version its
    alias points at (the alias is not set, or the version cannot load), when the problem
    appears and every ``remind_s`` seconds while it lasts.
    """

    def __init__(self, source: VersionSource, name: str, policy: Policy, *,
                 clock: Clock | None = None,
                 on_problem: Callable[[str], None] | None = None,
                 remind_s: float = 60.0) -> None:
        self.source = source
        self.name = name
        self.clock: Clock = clock or SystemClock()
        self.snapshot = Snapshot(policy, {})
        self.swaps = 0
        self.load_errors = 0
        self.last_error: str | None = None
        #: Why each arm does not serve the version its alias points at (replaced whole
        #: at every reload; an arm that serves its alias's version is absent).
        self.problems: Mapping[str, str] = {}
        self.on_problem = on_problem
        self.remind_us = int(remind_s * 1_000_000)
        self._told: dict[str, tuple[str, int]] = {}  # arm -> (problem, when told)
        self._reload_lock = threading.RLock()
        self._poller: Repeater | None = None
        #: Model updates applied, ignored (their base version serves no arm) and
        #: failed (they did not fit their base); see :meth:`apply`.
        self.updates_applied = 0
        self.updates_ignored = 0
        self.updates_failed = 0
        self._pending: dict[int, ModelUpdate] = {}  # base version -> newest update
        self._told_ignored: tuple[int, int] | None = None  # (base, when told)

    def reload(self, policy: Policy | None = None) -> bool:
        """Load what the aliases point at now and swap it in; ``True`` if anything changed.

        ``policy`` replaces the routing policy in the same swap. Raises a
        :class:`~headwater.errors.HeadwaterError` only if the aliases cannot be read.
        """
        with self._reload_lock:
            current = self.snapshot
            policy = policy or current.policy
            try:
                aliases = self.source.aliases(self.name)
            except UnknownModelError:
                aliases = {}
            arms: dict[str, LoadedModel] = {}
            previous = dict(current.previous)
            loaded = {m.version: m for m in (*current.arms.values(), *current.previous.values())}
            problems: dict[str, str] = {}
            failed: dict[int, str] = {}  # version -> why it cannot load
            failing: set[str] = set()  # arms whose alias's version cannot load
            for arm in policy.arms:
                number, old = aliases.get(arm), current.arms.get(arm)
                if number is None:
                    problems[arm] = (f"alias {arm!r} of model {self.name!r} points at no "
                                     "version yet")
                    continue
                if old is not None and old.version == number:
                    arms[arm] = old
                    continue
                model = loaded.get(number)
                if model is None and number not in failed:
                    model = self._load(number, failed)
                if model is None:  # failed: keep the arm's version
                    failing.add(arm)
                    problems[arm] = failed[number] + (
                        f" (arm {arm!r} keeps serving version {old.version})"
                        if old is not None else "")
                    if old is not None:
                        arms[arm] = old
                    continue
                loaded[number] = arms[arm] = model
                if old is not None:
                    previous[arm] = old
            for arm, loaded_model in list(arms.items()):
                waiting = self._pending.get(loaded_model.version)
                if waiting is not None and (loaded_model.update is None
                                            or loaded_model.update < (waiting.offset or 0)):
                    updated = self._updated(loaded_model, waiting)
                    if updated is not None:
                        arms[arm] = updated
                    else:  # counted and told once, not at every poll
                        self._pending.pop(loaded_model.version, None)
            self.problems = problems
            self._tell(problems, failing)
            previous = {arm: m for arm, m in previous.items() if arm in policy.arms}
            if (policy is current.policy and arms.keys() == current.arms.keys()
                    and all(arms[a] is current.arms[a] for a in arms)):
                return False
            self.snapshot = Snapshot(policy, arms, previous, current.generation + 1,
                                     self.clock.now_us())
            self.swaps += 1
            return True

    def apply(self, update: ModelUpdate) -> bool:
        """Swap in the arms' model with ``update`` applied; ``True`` if an arm serves its
        base (an update that does not fit its base is counted in ``updates_failed``).

        The update applies to every arm serving its base version with an older update
        (or none), in one swap, as a version moves in :meth:`reload`. An update of a
        base version no arm serves is never applied to another: it is counted
        (``updates_ignored``), told to ``on_problem``, and kept (the newest per base)
        for when that version comes to serve — the aliases are read again at once, as
        a trainer's new checkpoint is usually promoted just before its updates arrive.
        """
        if update.model != self.name:
            return False
        with self._reload_lock:
            if not self._swap_update(update):
                self._pending[update.base] = update
                for old in sorted(self._pending)[:-4]:  # bounded: the newest bases only
                    del self._pending[old]
                served = {m.version for m in self.snapshot.arms.values()}
                if not served or update.base > max(served):
                    self.reload()
                if not self._swap_update(update):
                    self.updates_ignored += 1
                    self._tell_ignored(update)
                    return False
            return True

    def _tell_ignored(self, update: ModelUpdate) -> None:
        """Tell ``on_problem`` of ignored updates: at the first of a base version, then
        every ``remind_s`` while they last."""
        now = self.clock.now_us()
        told = self._told_ignored
        if told is not None and told[0] == update.base and now - told[1] < self.remind_us:
            return
        self._told_ignored = (update.base, now)
        served = sorted({m.version for m in self.snapshot.arms.values()})
        problem = (f"updates of {self.name} v{update.base} ignored ({self.updates_ignored} so "
                   f"far, the last at offset {update.offset}): no arm serves v{update.base} "
                   f"(serving {served or 'nothing'})")
        self.last_error = problem
        if self.on_problem is not None:
            self.on_problem(problem)

    def _swap_update(self, update: ModelUpdate) -> bool:
        """Apply ``update`` to the arms serving its base; whether any does."""
        current = self.snapshot
        arms = dict(current.arms)
        changed = False
        for arm, loaded in current.arms.items():
            if loaded.version != update.base:
                continue
            if loaded.update is not None and loaded.update >= (update.offset or 0):
                changed = True  # already serves this update or a newer one
                continue
            changed = True  # its base serves: taken, or counted as failed
            updated = self._updated(loaded, update)
            if updated is not None:
                arms[arm] = updated
        if any(arms[a] is not current.arms[a] for a in arms):
            self.snapshot = Snapshot(current.policy, arms, current.previous,
                                     current.generation + 1, self.clock.now_us())
            self.updates_applied += 1
        return changed

    def _updated(self, loaded: LoadedModel, update: ModelUpdate) -> LoadedModel | None:
        """``loaded``'s version with ``update`` applied, or ``None`` (counted, told) when
        the update does not fit it."""
        try:
            model = apply_update(loaded.base, update.update)
        except Exception as exc:  # a bad update must not stop serving
            self.updates_failed += 1
            self.last_error = (f"update {update.offset} of {self.name} v{update.base} cannot "
                               f"apply: {type(exc).__name__}: {exc}")
            if self.on_problem is not None:
                self.on_problem(self.last_error)
            return None
        return LoadedModel(self.name, loaded.version, model, InputSpec.of(model),
                           update.offset, loaded.base, loaded.created_at)

    def _load(self, number: int, failed: dict[int, str]) -> LoadedModel | None:
        try:
            loaded = self.source.load(self.name, number)
            model = loaded.model
            return LoadedModel(self.name, loaded.version.version, model, InputSpec.of(model),
                               created_at=loaded.version.created_at)
        except Exception as exc:  # a bad artifact must not stop serving
            self.load_errors += 1
            reason = (str(exc) if isinstance(exc, VersionLoadError) else
                      f"version {number} of {self.name} cannot load: "
                      f"{type(exc).__name__}: {exc}")
            self.last_error = failed[number] = reason
            return None

    def _tell(self, problems: Mapping[str, str], failing: Set[str]) -> None:
        """Tell ``on_problem`` of each new problem, and of a version that still cannot
        load (an arm in ``failing``) again every ``remind_s``."""
        now = self.clock.now_us()
        for arm in list(self._told):
            if arm not in problems:
                del self._told[arm]
        for arm, problem in problems.items():
            told = self._told.get(arm)
            if told is not None and told[0] == problem and (
                    arm not in failing or now - told[1] < self.remind_us):
                continue
            self._told[arm] = (problem, now)
            if self.on_problem is not None:
                self.on_problem(problem)

    def start(self, poll_ms: float = 1000.0) -> None:
        """Reload now, then every ``poll_ms`` in a daemon thread until :meth:`stop`."""
        if self._poller is not None:
            return
        self.reload()
        self._poller = Repeater(self.reload, poll_ms / 1000.0,
                                name=f"headwater-deployment-{self.name}",
                                on_error=self._poll_failed)
        self._poller.start()

    def _poll_failed(self, exc: Exception) -> None:
        if not isinstance(exc, HeadwaterError):
            raise exc
        self.load_errors += 1  # the registry is away: keep serving, retry
        self.last_error = f"aliases: {type(exc).__name__}: {exc}"

    def stop(self) -> None:
        """Stop polling (the loaded versions keep serving)."""
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
