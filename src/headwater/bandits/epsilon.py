"""Epsilon-greedy: the action of highest estimated reward, or at random with rate epsilon.

With probability ``1 - epsilon`` the action whose ridge estimate is highest (ties
shared evenly), otherwise an action uniformly at random; every action keeps a
propensity of at least ``epsilon / k``.

>>> import numpy as np
>>> policy = EpsilonGreedy(1, rng=np.random.default_rng(0), epsilon=0.1)
>>> policy.update(np.array([[1.0], [1.0]]), ["up", "down"], [1.0, 0.0])
>>> policy.probabilities([1.0], ["down", "up"]).round(3).tolist()
[0.05, 0.95]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from headwater.bandits.linear import FloatArray, LinearPolicy
from headwater.errors import ValidationError

__all__ = ["EpsilonGreedy"]


class EpsilonGreedy(LinearPolicy):
    """Greedy on ridge estimates, uniform with probability ``epsilon``."""

    kind = "epsilon-greedy"

    def __init__(self, features: int | Sequence[str], *, rng: np.random.Generator,
                 epsilon: float = 0.05, discount: float = 1.0, regularization: float = 1.0,
                 name: str | None = None) -> None:
        if not isinstance(epsilon, int | float) or not 0.0 <= epsilon <= 1.0:
            raise ValidationError("policy.epsilon", f"expected 0..1, got {epsilon!r}")
        self.epsilon = float(epsilon)
        super().__init__(features, rng=rng, discount=discount, regularization=regularization,
                         name=name)

    def _probabilities(self, x: FloatArray, actions: tuple[str, ...]) -> FloatArray:
        scores = np.array([x @ self.ridge.theta(a) for a in actions])
        best: FloatArray = (scores == scores.max()).astype(np.float64)
        k = len(actions)
        out: FloatArray = (1.0 - self.epsilon) * best / float(best.sum()) + self.epsilon / k
        return out

    def _params(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon}
