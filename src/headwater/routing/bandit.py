"""The routing bandit: a :class:`~headwater.routing.policies.Policy` that learns from rewards.

A :class:`BanditPolicy` routes each request to one model version (an *arm*, an alias
name such as ``champion``) at random with probabilities it recomputes from the rewards
it is given (:meth:`BanditPolicy.update`, in batches, from joined labels). Subclasses
say how rewards become probabilities: Thompson sampling
(:mod:`headwater.routing.thompson`) and UCB1 (:mod:`headwater.routing.ucb`).

The hot path allocates nothing. After every update the policy draws a *plan*: a block
of arm choices sampled from the probabilities with the policy's seeded generator, as
ready-made :class:`ArmDecision` values. :meth:`~BanditPolicy.choose` hands out the next
one, and draws a new block when the plan runs out. Every choice is therefore a draw
from known probabilities, and its propensity (the probability of the chosen arm) is
exact: :meth:`~BanditPolicy.decide` returns it with the route, for the prediction log.

Routing is per request, not sticky per entity: a bandit must be free to move traffic.
Requests may be routed from many threads while one thread updates: an update swaps in
a whole new plan, so a choice is always drawn from one set of probabilities.

``explore`` mixes a uniform share into the probabilities, so every arm keeps a
propensity of at least ``explore / arms`` (what off-policy estimates need).

>>> import numpy as np
>>> from headwater.routing.thompson import BetaThompson
>>> policy = BetaThompson(("champion", "challenger"), rng=np.random.default_rng(0))
>>> policy.update("challenger", [1.0] * 50)
>>> policy.update("champion", [0.0] * 50)
>>> policy.choose("user-1").arm
'challenger'
>>> policy.decide("user-2").propensity
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from headwater.errors import BanditStateError, ValidationError
from headwater.routing.arms import ArmStatistics, check_rewards
from headwater.routing.policies import Route

__all__ = ["ArmDecision", "BanditPolicy"]

FloatArray = npt.NDArray[np.float64]
_BLOCK: Final = 1024


class ArmDecision(NamedTuple):
    """A route and the probability with which it was chosen."""

    route: Route
    propensity: float


def _check_arms(arms: Sequence[str]) -> tuple[str, ...]:
    names = tuple(arms)
    if not names:
        raise ValidationError("policy.arms", "at least one arm is needed")
    for arm in names:
        if not isinstance(arm, str) or not arm:
            raise ValidationError("policy.arms", f"expected an alias name, got {arm!r}")
    if len(set(names)) != len(names):
        raise ValidationError("policy.arms", "arms repeat")
    return names


class BanditPolicy:
    """Routes to arms with probabilities learnt from rewards (see the module docstring)."""

    kind: ClassVar[str] = "bandit"

    def __init__(self, arms: Sequence[str], *, rng: np.random.Generator,
                 discount: float = 1.0, window: int | None = None, explore: float = 0.0,
                 block: int = _BLOCK) -> None:
        names = _check_arms(arms)
        if not isinstance(explore, int | float) or not 0.0 <= explore <= 1.0:
            raise ValidationError("policy.explore", f"expected 0..1, got {explore!r}")
        if isinstance(block, bool) or not isinstance(block, int) or block < 1:
            raise ValidationError("policy.block", f"expected an int >= 1, got {block!r}")
        self._arms = names
        self._index = {arm: i for i, arm in enumerate(names)}
        self.stats = ArmStatistics(len(names), discount=discount, window=window)
        self.rng = rng
        self.explore = float(explore)
        self.block = block
        self._routes = tuple(Route(arm) for arm in names)
        self._probabilities: FloatArray = np.full(len(names), 1.0 / len(names))
        self._plan: list[ArmDecision] = []
        self._plan_rng: dict[str, Any] = {}
        self._next = 0
        self._refresh()

    # -- the routing policy ------------------------------------------------------

    @property
    def arms(self) -> tuple[str, ...]:
        return self._arms

    def choose(self, key: str) -> Route:
        """The next planned route (``key`` is not used: routing is per request)."""
        i = self._next
        if i >= self.block:
            self._draw()
            i = 0
        self._next = i + 1
        return self._plan[i].route

    def decide(self, key: str) -> ArmDecision:
        """Like :meth:`choose`, with the propensity of the chosen arm."""
        i = self._next
        if i >= self.block:
            self._draw()
            i = 0
        self._next = i + 1
        return self._plan[i]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "probabilities": self.probabilities,
                "discount": self.stats.discount, "window": self.stats.window,
                "explore": self.explore, **self._params()}

    # -- learning ----------------------------------------------------------------

    @property
    def probabilities(self) -> dict[str, float]:
        """The probability of each arm in the current plan."""
        return dict(zip(self._arms, self._probabilities.tolist(), strict=True))

    def propensity(self, arm: str) -> float:
        """The probability with which the current plan chooses ``arm``."""
        return float(self._probabilities[self._arm_index(arm)])

    def update(self, arm: str, rewards: Sequence[float] | npt.ArrayLike) -> None:
        """Learn from ``rewards`` of ``arm`` (in the order observed), then re-plan."""
        index = self._arm_index(arm)
        self.stats.update(index, self._check(check_rewards(rewards)))
        self._refresh()

    def _arm_index(self, arm: str) -> int:
        try:
            return self._index[arm]
        except (KeyError, TypeError):
            raise ValidationError("arm", f"not an arm of this policy: {arm!r}") from None

    def _check(self, rewards: FloatArray) -> FloatArray:
        return rewards

    def _scores(self) -> FloatArray:
        """Each arm's probability of being chosen, before exploration is mixed in."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {}

    def _refresh(self) -> None:
        p = self._scores()
        k = len(self._arms)
        if self.explore > 0.0:
            p = (1.0 - self.explore) * p + self.explore / k
        self._probabilities = p / p.sum()
        self._draw()

    def _draw(self) -> None:
        self._plan_rng = dict(self.rng.bit_generator.state)
        cumulative = np.cumsum(self._probabilities)
        cumulative[-1] = np.inf
        picks = np.searchsorted(cumulative, self.rng.random(self.block), side="right")
        decisions = [ArmDecision(route, float(p)) for route, p
                     in zip(self._routes, self._probabilities.tolist(), strict=True)]
        self._plan = [decisions[i] for i in picks.tolist()]
        self._next = 0

    # -- state -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The policy's state as JSON-able values: restoring it and continuing makes the
        same choices as never stopping."""
        return {"kind": self.kind, "arms": list(self._arms), "explore": self.explore,
                "block": self.block, "params": self._params(), "stats": self.stats.snapshot(),
                "probabilities": self._probabilities.tolist(), "plan_rng": self._plan_rng,
                "next": self._next}

    @classmethod
    def restore(cls, state: dict[str, Any], *, rng: np.random.Generator | None = None
                ) -> BanditPolicy:
        """A policy in the state :meth:`snapshot` saw (``rng`` is reseeded from it)."""
        try:
            if state["kind"] != cls.kind:
                raise BanditStateError("kind", f"expected {cls.kind!r}, got {state['kind']!r}")
            stats = ArmStatistics.restore(state["stats"])
            policy = cls(state["arms"], rng=rng or np.random.default_rng(),
                         discount=stats.discount, window=stats.window,
                         explore=state["explore"], block=state["block"], **state["params"])
            policy.stats = stats
            policy._probabilities = np.asarray(state["probabilities"], dtype=np.float64)
            policy.rng.bit_generator.state = state["plan_rng"]
            policy._draw()
            policy._next = int(state["next"])
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, ValidationError):
                raise
            raise BanditStateError("state", f"not a {cls.kind} snapshot: {error!r}") from error
        return policy
