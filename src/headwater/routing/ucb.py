"""UCB1 over model versions, discounted or windowed to follow drift.

UCB1 routes to the arm with the largest upper confidence bound
``mean + c * sqrt(2 ln N / n)``, where ``n`` is the arm's (discounted or windowed)
number of rewards and ``N`` the sum over arms; an arm without rewards goes first.
With ``discount`` it is discounted UCB (Garivier & Moulines, 2011), with ``window``
sliding-window UCB. The choice is deterministic between updates (ties are split
evenly), so the propensity of the chosen arm is 1 — or less with ties or ``explore``.

>>> import numpy as np
>>> policy = UCB1(("champion", "challenger"), rng=np.random.default_rng(0), window=500)
>>> policy.update("champion", [1.0, 1.0, 0.0])
>>> policy.choose("u").arm   # never tried yet
'challenger'
>>> policy.update("challenger", [0.0, 0.0, 0.0])
>>> policy.decide("u")
ArmDecision(route=Route(arm='champion', shadows=()), propensity=1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from headwater.errors import ValidationError
from headwater.routing.bandit import BanditPolicy, FloatArray

__all__ = ["UCB1"]


class UCB1(BanditPolicy):
    """The arm of highest upper confidence bound (``c`` scales the bonus)."""

    kind = "ucb1"

    def __init__(self, arms: Sequence[str], *, rng: np.random.Generator,
                 discount: float = 1.0, window: int | None = None, explore: float = 0.0,
                 c: float = 1.0, block: int = 1024) -> None:
        if not isinstance(c, int | float) or not 0.0 <= c < float("inf"):
            raise ValidationError("policy.c", f"expected a finite number >= 0, got {c!r}")
        self.c = float(c)
        super().__init__(arms, rng=rng, discount=discount, window=window, explore=explore,
                         block=block)

    def bounds(self) -> FloatArray:
        """Each arm's upper confidence bound (``inf`` for an arm without rewards)."""
        n = self.stats.n
        total = float(n.sum())
        tried = n > 1e-12
        bonus = np.full(len(n), np.inf)
        if total > 1.0:
            bonus[tried] = self.c * np.sqrt(2.0 * np.log(total) / n[tried])
        elif tried.any():
            bonus[tried] = 0.0
        return np.where(tried, self.stats.mean + bonus, np.inf)

    def _scores(self) -> FloatArray:
        bounds = self.bounds()
        best: FloatArray = (bounds == bounds.max()).astype(np.float64)
        return best / float(best.sum())

    def _params(self) -> dict[str, Any]:
        return {"c": self.c}
