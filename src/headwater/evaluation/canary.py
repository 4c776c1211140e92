"""Canary releases: ramp a new version up step by step, roll it back on a breached guardrail.

:class:`CanaryRamp` is the decision, sans I/O: at each step (by default 1% → 5% →
25% → 100% of entities, sticky) it reads a window of the canary's traffic and of the
champion's, checks the :class:`~headwater.evaluation.guardrails.Guardrails`, and
answers ``"rollback"`` on any breach, ``"advance"`` when every guardrail is satisfied
(``"promote"`` after the last step), and ``"hold"`` while some still wait for data.
At 100% the champion serves nothing, so its last window stands in as the reference.

:class:`CanaryController` carries the decisions out: it points the canary alias at the
new version, sets the serving policy to :class:`~headwater.serving.Canary` at each
step's percentage, promotes the version to ``champion`` at the end, and on a breach sets
the policy to 0% first (traffic leaves the canary at once), then moves the alias back —
both moves recorded in the registry with who and why — and measures the time from the
breaching window to the end of the rollback. :meth:`CanaryController.abort` rolls back
the same way without a breach (a rollout given up on, for example when it timed out),
recording why. :func:`replay_canary` runs a ramp over
logged, labelled traffic, window by window: what the controller would have decided.

>>> import numpy as np
>>> from headwater.evaluation.guardrails import ArmWindow, Guardrails
>>> ramp = CanaryRamp((5.0, 100.0), Guardrails(min_requests=10, min_labels=10))
>>> good = ArmWindow.of(np.linspace(0.1, 0.9, 50), y=np.tile([0, 1], 25))
>>> ramp.evaluate(good, good).action, ramp.percent
('advance', 100.0)
>>> broken = ArmWindow.of(np.linspace(0.1, 0.9, 50), errors=20)
>>> step = ramp.evaluate(broken, good)
>>> step.action, ramp.status, step.reason
('rollback', 'rolled_back', 'error_rate 0.4 > 0.01 (20 errors in 50 requests)')
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import pyarrow as pa

from headwater.errors import AliasError, EvaluationError, ValidationError
from headwater.evaluation.examples import int64_column
from headwater.evaluation.guardrails import ArmWindow, Check, Guardrails
from headwater.registry import AliasMove, ModelRegistry
from headwater.reports import Report
from headwater.routing.policies import DEFAULT_SALT, Canary, ChampionOnly, Policy
from headwater.time import Clock, SystemClock, format_duration, from_micros

__all__ = [
    "DEFAULT_STEPS",
    "Action",
    "CanaryController",
    "CanaryRamp",
    "CanaryReplay",
    "RampStatus",
    "Step",
    "replay_canary",
]

Action = Literal["hold", "advance", "promote", "rollback"]
RampStatus = Literal["ramping", "promoted", "rolled_back"]
#: The default ramp: percentages of entities routed to the canary.
DEFAULT_STEPS: Final = (1.0, 5.0, 25.0, 100.0)


@dataclass(frozen=True)
class Step:
    """One decision: at which percentage, what, the percentage after, and why."""

    at: int
    percent: float
    action: Action
    next_percent: float
    checks: tuple[Check, ...]
    reason: str


class CanaryRamp:
    """The ramp's state and decisions (see the module docstring)."""

    def __init__(self, steps: Sequence[float] = DEFAULT_STEPS,
                 guardrails: Guardrails | None = None) -> None:
        ladder = tuple(float(s) for s in steps)
        if not ladder or any(not 0.0 < s <= 100.0 for s in ladder) or any(
                b <= a for a, b in itertools.pairwise(ladder)):
            raise ValidationError("steps", f"expected increasing percentages in (0, 100], got "
                                  f"{list(steps)!r}")
        self.steps = ladder
        self.guardrails = guardrails or Guardrails()
        self.index = 0
        self.status: RampStatus = "ramping"
        self.history: list[Step] = []
        self._reference: ArmWindow | None = None

    @property
    def percent(self) -> float:
        """The share of entities the canary serves now (0 once rolled back)."""
        if self.status == "rolled_back":
            return 0.0
        return 100.0 if self.status == "promoted" else self.steps[self.index]

    def evaluate(self, canary: ArmWindow, champion: ArmWindow, *, at: int = 0) -> Step:
        """Decide on one window of traffic at the current step (``at``: its time, µs)."""
        if self.status != "ramping":
            raise EvaluationError(f"the canary is over: {self.status.replace('_', ' ')}")
        if champion.requests:
            self._reference = champion
        reference = self._reference or champion
        checks = tuple(self.guardrails.check(canary, reference))
        breaches = [c for c in checks if c.status == "breach"]
        waiting = [c for c in checks if c.status == "waiting"]
        percent = self.percent
        action: Action
        if breaches:
            action, self.status = "rollback", "rolled_back"
            reason = "; ".join(f"{c.name} {c.value:.4g} > {c.limit:.4g} ({c.detail})"
                               for c in breaches)
        elif waiting:
            action = "hold"
            reason = "waiting for data: " + ", ".join(c.name for c in waiting)
        elif self.index + 1 < len(self.steps):
            action = "advance"
            self.index += 1
            reason = f"every guardrail held at {percent:g}%"
        else:
            action, self.status = "promote", "promoted"
            reason = f"every guardrail held at {percent:g}%: the canary becomes the champion"
        step = Step(at, percent, action, self.percent, checks, reason)
        self.history.append(step)
        return step

    def abandon(self, reason: str, *, at: int = 0) -> Step:
        """End a ramp that is still ramping with a rollback, for ``reason`` (no window
        breached a guardrail: the ramp is given up on)."""
        if self.status != "ramping":
            raise EvaluationError(f"the canary is over: {self.status.replace('_', ' ')}")
        percent = self.percent
        self.status = "rolled_back"
        step = Step(at, percent, "rollback", self.percent, (), reason)
        self.history.append(step)
        return step

    def snapshot(self) -> dict[str, Any]:
        """The ramp's whole state as plain values (:meth:`restore` reads it back), so a
        controller that restarts resumes at the step it was on."""
        ref = self._reference
        return {
            "steps": list(self.steps), "guardrails": dataclasses.asdict(self.guardrails),
            "index": self.index, "status": self.status,
            "history": [dataclasses.asdict(s) for s in self.history],
            "reference": None if ref is None else {
                "requests": ref.requests, "errors": ref.errors,
                **{name: getattr(ref, name).tolist()
                   for name in ("latency_ms", "scores", "y", "y_scores")}},
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> CanaryRamp:
        """The ramp in the state of ``snapshot``."""
        ramp = cls(snapshot["steps"], Guardrails(**snapshot["guardrails"]))
        ramp.index = int(snapshot["index"])
        status = snapshot["status"]
        if status not in ("ramping", "promoted", "rolled_back"):
            raise ValidationError("snapshot.status", f"unknown status {status!r}")
        ramp.status = status
        ramp.history = [Step(**{**s, "checks": tuple(Check(**c) for c in s["checks"])})
                        for s in snapshot["history"]]
        ref = snapshot["reference"]
        if ref is not None:
            ramp._reference = ArmWindow(
                ref["requests"], ref["errors"],
                *(np.asarray(ref[name], np.float64)
                  for name in ("latency_ms", "scores", "y", "y_scores")))
        return ramp


class CanaryController:
    """Runs a :class:`CanaryRamp` against the registry and the serving policy.

    ``apply`` installs a policy where traffic is routed (for example
    ``deployment.reload``). The canary arm is alias ``canary_arm`` of ``model``.
    """

    def __init__(self, registry: ModelRegistry, model: str, version: int, *,
                 apply: Callable[[Policy], object], ramp: CanaryRamp | None = None,
                 canary_arm: str = "challenger", stable_arm: str = "champion",
                 actor: str = "canary", salt: str = DEFAULT_SALT,
                 clock: Clock | None = None) -> None:
        self.registry = registry
        self.model = model
        self.version = version
        self.apply = apply
        self.ramp = ramp or CanaryRamp()
        self.canary_arm, self.stable_arm = canary_arm, stable_arm
        self.actor, self.salt = actor, salt
        self.clock: Clock = clock or SystemClock()
        self.moves: list[AliasMove] = []
        self.breach_to_rollback_us: int | None = None
        self._before: int | None = None
        self._started = False

    @property
    def previous_canary(self) -> int | None:
        """The version the canary alias pointed at before :meth:`start` (``None``: unset)."""
        return self._before

    def _policy(self, percent: float) -> Policy:
        return Canary(percent, canary=self.canary_arm, stable=self.stable_arm, salt=self.salt)

    def start(self) -> None:
        """Point the canary alias at the version and route the first step's share to it."""
        self._before = self.registry.aliases(self.model).get(self.canary_arm)
        first = self.ramp.percent
        self.moves.append(self.registry.promote(
            self.model, self.version, self.canary_arm, actor=self.actor,
            reason=f"canary of v{self.version} starts at {first:g}%"))
        self.apply(self._policy(first))
        self._started = True

    def observe(self, canary: ArmWindow, champion: ArmWindow) -> Step:
        """Decide on a window of traffic and carry the decision out."""
        if not self._started:
            raise EvaluationError("start the canary before observing it")
        breach_seen = self.clock.now_us()
        step = self.ramp.evaluate(canary, champion, at=breach_seen)
        if step.action == "advance":
            self.apply(self._policy(step.next_percent))
        elif step.action == "promote":
            self.moves.append(self.registry.promote(
                self.model, self.version, self.stable_arm, actor=self.actor,
                reason=f"canary of v{self.version} passed every step: {step.reason}"))
            self.apply(ChampionOnly(self.stable_arm))
        elif step.action == "rollback":
            self.apply(self._policy(0.0))  # traffic first, bookkeeping second
            self.moves.append(self._move_back(step.reason))
            self.breach_to_rollback_us = self.clock.now_us() - breach_seen
        return step

    def abort(self, reason: str) -> Step:
        """Roll back a canary that is still ramping, for ``reason``: traffic leaves it at
        once (0%), then the alias moves back, recorded with the reason."""
        if not self._started:
            raise EvaluationError("start the canary before aborting it")
        step = self.ramp.abandon(reason, at=self.clock.now_us())
        self.apply(self._policy(0.0))
        self.moves.append(self._move_back(reason))
        return step

    def _move_back(self, reason: str) -> AliasMove:
        why = f"canary of v{self.version} rolled back at {self.ramp.history[-1].percent:g}%: " \
              f"{reason}"
        if self._before is None:
            return self.registry.remove_alias(self.model, self.canary_arm, actor=self.actor,
                                              reason=why)
        try:
            return self.registry.rollback(self.model, self.canary_arm, actor=self.actor,
                                          reason=why)
        except AliasError:  # moved by someone else meanwhile: put it back explicitly
            return self.registry.promote(self.model, self._before, self.canary_arm,
                                         actor=self.actor, reason=why)


@dataclass(frozen=True)
class CanaryReplay:
    """The ramp's decisions over logged windows of traffic."""

    steps: list[Step]
    status: RampStatus
    windows: int
    canary: str
    champion: str
    notes: list[str] = field(default_factory=list)

    def report(self, report: Report | None = None, *, title: str = "Canary analysis") -> Report:
        """Add (or make) a report: the decision per window and the guardrails over time."""
        report = report or Report(title)
        report.section(f"Canary: {self.canary} against {self.champion}")
        report.text(f"{self.windows} windows of logged traffic replayed through the ramp; "
                    f"outcome: {self.status.replace('_', ' ')}.",
                    tone={"promoted": "good", "rolled_back": "bad"}.get(self.status, ""))
        for note in self.notes:
            report.text(note)
        report.table(["window end", "at %", "decision", "next %", "reason"],
                     [[from_micros(s.at).strftime("%Y-%m-%d %H:%M"), s.percent, s.action,
                       s.next_percent, s.reason] for s in self.steps])
        if self.steps:
            names = [c.name for c in self.steps[0].checks]
            x = [float(i + 1) for i in range(len(self.steps))]
            report.table(["guardrail", "limit", "last value", "last status"],
                         [[c.name, c.limit, c.value, c.status] for c in self.steps[-1].checks])
            for name in names:
                values = [next(c.value for c in s.checks if c.name == name) for s in self.steps]
                limit = next(c.limit for c in self.steps[0].checks if c.name == name)
                hlines = {"limit": limit} if math.isfinite(limit) else {}
                report.line_plot({name: (x, values)}, title=f"{name} by window",
                                 xlabel="window", ylabel=name, hlines=hlines)
        return report


def _window(rows: pa.Table, until: int) -> ArmWindow:
    scores = np.asarray(rows.column("score").cast(pa.float64()), np.float64)
    known = int64_column(rows, "label_time") < until if "label_time" in rows.column_names \
        else np.zeros(rows.num_rows, bool)
    y = (np.asarray(rows.column("label").cast(pa.float64()), np.float64)[known]
         if "label" in rows.column_names else np.zeros(0))
    errors = int(np.asarray(rows.column("error"), bool).sum()) \
        if "error" in rows.column_names else 0
    latency = np.asarray(rows.column("latency_ms").cast(pa.float64()), np.float64) \
        if "latency_ms" in rows.column_names else None
    return ArmWindow.of(scores, errors=errors, latency_ms=latency, y=y, y_scores=scores[known])


def replay_canary(table: pa.Table, *, window_us: int, ramp: CanaryRamp | None = None,
                  canary: str = "challenger", champion: str = "champion") -> CanaryReplay:
    """Replay served rows (training examples or predictions; optional ``error`` and
    ``latency_ms`` columns) through a ramp, one window of prediction time at a time.

    Each decision reads the traffic since the current step began; labels count once
    known (``label_time`` before the window's end)."""
    if window_us <= 0:
        raise ValidationError("window_us", "expected a positive duration, got "
                              f"{format_duration(window_us)}")
    ramp = ramp or CanaryRamp()
    for name in ("arm", "score"):
        if name not in table.column_names:
            raise ValidationError(name, "the rows need this column")
    if "served" in table.column_names:
        table = table.filter(pa.array(np.asarray(table.column("served"), bool)))
    time_column = "prediction_time" if "prediction_time" in table.column_names else "ts"
    times = int64_column(table, time_column)
    if not len(times):
        raise EvaluationError("no served row to replay")
    arms = np.asarray(table.column("arm").to_pylist(), dtype=object)
    notes = []
    if not (arms == canary).any():
        notes.append(f"no request was served by {canary!r}")
    start = step_start = int(times.min())
    end = int(times.max()) + 1
    windows = 0
    while start < end and ramp.status == "ramping":
        stop = start + window_us
        since = (times >= step_start) & (times < stop)
        mine = table.filter(pa.array(since & (arms == canary)))
        theirs = table.filter(pa.array(since & (arms == champion)))
        step = ramp.evaluate(_window(mine, stop), _window(theirs, stop), at=stop)
        windows += 1
        if step.action != "hold":
            step_start = stop
        start = stop
    if ramp.status == "ramping":
        notes.append(f"the log ended at {ramp.percent:g}% with the ramp still running")
    return CanaryReplay(list(ramp.history), ramp.status, windows, canary, champion, notes)
