"""Per-action ridge regression that forgets: the state of the linear contextual policies.

For each action ``a`` the state is the (discounted) Gram matrix ``D_a = Σ w x xᵀ`` and
vector ``b_a = Σ w r x`` of the contexts in which ``a`` was taken and the rewards it
earned. The ridge estimate is ``θ_a = (λI + D_a)⁻¹ b_a``. With ``discount`` g < 1 every
observation, of any action, multiplies every action's ``D`` and ``b`` by g first
(discounted LinUCB, Russac et al. 2019), so old contexts fade and the model follows
drift. A batch of observations is applied in closed form and equals the same
observations applied one by one.

>>> import numpy as np
>>> ridge = Ridge(2, regularization=1.0)
>>> ridge.update(np.array([[1.0, 0.0], [1.0, 0.0]]), ["a", "a"], np.array([1.0, 1.0]))
>>> ridge.theta("a").round(3).tolist()
[0.667, 0.0]
>>> ridge.theta("never").tolist()
[0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from headwater.errors import BanditStateError, ValidationError

__all__ = ["Ridge"]

FloatArray = npt.NDArray[np.float64]


class Ridge:
    """Ridge regressions of reward on context, one per action, sharing one clock."""

    def __init__(self, dim: int, *, regularization: float = 1.0, discount: float = 1.0) -> None:
        if not isinstance(regularization, int | float) or not 0.0 < regularization < np.inf:
            raise ValidationError("policy.regularization",
                                  f"expected a finite number > 0, got {regularization!r}")
        if not isinstance(discount, int | float) or not 0.0 < discount <= 1.0:
            raise ValidationError("policy.discount",
                                  f"expected 0 < discount <= 1, got {discount!r}")
        self.dim = dim
        self.regularization = float(regularization)
        self.discount = float(discount)
        self.gram: dict[str, FloatArray] = {}
        self.moment: dict[str, FloatArray] = {}
        self.steps = 0
        self._inverse: dict[str, FloatArray] = {}
        self._theta: dict[str, FloatArray] = {}
        self._prior_inverse = np.eye(dim) / self.regularization
        self._zero = np.zeros(dim)

    def inverse(self, action: str) -> FloatArray:
        """``(λI + D_a)⁻¹`` (``I / λ`` for an action never taken)."""
        return self._inverse.get(action, self._prior_inverse)

    def theta(self, action: str) -> FloatArray:
        """The ridge estimate ``θ_a``."""
        return self._theta.get(action, self._zero)

    def update(self, x: FloatArray, actions: Sequence[str], rewards: FloatArray) -> None:
        """Add observations (rows of ``x``, in order) of ``actions`` and their ``rewards``."""
        m = len(actions)
        if m == 0:
            return
        self.steps += m
        touched = set(actions)
        if self.discount < 1.0:
            weights = self.discount ** np.arange(m - 1, -1, -1, dtype=np.float64)
            decay = self.discount ** m
            for action in self.gram:
                self.gram[action] *= decay
                self.moment[action] *= decay
            touched |= set(self.gram)
        else:
            weights = np.ones(m)
        picked = np.asarray(actions, dtype=object)
        for action in set(actions):
            rows = picked == action
            xa, wa = x[rows], weights[rows]
            gram = self.gram.get(action)
            if gram is None:
                gram = self.gram[action] = np.zeros((self.dim, self.dim))
                self.moment[action] = np.zeros(self.dim)
            gram += (xa * wa[:, None]).T @ xa
            self.moment[action] += xa.T @ (wa * rewards[rows])
        for action in touched:
            self._solve(action)

    def _solve(self, action: str) -> None:
        a = self.gram[action] + self.regularization * np.eye(self.dim)
        inverse = np.asarray(np.linalg.inv(a), dtype=np.float64)
        self._inverse[action] = inverse
        self._theta[action] = inverse @ self.moment[action]

    def snapshot(self) -> dict[str, Any]:
        return {"dim": self.dim, "regularization": self.regularization,
                "discount": self.discount, "steps": self.steps,
                "gram": {a: g.tolist() for a, g in self.gram.items()},
                "moment": {a: b.tolist() for a, b in self.moment.items()}}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> Ridge:
        try:
            ridge = cls(int(state["dim"]), regularization=state["regularization"],
                        discount=state["discount"])
            ridge.steps = int(state["steps"])
            for action, gram in state["gram"].items():
                g = np.asarray(gram, dtype=np.float64)
                b = np.asarray(state["moment"][action], dtype=np.float64)
                if g.shape != (ridge.dim, ridge.dim) or b.shape != (ridge.dim,):
                    raise BanditStateError(f"gram.{action}", "wrong shape")
                ridge.gram[action], ridge.moment[action] = g, b
                ridge._solve(action)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            if isinstance(error, ValidationError):
                raise
            raise BanditStateError("state", f"not a ridge snapshot: {error!r}") from error
        return ridge
