"""Per-arm reward statistics that forget: discounted, windowed, or kept for ever.

:class:`ArmStatistics` holds, for each arm, a weighted count ``n``, a weighted sum of
rewards ``s`` and a weighted sum of squared rewards ``q``. Time is counted in
observations: every reward observed, whatever its arm, is one step.

- ``discount`` g < 1: at every step every arm's weights are multiplied by g, so a
  reward seen ``k`` steps ago weighs ``g**k`` (discounted UCB / Thompson sampling). A
  batch of ``m`` rewards of one arm is applied in closed form, and equals ``m``
  single updates exactly.
- ``window`` W: only the last W observations count (sliding-window UCB). The sums are
  kept incrementally; the rewards in the window are kept too, so an observation leaving
  the window is subtracted.

>>> stats = ArmStatistics(2, discount=0.5)
>>> stats.update(0, [1.0, 1.0])
>>> stats.update(1, [0.0])
>>> stats.n.tolist(), stats.s.tolist()
([0.75, 1.0], [0.75, 0.0])
>>> windowed = ArmStatistics(2, window=2)
>>> for arm, reward in [(0, 1.0), (1, 0.0), (1, 1.0)]:
...     windowed.update(arm, [reward])
>>> windowed.n.tolist(), windowed.s.tolist()
([0.0, 2.0], [0.0, 1.0])
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from headwater.errors import BanditStateError, ValidationError

__all__ = ["ArmStatistics"]

FloatArray = npt.NDArray[np.float64]


def check_rewards(rewards: Sequence[float] | npt.ArrayLike, field: str = "rewards") -> FloatArray:
    """``rewards`` as a 1-D float array of finite values, or a :class:`ValidationError`."""
    try:
        values = np.asarray(rewards, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise ValidationError(field, f"expected numbers: {error}") from error
    if not np.all(np.isfinite(values)):
        raise ValidationError(field, "rewards must be finite")
    return values


class ArmStatistics:
    """Weighted count, sum and sum of squares of each of ``arms`` arms' rewards."""

    def __init__(self, arms: int, *, discount: float = 1.0, window: int | None = None) -> None:
        if isinstance(arms, bool) or not isinstance(arms, int) or arms < 1:
            raise ValidationError("arms", f"expected at least one arm, got {arms!r}")
        if not isinstance(discount, int | float) or not 0.0 < discount <= 1.0:
            raise ValidationError("discount", f"expected 0 < discount <= 1, got {discount!r}")
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or window < 1):
            raise ValidationError("window", f"expected an int >= 1, got {window!r}")
        if window is not None and discount != 1.0:
            raise ValidationError("window", "give a discount or a window, not both")
        self.arms = arms
        self.discount = float(discount)
        self.window = window
        self.n: FloatArray = np.zeros(arms)
        self.s: FloatArray = np.zeros(arms)
        self.q: FloatArray = np.zeros(arms)
        self.steps = 0
        self._recent: deque[tuple[int, float]] = deque()

    @property
    def mean(self) -> FloatArray:
        """Each arm's weighted mean reward (0 for an arm without weight)."""
        return np.divide(self.s, self.n, out=np.zeros(self.arms), where=self.n > 0)

    def update(self, arm: int, rewards: Sequence[float] | npt.ArrayLike) -> None:
        """Observe ``rewards`` of ``arm``, in order, one step each."""
        if isinstance(arm, bool) or not isinstance(arm, int | np.integer) \
                or not 0 <= arm < self.arms:
            raise ValidationError("arm", f"expected an arm index in 0..{self.arms - 1}, "
                                  f"got {arm!r}")
        values = check_rewards(rewards)
        m = len(values)
        if m == 0:
            return
        self.steps += m
        if self.window is not None:
            self._slide(int(arm), values)
            return
        if self.discount == 1.0:
            self.n[arm] += m
            self.s[arm] += float(values.sum())
            self.q[arm] += float((values * values).sum())
            return
        weights = self.discount ** np.arange(m - 1, -1, -1, dtype=np.float64)
        decay = self.discount ** m
        self.n *= decay
        self.s *= decay
        self.q *= decay
        self.n[arm] += float(weights.sum())
        self.s[arm] += float(weights @ values)
        self.q[arm] += float(weights @ (values * values))

    def _slide(self, arm: int, values: FloatArray) -> None:
        assert self.window is not None
        recent = self._recent
        for value in values.tolist():
            recent.append((arm, value))
            self.n[arm] += 1.0
            self.s[arm] += value
            self.q[arm] += value * value
            if len(recent) > self.window:
                old_arm, old = recent.popleft()
                self.n[old_arm] -= 1.0
                self.s[old_arm] -= old
                self.q[old_arm] -= old * old
        # Counts are exact; sums would drift by rounding, so an arm whose window
        # empties is reset to exact zeros.
        empty = self.n <= 0.0
        self.n[empty] = 0.0
        self.s[empty] = 0.0
        self.q[empty] = 0.0

    def snapshot(self) -> dict[str, Any]:
        """The statistics as JSON-able values (see :meth:`restore`)."""
        return {"arms": self.arms, "discount": self.discount, "window": self.window,
                "steps": self.steps, "n": self.n.tolist(), "s": self.s.tolist(),
                "q": self.q.tolist(), "recent": [list(r) for r in self._recent]}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> ArmStatistics:
        """Statistics equal to those :meth:`snapshot` saw."""
        try:
            stats = cls(state["arms"], discount=state["discount"], window=state["window"])
            stats.steps = int(state["steps"])
            for name in ("n", "s", "q"):
                values = np.asarray(state[name], dtype=np.float64)
                if values.shape != (stats.arms,):
                    raise BanditStateError(name, f"expected {stats.arms} values")
                setattr(stats, name, values)
            stats._recent = deque((int(a), float(r)) for a, r in state["recent"])
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, ValidationError):
                raise
            raise BanditStateError("state", f"not a statistics snapshot: {error!r}") from error
        return stats
