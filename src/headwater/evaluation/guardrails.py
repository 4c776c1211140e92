"""Guardrails: the limits a canary must stay within, checked on windows of traffic.

An :class:`ArmWindow` is what one arm did over a window: requests, errors, latencies,
scores, and the labels that arrived for some of its requests. :meth:`Guardrails.check`
compares the canary's window with the champion's and returns one :class:`Check` per
guardrail — ``ok``, ``breach``, ``waiting`` (not enough data yet) or ``off`` (not
measured: no latency was recorded, or ``metric=None``):

- **error rate**: at most ``max_error_rate``;
- **p99 latency**: at most ``max_p99_ms`` and at most ``max_p99_ratio`` times the
  champion's p99;
- **model metric** on labels: no worse than the champion's by more than
  ``max_metric_loss`` (needs ``min_labels`` labelled requests in each arm);
- **score drift**: the PSI of the canary's scores against the champion's at most
  ``max_psi`` (and the KS statistic at most ``max_ks`` when set).

Error rate, latency and drift need ``min_requests`` canary requests.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> champion = ArmWindow.of(rng.uniform(size=2_000), latency_ms=np.full(2_000, 2.0))
>>> canary = ArmWindow.of(rng.uniform(size=500), latency_ms=np.full(500, 9.0), errors=1)
>>> [(c.name, c.status) for c in Guardrails(max_p99_ratio=2.0).check(canary, champion)]
[('error_rate', 'ok'), ('p99_latency', 'breach'), ('metric', 'waiting'), ('score_psi', 'ok')]
>>> [c.status for c in Guardrails(metric=None).check(ArmWindow.of([0.5]), ArmWindow.of([0.5]))]
['waiting', 'off', 'off', 'waiting']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.evaluation.drift import ks, psi
from headwater.evaluation.metrics import higher_is_better, make_metric

__all__ = ["ArmWindow", "Check", "CheckStatus", "Guardrails"]

F64 = npt.NDArray[np.float64]
CheckStatus = Literal["ok", "breach", "waiting", "off"]


def _empty() -> F64:
    return np.zeros(0)


@dataclass(frozen=True)
class ArmWindow:
    """One arm over a window: ``requests`` answered, ``errors`` among them, each
    request's latency (ms) and score, and ``y`` with ``y_scores``: the labels known so
    far and the scores of those requests."""

    requests: int
    errors: int = 0
    latency_ms: F64 = field(default_factory=_empty)
    scores: F64 = field(default_factory=_empty)
    y: F64 = field(default_factory=_empty)
    y_scores: F64 = field(default_factory=_empty)

    @classmethod
    def of(cls, scores: npt.ArrayLike, *, errors: int = 0,
           latency_ms: npt.ArrayLike | None = None, y: npt.ArrayLike | None = None,
           y_scores: npt.ArrayLike | None = None) -> ArmWindow:
        """A window from the scores of its requests (one request per score)."""
        s = np.asarray(scores, np.float64)
        labels = _empty() if y is None else np.asarray(y, np.float64)
        labelled = (s[:len(labels)] if y_scores is None and len(labels) <= len(s)
                    else np.asarray(y_scores if y_scores is not None else [], np.float64))
        if len(labelled) != len(labels):
            raise ValidationError("y_scores", f"expected {len(labels)} scores (one per label), "
                                  f"got {len(labelled)}")
        return cls(len(s), errors, _empty() if latency_ms is None
                   else np.asarray(latency_ms, np.float64), s, labels, labelled)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else math.nan

    @property
    def p99_ms(self) -> float:
        return float(np.quantile(self.latency_ms, 0.99)) if len(self.latency_ms) else math.nan


@dataclass(frozen=True)
class Check:
    """One guardrail on one window: the canary's value, the limit, and the status."""

    name: str
    value: float
    limit: float
    status: CheckStatus
    detail: str


@dataclass(frozen=True)
class Guardrails:
    """The limits of a canary (see the module docstring)."""

    max_error_rate: float = 0.01
    max_p99_ms: float = math.inf
    max_p99_ratio: float = 1.5
    metric: str | None = "log_loss"
    max_metric_loss: float = 0.02
    max_psi: float = 0.2
    max_ks: float = math.inf
    min_requests: int = 200
    min_labels: int = 100

    def __post_init__(self) -> None:
        if self.metric is not None:
            make_metric(self.metric)
        for name in ("max_error_rate", "max_p99_ms", "max_p99_ratio", "max_metric_loss",
                     "max_psi", "max_ks"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value >= 0 and not math.isnan(value)):
                raise ValidationError(name, f"expected a number >= 0, got {value!r}")
        for name in ("min_requests", "min_labels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(name, f"expected a count >= 1, got {value!r}")

    def check(self, canary: ArmWindow, champion: ArmWindow) -> list[Check]:
        """One :class:`Check` per guardrail."""
        enough = canary.requests >= self.min_requests
        checks = [self._error_rate(canary, enough), self._latency(canary, champion, enough),
                  self._metric(canary, champion), self._psi(canary, champion, enough)]
        if self.max_ks < math.inf:
            value = ks(champion.scores, canary.scores)
            checks.append(_judge("score_ks", value, self.max_ks, enough,
                                 "KS statistic of the canary's scores against the champion's"))
        return checks

    def _error_rate(self, canary: ArmWindow, enough: bool) -> Check:
        return _judge("error_rate", canary.error_rate, self.max_error_rate, enough,
                      f"{canary.errors} errors in {canary.requests} requests")

    def _latency(self, canary: ArmWindow, champion: ArmWindow, enough: bool) -> Check:
        theirs = champion.p99_ms
        limit = self.max_p99_ms
        if not math.isnan(theirs):
            limit = min(limit, self.max_p99_ratio * theirs)
        if (not len(canary.latency_ms) and not len(champion.latency_ms)) or limit == math.inf:
            return Check("p99_latency", math.nan, limit, "off", "no latency recorded")
        ready = enough and len(canary.latency_ms) > 0
        return _judge("p99_latency", canary.p99_ms, limit, ready,
                      f"champion p99 {theirs:.3g} ms")

    def _metric(self, canary: ArmWindow, champion: ArmWindow) -> Check:
        metric = self.metric
        if metric is None:
            return Check("metric", math.nan, self.max_metric_loss, "off", "no metric guardrail")
        values = []
        for arm in (canary, champion):
            m = make_metric(metric)
            m.update(arm.y, arm.y_scores)
            values.append(m.value)
        ours, theirs = values
        loss = theirs - ours if higher_is_better(metric) else ours - theirs
        ready = min(len(canary.y), len(champion.y)) >= self.min_labels and not math.isnan(loss)
        return _judge("metric", loss, self.max_metric_loss, ready,
                      f"{metric} {ours:.4g} against the champion's {theirs:.4g} "
                      f"({len(canary.y)} and {len(champion.y)} labels)")

    def _psi(self, canary: ArmWindow, champion: ArmWindow, enough: bool) -> Check:
        ready = enough and champion.requests >= self.min_requests
        return _judge("score_psi", psi(champion.scores, canary.scores), self.max_psi, ready,
                      "PSI of the canary's scores against the champion's")


def _judge(name: str, value: float, limit: float, ready: bool, detail: str) -> Check:
    if not ready or math.isnan(value):
        return Check(name, value, limit, "waiting", detail)
    return Check(name, value, limit, "breach" if value > limit else "ok", detail)
