"""The A/B test a bandit is measured against: split 50/50, test, commit to the winner.

:class:`SplitTest` is a routing policy: a sticky fixed split between two arms (the
control first, e.g. ``champion``, then the treatment) until its test decides, then
every request to the winner for good. Two tests, both sans-I/O:

- :class:`FixedHorizonTest`: once each arm has ``per_arm`` rewards, a two-sided
  two-sample z-test at level ``alpha`` on exactly those rewards. A significant
  difference picks the better arm; otherwise the control stays.
- :class:`SequentialTest`: the mixture sequential probability ratio test (mSPRT,
  Johari et al. 2017) on the difference of means, which may stop at any sample while
  keeping its false-positive rate under ``alpha``; at ``max_per_arm`` rewards each
  without a decision, the control stays. It runs :class:`headwater.stats.MixtureSPRT`,
  the test :func:`headwater.evaluation.ab.ab_test` runs, with the same defaults.

>>> test = FixedHorizonTest(per_arm=3)
>>> test.observe([0.0, 0.0, 1.0], [1.0, 1.0, 1.0])
1
>>> SequentialTest().observe([0.5] * 10, [0.5] * 10) is None
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.routing.arms import check_rewards
from headwater.routing.bandit import ArmDecision
from headwater.routing.policies import DEFAULT_SALT, Route, Split
from headwater.stats import MixtureSPRT

__all__ = ["FixedHorizonTest", "SequentialTest", "SplitTest", "StoppingRule"]


def _check_alpha(alpha: object) -> float:
    if not isinstance(alpha, int | float) or not 0.0 < alpha < 1.0:
        raise ValidationError("test.alpha", f"expected 0 < alpha < 1, got {alpha!r}")
    return float(alpha)


def _check_count(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValidationError(field, f"expected an int >= 2, got {value!r}")
    return value


class StoppingRule(Protocol):
    """Looks at every reward of the control and the treatment so far; decides or not."""

    def observe(self, control: Sequence[float], treatment: Sequence[float]) -> int | None:
        """``0`` (the control wins or stays), ``1`` (the treatment wins), or ``None``."""
        ...


class FixedHorizonTest:
    """A two-sided z-test once each arm has ``per_arm`` rewards."""

    def __init__(self, per_arm: int, *, alpha: float = 0.05) -> None:
        self.per_arm = _check_count("test.per_arm", per_arm)
        self.alpha = _check_alpha(alpha)
        self._z = NormalDist().inv_cdf(1.0 - self.alpha / 2.0)

    def observe(self, control: Sequence[float], treatment: Sequence[float]) -> int | None:
        n = self.per_arm
        if len(control) < n or len(treatment) < n:
            return None
        a = np.asarray(control[:n], dtype=np.float64)
        b = np.asarray(treatment[:n], dtype=np.float64)
        se = math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / n)
        diff = float(b.mean() - a.mean())
        if se == 0.0:
            return 1 if diff > 0.0 else 0
        return 1 if diff / se > self._z else 0


class SequentialTest:
    """The mSPRT (:class:`~headwater.stats.MixtureSPRT`) as a stopping rule: the better
    arm once it rejects equal means, the control at ``max_per_arm`` rewards each."""

    def __init__(self, *, alpha: float = 0.05, tau: float = 0.05, min_per_arm: int = 30,
                 max_per_arm: int = 1_000_000) -> None:
        self.alpha = _check_alpha(alpha)
        if not isinstance(tau, int | float) or not 0.0 < tau < float("inf"):
            raise ValidationError("test.tau", f"expected a finite number > 0, got {tau!r}")
        self.tau = float(tau)
        self.min_per_arm = _check_count("test.min_per_arm", min_per_arm)
        self.max_per_arm = _check_count("test.max_per_arm", max_per_arm)

    def observe(self, control: Sequence[float], treatment: Sequence[float]) -> int | None:
        test = MixtureSPRT(alpha=self.alpha, tau=self.tau, min_samples=self.min_per_arm)
        test.update(control, treatment)
        if test.rejected:
            return 1 if test.estimate > 0.0 else 0
        if min(len(control), len(treatment)) >= self.max_per_arm:
            return 0
        return None


class SplitTest:
    """A 50/50 sticky split of ``arms`` (control, treatment) until ``test`` decides."""

    kind = "ab"

    def __init__(self, arms: tuple[str, str] = ("champion", "challenger"), *,
                 test: StoppingRule, salt: str = DEFAULT_SALT) -> None:
        if len(arms) != 2 or arms[0] == arms[1]:
            raise ValidationError("policy.arms", f"expected two distinct arms, got {arms!r}")
        self._split = Split({arms[0]: 1.0, arms[1]: 1.0}, salt=salt)
        self._arms = (arms[0], arms[1])
        self.test = test
        self.winner: str | None = None
        #: The number of rewards seen when the test decided.
        self.decided_at: int | None = None
        self._rewards: tuple[list[float], list[float]] = ([], [])
        self._won: ArmDecision | None = None

    @property
    def arms(self) -> tuple[str, ...]:
        return self._arms

    def choose(self, key: str) -> Route:
        won = self._won
        return won.route if won is not None else self._split.choose(key)

    def decide(self, key: str) -> ArmDecision:
        won = self._won
        return won if won is not None else ArmDecision(self._split.choose(key), 0.5)

    def update(self, arm: str, rewards: Sequence[float] | npt.ArrayLike) -> None:
        """Feed the test with rewards of ``arm`` until it has decided."""
        if arm not in self._arms:
            raise ValidationError("arm", f"not an arm of this policy: {arm!r}")
        values = check_rewards(rewards)
        if self.winner is not None:
            return
        self._rewards[self._arms.index(arm)].extend(values.tolist())
        verdict = self.test.observe(*self._rewards)
        if verdict is not None:
            self.winner = self._arms[verdict]
            self.decided_at = len(self._rewards[0]) + len(self._rewards[1])
            self._won = ArmDecision(Route(self.winner), 1.0)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "arms": list(self._arms), "winner": self.winner,
                "decided_at": self.decided_at}

    def propensity(self, arm: str) -> float:
        """0.5 per arm until the test decides, then 1 for the winner."""
        if self.winner is not None:
            return 1.0 if arm == self.winner else 0.0
        return 0.5 if arm in self._arms else 0.0
