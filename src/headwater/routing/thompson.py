"""Thompson sampling over model versions: Beta-Bernoulli and Gaussian rewards.

Thompson sampling routes to each arm with the posterior probability that it is the
best. :class:`BetaThompson` keeps a Beta(α₀ + successes, β₀ + failures) posterior of
each arm's mean reward (rewards in [0, 1], e.g. "the prediction was right");
:class:`GaussianThompson` a normal posterior of the mean of real-valued rewards, whose
noise variance is estimated from the rewards (with ``prior_variance`` as ``prior_weight``
pseudo-observations). The probability of each arm being the best is estimated once per
update from ``samples`` joint posterior draws; the policy then routes with exactly those
probabilities, so the logged propensity is the true probability of the choice.

Discounting (``discount``) or a sliding window (``window``) makes the posteriors
forget old rewards, so the policy follows drift.

>>> import numpy as np
>>> policy = GaussianThompson(("a", "b"), rng=np.random.default_rng(1), discount=0.99)
>>> policy.update("a", [1.0, 1.2, 0.9, 1.1])
>>> policy.update("b", [0.1, -0.2, 0.0, 0.2])
>>> policy.probabilities["a"] > 0.95
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from headwater.errors import ValidationError
from headwater.routing.bandit import BanditPolicy, FloatArray

__all__ = ["BetaThompson", "GaussianThompson"]

_SAMPLES = 4096


def _win_rates(draws: FloatArray) -> FloatArray:
    """The share of rows (joint draws) in which each column is the largest."""
    k = draws.shape[1]
    counts = np.bincount(np.argmax(draws, axis=1), minlength=k).astype(np.float64)
    return counts / float(counts.sum())


def _positive(field: str, value: object) -> float:
    if not isinstance(value, int | float) or not 0.0 < value < float("inf"):
        raise ValidationError(field, f"expected a finite number > 0, got {value!r}")
    return float(value)


class BetaThompson(BanditPolicy):
    """Thompson sampling with Beta-Bernoulli posteriors (rewards in [0, 1])."""

    kind = "thompson-beta"

    def __init__(self, arms: Sequence[str], *, rng: np.random.Generator,
                 discount: float = 1.0, window: int | None = None, explore: float = 0.0,
                 alpha: float = 1.0, beta: float = 1.0, samples: int = _SAMPLES,
                 block: int = 1024) -> None:
        self.alpha = _positive("policy.alpha", alpha)
        self.beta = _positive("policy.beta", beta)
        self.samples = int(_positive("policy.samples", samples))
        super().__init__(arms, rng=rng, discount=discount, window=window, explore=explore,
                         block=block)

    def _check(self, rewards: FloatArray) -> FloatArray:
        if rewards.size and (rewards.min() < 0.0 or rewards.max() > 1.0):
            raise ValidationError("rewards", "Beta-Bernoulli rewards must lie in [0, 1]")
        return rewards

    def _scores(self) -> FloatArray:
        n, s = self.stats.n, self.stats.s
        if len(n) == 1:
            return np.ones(1)
        a = self.alpha + s
        b = self.beta + np.maximum(n - s, 0.0)
        return _win_rates(self.rng.beta(a, b, size=(self.samples, len(n))))

    def _params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta, "samples": self.samples}


class GaussianThompson(BanditPolicy):
    """Thompson sampling with normal posteriors of each arm's mean reward."""

    kind = "thompson-gaussian"

    def __init__(self, arms: Sequence[str], *, rng: np.random.Generator,
                 discount: float = 1.0, window: int | None = None, explore: float = 0.0,
                 prior_mean: float = 0.0, prior_variance: float = 1.0,
                 prior_weight: float = 1.0, samples: int = _SAMPLES,
                 block: int = 1024) -> None:
        if not isinstance(prior_mean, int | float) or not np.isfinite(prior_mean):
            raise ValidationError("policy.prior_mean", f"expected a finite number, "
                                  f"got {prior_mean!r}")
        self.prior_mean = float(prior_mean)
        self.prior_variance = _positive("policy.prior_variance", prior_variance)
        self.prior_weight = _positive("policy.prior_weight", prior_weight)
        self.samples = int(_positive("policy.samples", samples))
        super().__init__(arms, rng=rng, discount=discount, window=window, explore=explore,
                         block=block)

    def posterior(self) -> tuple[FloatArray, FloatArray]:
        """Each arm's posterior mean and standard deviation of its mean reward."""
        n, s, q = self.stats.n, self.stats.s, self.stats.q
        w0 = self.prior_weight
        weight = n + w0
        mean = (w0 * self.prior_mean + s) / weight
        mean_data = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
        spread = np.maximum(q - n * mean_data * mean_data, 0.0)
        variance = (spread + w0 * self.prior_variance) / weight
        return mean, np.sqrt(variance / weight)

    def _scores(self) -> FloatArray:
        if self.stats.arms == 1:
            return np.ones(1)
        mean, sd = self.posterior()
        draws = mean + sd * self.rng.standard_normal((self.samples, len(mean)))
        return _win_rates(draws)

    def _params(self) -> dict[str, Any]:
        return {"prior_mean": self.prior_mean, "prior_variance": self.prior_variance,
                "prior_weight": self.prior_weight, "samples": self.samples}
