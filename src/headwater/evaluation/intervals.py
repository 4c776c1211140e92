"""Confidence intervals for the difference of a metric between two models on the same rows.

Both models scored the same examples, so the comparison is *paired*:

- ``"bootstrap"``: resample the rows with replacement (the same rows for both models),
  recompute the metric of each and take the percentiles of the difference. Works for
  every metric, AUC included; seeded, so the same input gives the same interval.
- ``"normal"``: for a metric that is a mean of per-example values (accuracy, log loss,
  MAE), the difference is the mean of per-example differences, and its interval is
  ``mean ± z · sd / sqrt(n)``.

>>> import numpy as np
>>> y = np.array([0, 1] * 50)
>>> a, b = np.where(y > 0, 0.8, 0.3), np.where(y > 0, 0.6, 0.4)
>>> d = paired_difference("accuracy", y, a, b, method="normal")
>>> d.difference, d.low, d.high
(0.0, 0.0, 0.0)
>>> d = paired_difference("log_loss", y, a, b, method="bootstrap", resamples=200)
>>> d.low < d.difference < d.high < 0
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.evaluation.metrics import make_metric
from headwater.models.metrics import log_losses

__all__ = ["PER_EXAMPLE", "Interval", "Method", "paired_difference", "per_example"]

Method = Literal["bootstrap", "normal"]
F64 = npt.NDArray[np.float64]
_CHUNK: Final = 2_000_000  # resampled rows per step of the bootstrap
#: The metrics that are means of per-example values (the normal approximation's).
PER_EXAMPLE: Final = ("accuracy", "log_loss", "mae")


@dataclass(frozen=True)
class Interval:
    """``difference`` = metric(a) - metric(b), with a two-sided interval."""

    metric: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    confidence: float
    method: Method


def per_example(metric: str, y: F64, scores: F64, threshold: float = 0.5) -> F64:
    """The per-example values whose mean is ``metric`` (one of :data:`PER_EXAMPLE`)."""
    if metric == "accuracy":
        hits: F64 = ((scores > threshold) == y.astype(bool)).astype(np.float64)
        return hits
    if metric == "log_loss":
        return log_losses(y, scores)
    if metric == "mae":
        error: F64 = np.abs(y - scores)
        return error
    raise ValidationError("method", f"the normal approximation needs a per-example metric "
                          f"({', '.join(PER_EXAMPLE)}), not {metric!r}: use the bootstrap")


def _value(metric: str, y: F64, scores: F64) -> float:
    m = make_metric(metric)
    m.update(y, scores)
    return m.value


def paired_difference(metric: str, y: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike, *,
                      method: Method = "bootstrap", confidence: float = 0.95,
                      resamples: int = 1_000, seed: int = 0) -> Interval:
    """metric(a) - metric(b) on the same labels ``y``, with its interval."""
    if not 0.0 < confidence < 1.0:
        raise ValidationError("confidence", f"expected a number in (0, 1), got {confidence!r}")
    if method not in ("bootstrap", "normal"):
        raise ValidationError("method", f"expected 'bootstrap' or 'normal', got {method!r}")
    labels = np.asarray(y, np.float64)
    sa, sb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n = len(labels)
    va, vb = _value(metric, labels, sa), _value(metric, labels, sb)
    diff = va - vb
    if n < 2 or math.isnan(diff):
        return Interval(metric, va, vb, diff, math.nan, math.nan, confidence, method)
    alpha = 1.0 - confidence
    if method == "normal":
        d = per_example(metric, labels, sa) - per_example(metric, labels, sb)
        z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
        half = z * float(d.std(ddof=1)) / math.sqrt(n)
        return Interval(metric, va, vb, diff, diff - half, diff + half, confidence, method)
    if resamples < 10:
        raise ValidationError("resamples", f"expected at least 10, got {resamples!r}")
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    per_step = max(1, _CHUNK // n)
    means: F64 | None = (per_example(metric, labels, sa) - per_example(metric, labels, sb)
                         if metric in PER_EXAMPLE else None)
    for start in range(0, resamples, per_step):
        count = min(per_step, resamples - start)
        rows = rng.integers(0, n, size=(count, n))
        if means is not None:  # a mean: one vectorised step
            diffs[start:start + count] = means[rows].mean(axis=1)
            continue
        for k in range(count):
            r = rows[k]
            diffs[start + k] = (_value(metric, labels[r], sa[r])
                                - _value(metric, labels[r], sb[r]))
    finite = diffs[~np.isnan(diffs)]
    if not len(finite):
        return Interval(metric, va, vb, diff, math.nan, math.nan, confidence, method)
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return Interval(metric, va, vb, diff, float(low), float(high), confidence, method)
