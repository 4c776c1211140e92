"""Triggers: when a trainer publishes a new version. Sans I/O: plain values in, a verdict out.

A trainer shows each trigger an :class:`Observation` after every batch of new examples
(the time, the labels, the served model's scores and the trainer's own prequential
scores); a trigger answers a :class:`Fire` (kind and reason, recorded in the version's
lineage) or ``None``. A trigger that fired is :meth:`~Trigger.reset` when the version
is published.

- :class:`Every`: a time interval has passed since the last publish ("every 30 minutes").
- :class:`Daily`: the clock crossed a time of day (UTC) since the last look.
- :class:`Volume`: N new examples.
- :class:`Performance`: over the last ``window`` examples, the served model's metric fell
  below ``threshold``, or below the trainer's own model by ``margin``.
- :class:`Drift`: a River drift detector (ADWIN, Page-Hinkley, KSWIN) on the served
  model's errors, its scores, or one feature.
- :class:`RateLimited`: at most one fire per interval — detectors on a real stream
  raise alarms in bursts (dozens on Elec2); the suppressed ones are counted.
- :class:`AnyOf`: the first of several that fires.

>>> every = Every(60)
>>> [bool(every.observe(Observation(now=t))) for t in (0, 30, 60)]
[False, False, True]
>>> volume = Volume(3)
>>> [volume.observe(Observation(now=t, y=np.zeros(2))) for t in (0, 1)]
[None, Fire(kind='volume', reason='4 new examples (at least 3)')]
"""

from __future__ import annotations

import importlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from headwater.errors import MissingExtraError, ValidationError
from headwater.evaluation.metrics import higher_is_better, make_metric
from headwater.registry import TriggerKind
from headwater.time import format_duration

__all__ = [
    "AnyOf",
    "Daily",
    "Drift",
    "Every",
    "Fire",
    "Observation",
    "Performance",
    "RateLimited",
    "Trigger",
    "Volume",
]

_EMPTY: Final = np.zeros(0)
_DAY: Final = 86_400_000_000


class Fire(NamedTuple):
    """A trigger fired: its kind (lineage ``created_by.trigger``) and why."""

    kind: TriggerKind
    reason: str


@dataclass(frozen=True)
class Observation:
    """What a trainer saw in one batch of new examples (arrays of equal length)."""

    now: int
    y: npt.NDArray[np.float64] = field(default_factory=lambda: _EMPTY)
    served: npt.NDArray[np.float64] = field(default_factory=lambda: _EMPTY)
    own: npt.NDArray[np.float64] = field(default_factory=lambda: _EMPTY)
    features: dict[str, npt.NDArray[Any]] = field(default_factory=dict)


class Trigger(Protocol):
    """Decides, batch after batch, when to publish."""

    def observe(self, obs: Observation) -> Fire | None: ...

    def reset(self, now: int) -> None:
        """A version was published at ``now``: start counting again."""
        ...


class Every:
    """Fires once ``interval`` µs have passed since the last publish (or the first look)."""

    def __init__(self, interval: int) -> None:
        if interval <= 0:
            raise ValidationError("interval", "must be a positive duration")
        self.interval = interval
        self._since: int | None = None

    def observe(self, obs: Observation) -> Fire | None:
        if self._since is None:
            self._since = obs.now
        if obs.now - self._since >= self.interval:
            return Fire("time", f"{format_duration(obs.now - self._since, exact=False)} since "
                        "the last version")
        return None

    def reset(self, now: int) -> None:
        self._since = now


class Daily:
    """Fires when the clock passes ``at`` (µs after midnight UTC) since the last look."""

    def __init__(self, at: int = 0) -> None:
        if not 0 <= at < _DAY:
            raise ValidationError("at", "must be a time of day: 0 <= at < 24 h")
        self.at = at
        self._last: int | None = None

    def observe(self, obs: Observation) -> Fire | None:
        last, self._last = self._last, obs.now
        if last is None:
            return None
        crossed = (obs.now - self.at) // _DAY > (last - self.at) // _DAY
        return Fire("time", "the daily schedule came round") if crossed else None

    def reset(self, now: int) -> None:
        pass


class Volume:
    """Fires when ``count`` examples arrived since the last publish."""

    def __init__(self, count: int) -> None:
        if count <= 0:
            raise ValidationError("count", "must be positive")
        self.count = count
        self.seen = 0

    def observe(self, obs: Observation) -> Fire | None:
        self.seen += len(obs.y)
        if self.seen >= self.count:
            return Fire("volume", f"{self.seen} new examples (at least {self.count})")
        return None

    def reset(self, now: int) -> None:
        self.seen = 0


def metric_value(metric: str, y: npt.NDArray[Any], scores: npt.NDArray[Any]) -> float:
    """``metric`` (a name of :data:`headwater.evaluation.METRICS`) of ``scores`` against
    ``y``, oriented so that higher is better (log loss, MAE and RMSE are negated)."""
    measure = make_metric(metric)
    measure.update(y, scores)
    return float(measure.value) if higher_is_better(metric) else -float(measure.value)


class Performance:
    """Fires when, over the last ``window`` examples, the served model's metric is below
    ``threshold`` or below the trainer's own (prequential) metric by more than ``margin``.
    Higher is better for every metric (log loss is compared negated)."""

    def __init__(self, metric: str = "accuracy", *, window: int = 500,
                 threshold: float | None = None, margin: float | None = None) -> None:
        if threshold is None and margin is None:
            raise ValidationError("threshold", "give a threshold, a margin or both")
        higher_is_better(metric)  # checks the name
        self.metric = metric
        self.window = window
        self.threshold = threshold
        self.margin = margin
        self._y: deque[float] = deque(maxlen=window)
        self._served: deque[float] = deque(maxlen=window)
        self._own: deque[float] = deque(maxlen=window)

    def observe(self, obs: Observation) -> Fire | None:
        self._y.extend(obs.y.tolist())
        self._served.extend(obs.served.tolist())
        self._own.extend(obs.own.tolist())
        if len(self._y) < self.window:
            return None
        y = np.array(self._y)
        served = metric_value(self.metric, y, np.array(self._served))
        if self.threshold is not None and served < self.threshold:
            return Fire("performance", f"{self.metric} of the served version over the last "
                        f"{self.window} examples is {served:.4f}, below {self.threshold}")
        if self.margin is not None and len(self._own) == len(self._y):
            own = metric_value(self.metric, y, np.array(self._own))
            if own - served > self.margin:
                return Fire("performance", f"{self.metric} over the last {self.window} "
                            f"examples: served {served:.4f}, trainer {own:.4f} "
                            f"(margin {self.margin})")
        return None

    def reset(self, now: int) -> None:
        self._y.clear()
        self._served.clear()
        self._own.clear()


_DETECTORS: Final = {"adwin": "ADWIN", "page_hinkley": "PageHinkley", "kswin": "KSWIN"}


class Drift:
    """Fires when a River drift detector flags a change in a stream of values.

    ``on`` is ``"error"`` (the served model's 0/1 mistakes), ``"score"`` (its scores) or
    the name of a feature column. ``detector`` is ``"adwin"``, ``"page_hinkley"`` or
    ``"kswin"``, built with ``params`` (River's arguments). Needs ``headwater[river]``.
    """

    def __init__(self, detector: str = "adwin", *, on: str = "error", **params: Any) -> None:
        name = _DETECTORS.get(detector)
        if name is None:
            raise ValidationError("detector", f"unknown detector {detector!r}; use "
                                  f"{', '.join(_DETECTORS)}")
        try:
            drift = importlib.import_module("river.drift")
        except ImportError:
            raise MissingExtraError("A drift trigger", "river", "river") from None
        self.detector_name = detector
        self.on = on
        self.params = params
        self.detector: Any = getattr(drift, name)(**params)
        self.alarms = 0

    def _values(self, obs: Observation) -> npt.NDArray[Any]:
        if self.on == "error":
            errors: npt.NDArray[np.float64] = ((obs.served > 0.5) != (obs.y > 0.5)).astype(
                np.float64)
            return errors
        if self.on == "score":
            return obs.served
        column = obs.features.get(self.on)
        if column is None:
            return np.full(len(obs.y), np.nan)
        return np.asarray(column, dtype=np.float64)

    def observe(self, obs: Observation) -> Fire | None:
        fired: Fire | None = None
        update = self.detector.update
        for i, value in enumerate(self._values(obs).tolist()):
            if value != value:  # NaN: a missing feature value is no evidence of drift
                continue
            update(value)
            if self.detector.drift_detected:
                self.alarms += 1
                fired = fired or Fire("drift", f"{self.detector_name} on {self.on} flagged "
                                      f"a change at example {i} of the batch")
        return fired

    def reset(self, now: int) -> None:
        pass  # the detector adapts on its own; starting it over would forget the reference


class RateLimited:
    """``trigger``, firing at most once per ``interval`` µs; suppressed fires are counted."""

    def __init__(self, trigger: Trigger, interval: int) -> None:
        if interval <= 0:
            raise ValidationError("interval", "must be a positive duration")
        self.trigger = trigger
        self.interval = interval
        self.suppressed = 0
        self._last: int | None = None

    def observe(self, obs: Observation) -> Fire | None:
        fired = self.trigger.observe(obs)
        if fired is None:
            return None
        if self._last is not None and obs.now - self._last < self.interval:
            self.suppressed += 1
            return None
        return fired

    def reset(self, now: int) -> None:
        self._last = now
        self.trigger.reset(now)


class AnyOf:
    """The first of ``triggers`` that fires (all of them see every observation)."""

    def __init__(self, *triggers: Trigger) -> None:
        if not triggers:
            raise ValidationError("triggers", "give at least one trigger")
        self.triggers = triggers

    def observe(self, obs: Observation) -> Fire | None:
        fired = [t.observe(obs) for t in self.triggers]
        return next((f for f in fired if f is not None), None)

    def reset(self, now: int) -> None:
        for trigger in self.triggers:
            trigger.reset(now)
