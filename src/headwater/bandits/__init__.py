"""Bandits: learning from rewards which model version to serve and which action to take.

A *routing bandit* is a :class:`~headwater.serving.policies.Policy` whose arms are
model versions (alias names): :class:`BetaThompson`, :class:`GaussianThompson` and
:class:`UCB1` move traffic towards the version that earns the most, and forget old
rewards (``discount`` or ``window``) so they follow drift. :class:`ABTest` is the
fixed split and test they are measured against, on :func:`simulate`.
"""

from headwater.bandits.abtest import ABTest, FixedHorizonTest, SequentialTest, StoppingRule
from headwater.bandits.arms import ArmStatistics
from headwater.bandits.policy import ArmDecision, BanditPolicy
from headwater.bandits.simulation import (
    DriftingBernoulli,
    LearningPolicy,
    SimulationRun,
    simulate,
)
from headwater.bandits.thompson import BetaThompson, GaussianThompson
from headwater.bandits.ucb import UCB1

__all__ = [
    "UCB1",
    "ABTest",
    "ArmDecision",
    "ArmStatistics",
    "BanditPolicy",
    "BetaThompson",
    "DriftingBernoulli",
    "FixedHorizonTest",
    "GaussianThompson",
    "LearningPolicy",
    "SequentialTest",
    "SimulationRun",
    "StoppingRule",
    "simulate",
]
