"""A sequential test of two means that is safe to peek at: the mixture SPRT.

Classical tests promise their error rate only if the data are looked at once, at a
sample size fixed in advance; checking a p-value as data arrive and stopping when it
dips below 0.05 rejects a true null far more often than 5%. The mixture sequential
probability ratio test (mSPRT; Johari, Pekelis & Walsh, *Always valid inference*,
2017) gives a p-value that stays valid however often it is looked at.

For the difference of two means ``θ = mean(B) - mean(A)`` (conversions, or any
per-example value such as a loss), with ``θ̂`` the observed difference and ``V`` its
variance (``s²_A/n_A + s²_B/n_B``), and a normal mixture ``N(0, τ²)`` over θ under
the alternative, the likelihood ratio against ``θ = 0`` is

    Λ = sqrt(V / (V + τ²)) · exp(τ² θ̂² / (2 V (V + τ²)))

The always-valid p-value is the running minimum of ``min(1, 1/Λ)``, and the matching
confidence sequence — every θ not rejected at level alpha — is
``θ̂ ± sqrt(V (V + τ²) / τ² · (2 log(1/alpha) + log((V + τ²) / V)))``, intersected over
time. ``τ`` is about the size of effect worth finding, in the outcome's units.

Two arms that have each been constant so far (``V = 0``) are the limit ``V → 0``: Λ grows
without bound when their means differ, so the test rejects (an arm that always converts
against one that never does is a difference, not noise), and the confidence sequence is
the difference itself; equal constant arms give no evidence either way.

>>> import numpy as np
>>> test = MixtureSPRT(alpha=0.05, tau=0.05)
>>> rng = np.random.default_rng(0)
>>> for _ in range(20):
...     test.update(rng.binomial(1, 0.10, 500), rng.binomial(1, 0.14, 500))
>>> test.rejected, round(test.estimate, 3), test.low > 0
(True, 0.032, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError

__all__ = ["MixtureSPRT", "Moments", "mixture_likelihood_ratio"]


@dataclass
class Moments:
    """Count, mean and the sum of squared deviations of a stream (Welford / Chan merge)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def update(self, values: npt.ArrayLike) -> None:
        x = np.asarray(values, dtype=np.float64).ravel()
        if not len(x):
            return
        if not np.isfinite(x).all():
            raise ValidationError("values", "NaN or infinite outcome")
        n_b, mean_b = len(x), float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / n
        self.m2 += m2_b + delta * delta * self.n * n_b / n
        self.n = n

    @property
    def variance(self) -> float:
        """The sample variance (``nan`` below two values)."""
        return self.m2 / (self.n - 1) if self.n > 1 else math.nan


def mixture_likelihood_ratio(estimate: float, variance: float, tau: float) -> float:
    """Λ for an observed difference ``estimate`` of variance ``variance`` (see above)."""
    t2 = tau * tau
    log_lr = 0.5 * math.log(variance / (variance + t2)) + (
        t2 * estimate * estimate / (2.0 * variance * (variance + t2)))
    return math.exp(min(log_lr, 700.0))


class MixtureSPRT:
    """The mSPRT of ``mean(B) - mean(A) = 0``; feed it batches of each arm's outcomes.

    ``min_samples`` per arm are needed before the test says anything (the variances
    are estimates). Once ``rejected``, it stays rejected.
    """

    def __init__(self, *, alpha: float = 0.05, tau: float = 0.05, min_samples: int = 30) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValidationError("alpha", f"expected a number in (0, 1), got {alpha!r}")
        if not (math.isfinite(tau) and tau > 0):
            raise ValidationError("tau", f"expected a number > 0, got {tau!r}")
        if min_samples < 2:
            raise ValidationError("min_samples", f"expected at least 2, got {min_samples!r}")
        self.alpha, self.tau, self.min_samples = alpha, tau, min_samples
        self.a, self.b = Moments(), Moments()
        self.p_value = 1.0
        self.low, self.high = -math.inf, math.inf

    @property
    def estimate(self) -> float:
        """The observed difference ``mean(B) - mean(A)``."""
        return self.b.mean - self.a.mean

    @property
    def variance(self) -> float:
        """The variance of :attr:`estimate` (``nan`` before ``min_samples`` per arm)."""
        if min(self.a.n, self.b.n) < self.min_samples:
            return math.nan
        return self.a.variance / self.a.n + self.b.variance / self.b.n

    @property
    def likelihood_ratio(self) -> float:
        """Λ now: 1 before the test can start; when both arms are constant, infinite if
        their means differ and 1 if not (see the module docstring)."""
        v = self.variance
        if math.isnan(v):
            return 1.0
        if v <= 0.0:
            return math.inf if self.estimate != 0.0 else 1.0
        return mixture_likelihood_ratio(self.estimate, v, self.tau)

    @property
    def rejected(self) -> bool:
        """Whether ``mean(B) = mean(A)`` is rejected at level ``alpha``."""
        return self.p_value <= self.alpha

    def update(self, a: npt.ArrayLike, b: npt.ArrayLike) -> None:
        """Add outcomes of arm A and of arm B, then look (a peek costs nothing)."""
        self.a.update(a)
        self.b.update(b)
        self.p_value = min(self.p_value, 1.0 / max(self.likelihood_ratio, 1.0))
        v = self.variance
        if math.isnan(v):
            return
        if v <= 0.0:
            self.low, self.high = max(self.low, self.estimate), min(self.high, self.estimate)
        else:
            t2 = self.tau * self.tau
            half = math.sqrt(v * (v + t2) / t2 * (2.0 * math.log(1.0 / self.alpha)
                                                  + math.log((v + t2) / v)))
            self.low = max(self.low, self.estimate - half)
            self.high = min(self.high, self.estimate + half)
