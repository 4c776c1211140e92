"""LinUCB: the action of highest upper confidence bound on its linear reward estimate.

The bound is ``xᵀθ_a + alpha * sqrt(xᵀ A_a⁻¹ x)`` (Li et al. 2010, disjoint models).
The choice is deterministic (ties shared evenly), so its propensity is 1: LinUCB logs
are poor data for off-policy estimates of other policies — log an exploring policy
(:class:`~headwater.bandits.epsilon.EpsilonGreedy`, linear Thompson sampling) when
that matters.

>>> import numpy as np
>>> policy = LinUCB(1, rng=np.random.default_rng(0), alpha=2.0)
>>> policy.update(np.array([[1.0]] * 20), ["up"] * 20, [1.0] * 20)
>>> policy.choose([1.0], ["up", "down"]).action   # "down" has never been tried
'down'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from headwater.bandits.linear import FloatArray, LinearPolicy
from headwater.errors import ValidationError

__all__ = ["LinUCB"]


class LinUCB(LinearPolicy):
    """Upper confidence bounds on per-action ridge estimates (``alpha`` scales them)."""

    kind = "linucb"

    def __init__(self, features: int | Sequence[str], *, rng: np.random.Generator,
                 alpha: float = 1.0, discount: float = 1.0, regularization: float = 1.0,
                 name: str | None = None) -> None:
        if not isinstance(alpha, int | float) or not 0.0 <= alpha < float("inf"):
            raise ValidationError("policy.alpha", f"expected a finite number >= 0, "
                                  f"got {alpha!r}")
        self.alpha = float(alpha)
        super().__init__(features, rng=rng, discount=discount, regularization=regularization,
                         name=name)

    def bounds(self, x: FloatArray, actions: tuple[str, ...]) -> FloatArray:
        ridge = self.ridge
        return np.array([x @ ridge.theta(a) + self.alpha * np.sqrt(max(
            float(x @ ridge.inverse(a) @ x), 0.0)) for a in actions])

    def _probabilities(self, x: FloatArray, actions: tuple[str, ...]) -> FloatArray:
        bounds = self.bounds(x, actions)
        best: FloatArray = (bounds == bounds.max()).astype(np.float64)
        return best / float(best.sum())

    def _params(self) -> dict[str, Any]:
        return {"alpha": self.alpha}
