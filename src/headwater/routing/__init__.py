"""Routing: which model version (arm) answers each request, as plain values.

A sans-I/O package shared by serving (which routes), bandits (which learn routing
policies and test them) and evaluation (which assigns and ramps traffic):

- :mod:`~headwater.routing.policies`: the :class:`Policy` protocol, its :class:`Route`,
  the fixed policies (:class:`ChampionOnly`, :class:`Shadow`, :class:`Split`,
  :class:`Canary`) and :func:`bucket`, the stable hash that keeps an entity on its arm.
- :mod:`~headwater.routing.bandit`, :mod:`~headwater.routing.thompson`,
  :mod:`~headwater.routing.ucb`, :mod:`~headwater.routing.arms`: the routing bandits,
  policies that move traffic by the rewards they are fed.
- :mod:`~headwater.routing.spec`: every policy described as typed data
  (:data:`PolicySpec`, a tagged union on ``kind``) and the one :func:`build` er, with
  one :data:`DEFAULT_SALT`.

It imports nothing of Headwater but :mod:`headwater.errors`.
"""

from headwater.routing.arms import ArmStatistics
from headwater.routing.bandit import ArmDecision, BanditPolicy
from headwater.routing.policies import Canary, ChampionOnly, Policy, Route, Shadow, Split, bucket
from headwater.routing.spec import (
    DEFAULT_SALT,
    KINDS,
    CanarySpec,
    ChampionSpec,
    GaussianThompsonSpec,
    PolicySpec,
    ShadowSpec,
    SplitSpec,
    ThompsonSpec,
    UCB1Spec,
    build,
    check_arms,
    parse_spec,
    policy_from_spec,
)
from headwater.routing.thompson import BetaThompson, GaussianThompson
from headwater.routing.ucb import UCB1

__all__ = [
    "DEFAULT_SALT",
    "KINDS",
    "UCB1",
    "ArmDecision",
    "ArmStatistics",
    "BanditPolicy",
    "BetaThompson",
    "Canary",
    "CanarySpec",
    "ChampionOnly",
    "ChampionSpec",
    "GaussianThompson",
    "GaussianThompsonSpec",
    "Policy",
    "PolicySpec",
    "Route",
    "Shadow",
    "ShadowSpec",
    "Split",
    "SplitSpec",
    "ThompsonSpec",
    "UCB1Spec",
    "bucket",
    "build",
    "check_arms",
    "parse_spec",
    "policy_from_spec",
]
