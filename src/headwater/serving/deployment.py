"""The loaded model versions of one model, swapped atomically when an alias moves.

A :class:`Deployment` holds one immutable :class:`Snapshot` — the routing policy, the
version loaded for each arm (alias) and the version each arm had before — in a single
attribute. A request reads that attribute once and uses what it got to the end, so a
request in flight finishes on the versions it started with. :meth:`Deployment.reload`
reads the aliases, loads any version not loaded yet (outside any lock the hot path
takes), builds a new snapshot and replaces the attribute: one reference assignment,
atomic in Python. :meth:`Deployment.start` polls the aliases every ``poll_ms`` in a
background thread. A version that fails to load is not swapped in; the arm keeps the
version it had and the failure is counted (``load_errors``, ``last_error``).

The previous version of each arm stays loaded as its fallback: the predictor answers
with it when the current one raises (see :mod:`headwater.serving.predictor`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from headwater.errors import HeadwaterError, UnknownModelError
from headwater.models import Model, load_model
from headwater.registry import CheckedOut
from headwater.repeat import Repeater
from headwater.serving.inputs import InputSpec
from headwater.serving.policies import Policy
from headwater.time import Clock, SystemClock

__all__ = ["Deployment", "LoadedModel", "Snapshot", "VersionSource"]


class VersionSource(Protocol):
    """Where versions come from: :class:`~headwater.registry.ModelRegistry` is one."""

    def aliases(self, name: str) -> dict[str, int]: ...

    def open(self, name: str, ref: int | str) -> CheckedOut: ...


@dataclass(frozen=True, slots=True, eq=False)
class LoadedModel:
    """One version of the model, loaded, with the spec of its input row."""

    name: str
    version: int
    model: Model
    inputs: InputSpec


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
            "previous": {arm: m.version for arm, m in self.previous.items()},
        }


class Deployment:
    """The versions of model ``name`` that ``policy`` routes to, kept current.

    ``loader`` turns a checked-out directory into a model (default
    :func:`headwater.models.load_model`).
    """

    def __init__(self, source: VersionSource, name: str, policy: Policy, *,
                 loader: Callable[[Path], Model] = load_model,
                 clock: Clock | None = None) -> None:
        self.source = source
        self.name = name
        self.loader = loader
        self.clock: Clock = clock or SystemClock()
        self.snapshot = Snapshot(policy, {})
        self.swaps = 0
        self.load_errors = 0
        self.last_error: str | None = None
        self._reload_lock = threading.Lock()
        self._poller: Repeater | None = None

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
            for arm in policy.arms:
                number, old = aliases.get(arm), current.arms.get(arm)
                if number is None:
                    continue
                if old is not None and old.version == number:
                    arms[arm] = old
                    continue
                model = loaded.get(number) or self._load(number)
                if model is None:  # failed: keep the arm's version
                    if old is not None:
                        arms[arm] = old
                    continue
                loaded[number] = arms[arm] = model
                if old is not None:
                    previous[arm] = old
            previous = {arm: m for arm, m in previous.items() if arm in policy.arms}
            if (policy is current.policy and arms.keys() == current.arms.keys()
                    and all(arms[a] is current.arms[a] for a in arms)):
                return False
            self.snapshot = Snapshot(policy, arms, previous, current.generation + 1,
                                     self.clock.now_us())
            self.swaps += 1
            return True

    def _load(self, number: int) -> LoadedModel | None:
        try:
            checked = self.source.open(self.name, number)
            model = self.loader(checked.path)
            return LoadedModel(self.name, checked.version.version, model, InputSpec.of(model))
        except Exception as exc:  # a bad artifact must not stop serving
            self.load_errors += 1
            self.last_error = f"version {number}: {type(exc).__name__}: {exc}"
            return None

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
