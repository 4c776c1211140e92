"""Simulated traffic with drift, to measure a routing bandit's regret.

:class:`DriftingBernoulli` is a set of arms whose success rates change at given
steps. :func:`simulate` plays a learning routing policy against it: one request per
step, rewards returned to the policy in batches of ``batch`` (as joined labels arrive),
and reports what it earned. Rewards come from one matrix drawn up front, so policies
run on the same environment and seed see the same outcome for the same arm and step
(common random numbers).

Regret is expected regret (success rates, not noisy rewards): against the best fixed
arm over the whole run, and against the oracle that knows the best arm at every step.
Regret against the best fixed arm can be negative: under drift, following the best
arm of the moment beats any single arm.

>>> import numpy as np
>>> from headwater.routing.thompson import BetaThompson
>>> env = DriftingBernoulli(("a", "b"), ((0, (0.9, 0.1)), (500, (0.1, 0.9))))
>>> policy = BetaThompson(env.arms, rng=np.random.default_rng(0), discount=0.98)
>>> run = simulate(policy, env, steps=1000, batch=10, rng=np.random.default_rng(1))
>>> run.reward > 0.8 * 1000, run.regret_vs_oracle < 100
(True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.routing.policies import Policy

__all__ = ["DriftingBernoulli", "LearningPolicy", "SimulationRun", "simulate"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class LearningPolicy(Policy, Protocol):
    """A routing policy that learns from rewards of its arms."""

    def update(self, arm: str, rewards: Sequence[float] | npt.ArrayLike) -> None:
        """Learn from the rewards of ``arm``."""
        ...


@dataclass(frozen=True)
class DriftingBernoulli:
    """Arms with success rates ``phases``: ``(first step, rates per arm)``, in order."""

    arms: tuple[str, ...]
    phases: tuple[tuple[int, tuple[float, ...]], ...]

    def __post_init__(self) -> None:
        if not self.phases or self.phases[0][0] != 0:
            raise ValidationError("phases", "the first phase must start at step 0")
        starts = [start for start, _ in self.phases]
        if starts != sorted(set(starts)):
            raise ValidationError("phases", "phase starts must increase")
        for start, rates in self.phases:
            if len(rates) != len(self.arms):
                raise ValidationError(f"phases.{start}",
                                      f"expected {len(self.arms)} rates, got {len(rates)}")
            if not all(0.0 <= r <= 1.0 for r in rates):
                raise ValidationError(f"phases.{start}", "rates must lie in [0, 1]")

    def rates(self, steps: int) -> FloatArray:
        """The success rate of every arm at every step: shape ``(steps, arms)``."""
        out = np.empty((steps, len(self.arms)))
        bounds = [start for start, _ in self.phases[1:]] + [steps]
        for (start, rates), end in zip(self.phases, bounds, strict=True):
            out[min(start, steps):min(end, steps)] = rates
        return out


@dataclass(frozen=True)
class SimulationRun:
    """What a policy chose and earned at each step of a simulation."""

    arms: tuple[str, ...]
    choices: IntArray
    rewards: FloatArray
    #: The chosen arm's success rate at each step.
    expected: FloatArray
    #: The best fixed arm's and the oracle's success rate at each step.
    best_fixed: FloatArray
    oracle: FloatArray

    @property
    def reward(self) -> float:
        return float(self.rewards.sum())

    @property
    def regret_vs_best_fixed(self) -> float:
        return float((self.best_fixed - self.expected).sum())

    @property
    def regret_vs_oracle(self) -> float:
        return float((self.oracle - self.expected).sum())

    def cumulative_regret(self, *, against: str = "best_fixed") -> FloatArray:
        """Regret after each step, against ``"best_fixed"`` or ``"oracle"``."""
        base = self.best_fixed if against == "best_fixed" else self.oracle
        return np.cumsum(base - self.expected)

    def share(self, arm: str, *, last: int | None = None) -> float:
        """The share of (the ``last``) steps routed to ``arm``."""
        choices = self.choices if last is None else self.choices[-last:]
        return float(np.mean(choices == self.arms.index(arm))) if len(choices) else 0.0


def simulate(policy: LearningPolicy, env: DriftingBernoulli, *, steps: int, batch: int,
             rng: np.random.Generator) -> SimulationRun:
    """Play ``policy`` for ``steps`` requests, updating it every ``batch`` steps."""
    if steps < 1 or batch < 1:
        raise ValidationError("steps" if steps < 1 else "batch", "expected an int >= 1")
    if tuple(policy.arms) != env.arms:
        raise ValidationError("policy.arms", f"expected the environment's arms {env.arms!r}")
    rates = env.rates(steps)
    outcomes = (rng.random(rates.shape) < rates).astype(np.float64)
    index = {arm: i for i, arm in enumerate(env.arms)}
    choices = np.empty(steps, dtype=np.int64)
    for start in range(0, steps, batch):
        end = min(start + batch, steps)
        for t in range(start, end):
            choices[t] = index[policy.choose(f"user-{t}").arm]
        window = choices[start:end]
        got = outcomes[np.arange(start, end), window]
        for i, arm in enumerate(env.arms):
            mine = got[window == i]
            if len(mine):
                policy.update(arm, mine)
    steps_idx = np.arange(steps)
    best = int(np.argmax(rates.sum(axis=0)))
    return SimulationRun(arms=env.arms, choices=choices, rewards=outcomes[steps_idx, choices],
                         expected=rates[steps_idx, choices], best_fixed=rates[:, best],
                         oracle=rates.max(axis=1))
