"""The linear contextual policy: per-action ridge estimates, choices with known odds.

:class:`LinearPolicy` holds a :class:`~headwater.bandits.ridge.Ridge` model of each
action's reward given the context (plus an intercept), and turns it into a probability
for each action; subclasses say how (:mod:`~headwater.bandits.epsilon`,
:mod:`~headwater.bandits.linucb`, :mod:`~headwater.bandits.linear_thompson`).
:meth:`~LinearPolicy.choose` draws one action from those probabilities with the
policy's seeded generator (one uniform number per decision), so the propensity in the
:class:`~headwater.bandits.decision.Decision` is exact. A ``discount`` below 1 is the
forgetting variant: the models follow drift.

The state — the ridge statistics and the generator's state — is a JSON-able value
(:meth:`~LinearPolicy.snapshot`, :meth:`~LinearPolicy.restore`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from headwater.bandits.decision import Context, ContextEncoder, Decision, check_actions
from headwater.bandits.ridge import Ridge
from headwater.errors import BanditStateError, ValidationError
from headwater.routing.arms import check_rewards

__all__ = ["LinearPolicy"]

FloatArray = npt.NDArray[np.float64]


class LinearPolicy:
    """Ridge estimates of each action's reward, turned into action probabilities."""

    kind: ClassVar[str] = "linear"

    def __init__(self, features: int | Sequence[str], *, rng: np.random.Generator,
                 discount: float = 1.0, regularization: float = 1.0,
                 name: str | None = None) -> None:
        self.encoder = ContextEncoder(features)
        self.rng = rng
        self.ridge = Ridge(self.encoder.dim + 1, regularization=regularization,
                           discount=discount)
        self.name = name or self.kind
        self.decisions = 0

    def _x(self, context: Context) -> FloatArray:
        x = np.empty(self.encoder.dim + 1)
        x[0] = 1.0
        x[1:] = self.encoder.encode(context)
        return x

    def estimates(self, context: Context, actions: Sequence[str]) -> FloatArray:
        """The estimated reward of each of ``actions`` in ``context``."""
        x = self._x(context)
        return np.array([x @ self.ridge.theta(a) for a in check_actions(actions)])

    def probabilities(self, context: Context, actions: Sequence[str]) -> FloatArray:
        """The probability of choosing each of ``actions`` in ``context``."""
        return self._probabilities(self._x(context), check_actions(actions))

    def _probabilities(self, x: FloatArray, actions: tuple[str, ...]) -> FloatArray:
        raise NotImplementedError

    def choose(self, context: Context, actions: Sequence[str]) -> Decision:
        """Draw an action for ``context`` from :meth:`probabilities`."""
        names = check_actions(actions)
        p = self._probabilities(self._x(context), names)
        u = self.rng.random()
        acc, i = 0.0, len(names) - 1
        for j, pj in enumerate(p.tolist()):
            acc += pj
            if u < acc:
                i = j
                break
        self.decisions += 1
        return Decision(names[i], float(p[i]), self.name, names, tuple(p.tolist()))

    def update(self, contexts: Sequence[Context] | FloatArray, actions: Sequence[str],
               rewards: Sequence[float] | FloatArray) -> None:
        """Learn from the ``rewards`` of ``actions`` taken in ``contexts``, in order."""
        x = self.encoder.encode_many(contexts)
        r = check_rewards(rewards)
        names = list(actions)
        if not len(x) == len(names) == len(r):
            raise ValidationError("rewards", f"expected as many contexts, actions and rewards, "
                                  f"got {len(x)}, {len(names)} and {len(r)}")
        for action in names:
            if not isinstance(action, str) or not action:
                raise ValidationError("actions", f"expected an action name, got {action!r}")
        xs = np.empty((len(x), self.encoder.dim + 1))
        xs[:, 0] = 1.0
        xs[:, 1:] = x
        self.ridge.update(xs, names, r)

    def _params(self) -> dict[str, Any]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "discount": self.ridge.discount,
                "regularization": self.ridge.regularization, **self.encoder.describe(),
                **self._params()}

    def snapshot(self) -> dict[str, Any]:
        """The policy's state as JSON-able values (see :meth:`restore`)."""
        features = self.encoder.features
        return {"kind": self.kind, "name": self.name,
                "features": list(features) if features else self.encoder.dim,
                "params": self._params(), "ridge": self.ridge.snapshot(),
                "decisions": self.decisions, "rng": dict(self.rng.bit_generator.state)}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> LinearPolicy:
        """A policy that continues exactly where the snapshotted one was."""
        try:
            if state["kind"] != cls.kind:
                raise BanditStateError("kind", f"expected {cls.kind!r}, got {state['kind']!r}")
            ridge = Ridge.restore(state["ridge"])
            rng = np.random.default_rng()
            rng.bit_generator.state = state["rng"]
            policy = cls(state["features"], rng=rng, discount=ridge.discount,
                         regularization=ridge.regularization, name=state["name"],
                         **state["params"])
            policy.ridge = ridge
            policy.decisions = int(state["decisions"])
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, ValidationError):
                raise
            raise BanditStateError("state", f"not a {cls.kind} snapshot: {error!r}") from error
        return policy
