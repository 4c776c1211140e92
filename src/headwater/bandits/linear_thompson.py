"""Linear Thompson sampling, with the exact probability of each action.

Thompson sampling draws ``θ̃_a ~ N(θ_a, v² A_a⁻¹)`` for each action and takes the
action whose ``xᵀθ̃_a`` is largest (Agrawal & Goyal 2013). The models of the actions
are independent, so each score ``xᵀθ̃_a`` is normal with mean ``xᵀθ_a`` and variance
``v² xᵀA_a⁻¹x``, and the probability that action ``a`` wins is a one-dimensional
integral, computed here on a grid (in closed form for two actions).
The policy draws its action from those probabilities — the same distribution as
sampling θ̃ — and so logs the exact propensity.

>>> import numpy as np
>>> policy = LinearThompson(1, rng=np.random.default_rng(0), scale=0.2)
>>> policy.update(np.array([[1.0]] * 30), ["up"] * 15 + ["down"] * 15, [1.0] * 15 + [0.0] * 15)
>>> float(policy.probabilities([1.0], ["up", "down"])[0]) > 0.99
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from headwater.bandits.linear import FloatArray, LinearPolicy
from headwater.errors import ValidationError

__all__ = ["LinearThompson", "win_probabilities"]

_GRID: Final = np.linspace(-8.0, 8.0, 161)
_SQRT2: Final = math.sqrt(2.0)
_SQRT2PI: Final = math.sqrt(2.0 * math.pi)


def _phi(z: FloatArray) -> FloatArray:
    """The standard normal CDF (Abramowitz & Stegun 7.1.26: error below 1.5e-7)."""
    x = np.abs(z) / _SQRT2
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (
        -1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-x * x)
    return 0.5 * (1.0 + np.sign(z) * erf)


def win_probabilities(mean: FloatArray, sd: FloatArray) -> FloatArray:
    """P(score ``a`` is the largest) for independent normal scores.

    Two scores in closed form; more by the trapezoid rule on a grid that resolves
    every score's density (161 points over ±8 standard deviations of each).

    >>> win_probabilities(np.array([0.0, 0.0]), np.array([1.0, 1.0])).tolist()
    [0.5, 0.5]
    >>> win_probabilities(np.zeros(3), np.ones(3)).round(4).tolist()
    [0.3333, 0.3333, 0.3333]
    """
    k = len(mean)
    sd = np.maximum(sd, 1e-12)
    if k == 1:
        return np.ones(1)
    if k == 2:
        p = float(_phi(np.array([(mean[0] - mean[1]) / math.hypot(sd[0], sd[1])]))[0])
        return np.array([p, 1.0 - p])
    s = np.unique((mean[:, None] + sd[:, None] * _GRID).ravel())
    z = (s[:, None] - mean) / sd
    pdf = np.exp(-0.5 * z * z) / (_SQRT2PI * sd)
    cdf = _phi(z)
    out = np.empty(k)
    for a in range(k):
        integrand = pdf[:, a] * np.prod(np.delete(cdf, a, axis=1), axis=1)
        out[a] = float(np.sum((integrand[1:] + integrand[:-1]) * np.diff(s)) / 2.0)
    return out / float(out.sum())


class LinearThompson(LinearPolicy):
    """Thompson sampling on per-action ridge posteriors (``scale`` is v)."""

    kind = "linear-thompson"

    def __init__(self, features: int | Sequence[str], *, rng: np.random.Generator,
                 scale: float = 1.0, discount: float = 1.0, regularization: float = 1.0,
                 name: str | None = None) -> None:
        if not isinstance(scale, int | float) or not 0.0 < scale < float("inf"):
            raise ValidationError("policy.scale", f"expected a finite number > 0, "
                                  f"got {scale!r}")
        self.scale = float(scale)
        super().__init__(features, rng=rng, discount=discount, regularization=regularization,
                         name=name)

    def _probabilities(self, x: FloatArray, actions: tuple[str, ...]) -> FloatArray:
        ridge = self.ridge
        mean = np.array([x @ ridge.theta(a) for a in actions])
        var = np.array([max(float(x @ ridge.inverse(a) @ x), 0.0) for a in actions])
        return win_probabilities(mean, self.scale * np.sqrt(var))

    def _params(self) -> dict[str, Any]:
        return {"scale": self.scale}
