"""Off-policy estimates: the value a *target* policy would have earned, from logs of another.

Each logged decision ``i`` has its reward ``r_i``, the logging policy's propensity
``p_i = μ(a_i | x_i)`` and the target policy's probability ``π_i = π(a_i | x_i)`` of the
same action; ``w_i = π_i / p_i`` is its importance weight.

- :func:`ips`: inverse propensity scoring, ``mean(w r)``; unbiased when the logging
  policy gives every action the target takes a positive probability.
- :func:`snips`: self-normalised IPS, ``Σ w r / Σ w``; slightly biased, much less
  variable when weights are large.
- :func:`doubly_robust`: a reward model's estimate ``v̂_i = Σ_a π(a | x_i) r̂(x_i, a)``
  corrected by the weighted residual ``w_i (r_i - r̂(x_i, a_i))``; unbiased if either
  the propensities or the reward model are right, and less variable than IPS when the
  model is good.

Each returns an :class:`Estimate` with a confidence interval: the normal approximation
(delta method for SNIPS) by default, or a percentile bootstrap (``rng`` and
``resamples``). :func:`progressive_rewards` is a reward model for doubly robust
estimates: per-action ridge predictions each made before the row was learnt.

>>> import numpy as np
>>> r, p = np.array([1.0, 0.0, 1.0, 1.0]), np.full(4, 0.5)
>>> ips(r, p, np.array([1.0, 1.0, 0.0, 1.0])).value
1.0
>>> snips(r, p, np.array([1.0, 1.0, 0.0, 1.0])).value.__round__(3)
0.667
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Final, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from headwater.bandits.ridge import Ridge
from headwater.errors import ValidationError

__all__ = ["Estimate", "doubly_robust", "ips", "progressive_rewards", "snips"]

FloatArray = npt.NDArray[np.float64]
IntervalMethod = Literal["normal", "bootstrap"]
_RESAMPLES: Final = 1000


class Estimate(NamedTuple):
    """A policy value with a two-sided confidence interval at ``level``."""

    method: str
    value: float
    lower: float
    upper: float
    n: int
    level: float

    def covers(self, value: float) -> bool:
        return self.lower <= value <= self.upper


def _z(level: float) -> float:
    """The normal quantile of a two-sided interval at ``level``."""
    return NormalDist().inv_cdf((1.0 + level) / 2.0)


def _array(field: str, values: npt.ArrayLike, n: int | None, low: float | None = None,
           high: float | None = None, *, open_low: bool = False) -> FloatArray:
    try:
        out = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise ValidationError(field, f"expected numbers: {error}") from error
    if n is not None and len(out) != n:
        raise ValidationError(field, f"expected {n} values, got {len(out)}")
    if not np.all(np.isfinite(out)):
        raise ValidationError(field, "values must be finite")
    if low is not None and (np.any(out <= low) if open_low else np.any(out < low)):
        raise ValidationError(field, f"values must be {'>' if open_low else '>='} {low}")
    if high is not None and np.any(out > high):
        raise ValidationError(field, f"values must be <= {high}")
    return out


def _inputs(rewards: npt.ArrayLike, propensities: npt.ArrayLike, target: npt.ArrayLike
            ) -> tuple[FloatArray, FloatArray]:
    r = _array("rewards", rewards, None)
    if len(r) == 0:
        raise ValidationError("rewards", "no logged decisions")
    p = _array("propensities", propensities, len(r), 0.0, 1.0, open_low=True)
    pi = _array("target", target, len(r), 0.0, 1.0)
    return r, pi / p


def _check_level(level: float) -> float:
    if not isinstance(level, int | float) or not 0.0 < level < 1.0:
        raise ValidationError("level", f"expected 0 < level < 1, got {level!r}")
    return float(level)


def _bootstrap(method: str, statistic: Callable[[npt.NDArray[np.int64]], float], n: int,
               level: float, rng: np.random.Generator | None, resamples: int) -> Estimate:
    if rng is None:
        raise ValidationError("rng", "a bootstrap interval needs a seeded generator")
    if resamples < 10:
        raise ValidationError("resamples", f"expected at least 10, got {resamples!r}")
    everything = np.arange(n)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)])
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(values, [tail, 1.0 - tail])
    return Estimate(method, statistic(everything), float(lower), float(upper), n, level)


def _mean_estimate(method: str, terms: FloatArray, level: float, interval: IntervalMethod,
                   rng: np.random.Generator | None, resamples: int) -> Estimate:
    n = len(terms)
    if interval == "bootstrap":
        return _bootstrap(method, lambda i: float(terms[i].mean()), n, level, rng, resamples)
    if interval != "normal":
        raise ValidationError("interval", f"expected 'normal' or 'bootstrap', got {interval!r}")
    value = float(terms.mean())
    half = _z(level) * (float(terms.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf)
    return Estimate(method, value, value - half, value + half, n, level)


def ips(rewards: npt.ArrayLike, propensities: npt.ArrayLike, target: npt.ArrayLike, *,
        level: float = 0.95, interval: IntervalMethod = "normal",
        rng: np.random.Generator | None = None, resamples: int = _RESAMPLES) -> Estimate:
    """Inverse propensity scoring."""
    r, w = _inputs(rewards, propensities, target)
    return _mean_estimate("ips", w * r, _check_level(level), interval, rng, resamples)


def snips(rewards: npt.ArrayLike, propensities: npt.ArrayLike, target: npt.ArrayLike, *,
          level: float = 0.95, interval: IntervalMethod = "normal",
          rng: np.random.Generator | None = None, resamples: int = _RESAMPLES) -> Estimate:
    """Self-normalised inverse propensity scoring."""
    r, w = _inputs(rewards, propensities, target)
    level = _check_level(level)
    n = len(r)

    def value_of(i: npt.NDArray[np.int64]) -> float:
        total = float(w[i].sum())
        return float((w[i] * r[i]).sum()) / total if total > 0.0 else 0.0

    if interval == "bootstrap":
        return _bootstrap("snips", value_of, n, level, rng, resamples)
    if interval != "normal":
        raise ValidationError("interval", f"expected 'normal' or 'bootstrap', got {interval!r}")
    value = value_of(np.arange(n))
    total = float(w.sum())
    if total <= 0.0:
        return Estimate("snips", value, -math.inf, math.inf, n, level)
    # Delta method: Var(Σwr / Σw) ≈ Σ (w (r - V))² / (Σw)².
    se = math.sqrt(float(((w * (r - value)) ** 2).sum())) / total
    half = _z(level) * se
    return Estimate("snips", value, value - half, value + half, n, level)


def doubly_robust(rewards: npt.ArrayLike, propensities: npt.ArrayLike, target: npt.ArrayLike,
                  predicted: npt.ArrayLike, expected: npt.ArrayLike, *, level: float = 0.95,
                  interval: IntervalMethod = "normal", rng: np.random.Generator | None = None,
                  resamples: int = _RESAMPLES) -> Estimate:
    """The doubly robust estimate.

    ``predicted``: the reward model's ``r̂(x_i, a_i)`` of the logged action;
    ``expected``: ``Σ_a π(a | x_i) r̂(x_i, a)`` under the target policy.
    """
    r, w = _inputs(rewards, propensities, target)
    fit = _array("predicted", predicted, len(r))
    base = _array("expected", expected, len(r))
    return _mean_estimate("dr", base + w * (r - fit), _check_level(level), interval, rng,
                          resamples)


def progressive_rewards(contexts: FloatArray, actions: npt.NDArray[np.int64],
                        rewards: FloatArray, k: int, *, regularization: float = 1.0
                        ) -> FloatArray:
    """``r̂(x_i, a)`` for every row and action, each predicted before row ``i`` is learnt.

    A ridge regression per action (with an intercept) on the logged rows only: the
    reward model of a doubly robust estimate that never sees the reward it corrects.
    """
    n, d = contexts.shape
    if len(actions) != n or len(rewards) != n:
        raise ValidationError("actions", "expected one action and one reward per context")
    names = [str(a) for a in range(k)]
    ridge = Ridge(d + 1, regularization=regularization)
    x = np.empty((n, d + 1))
    x[:, 0] = 1.0
    x[:, 1:] = contexts
    out = np.empty((n, k))
    for i in range(n):
        for a in range(k):
            out[i, a] = x[i] @ ridge.theta(names[a])
        ridge.update(x[i:i + 1], [names[int(actions[i])]], rewards[i:i + 1])
    return out
