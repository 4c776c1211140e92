"""Bandits: learning from rewards which model version to serve and which action to take.

A *routing bandit* is a :class:`~headwater.routing.policies.Policy` whose arms are
model versions (alias names): :class:`BetaThompson`, :class:`GaussianThompson` and
:class:`UCB1` move traffic towards the version that earns the most, and forget old
rewards (``discount`` or ``window``) so they follow drift. :class:`SplitTest` is the
fixed split and test they are measured against, on :func:`simulate`.

A *contextual policy* chooses an action for a context and returns a :class:`Decision`
with the action's propensity: :class:`EpsilonGreedy`, :class:`LinUCB` and
:class:`LinearThompson`, each with a forgetting (``discount``) variant for drift.
:class:`RewardFeed` feeds a routing bandit serving live the rewards of its arms from the
joined labels. :class:`DecisionLog` records decisions on the ``decisions`` topic, off the hot path.
:func:`ips`, :func:`snips` and :func:`doubly_robust` estimate, with confidence
intervals, what another policy would have earned on those logs (:func:`join_rewards`
joins logged decisions with their outcomes).

Modules (every one public):

- ``abtest``: the A/B test a routing bandit is measured against (:class:`SplitTest`);
- ``simulation``: simulated traffic with drift; ``feedback``: rewards from joined labels;
- ``decision``: contextual decisions; ``decision_log``: the ``decisions`` topic;
- ``epsilon``, ``linucb``, ``linear_thompson``: contextual policies, on ``linear`` and
  ``ridge``;
- ``logged``, ``offpolicy``: logged decisions and off-policy estimates; ``replay``:
  playing a policy on recorded data; ``elec2``: Elec2 as a contextual bandit.
"""

from headwater.bandits.abtest import (
    FixedHorizonTest,
    SequentialTest,
    SplitTest,
    StoppingRule,
)
from headwater.bandits.decision import Context, ContextEncoder, ContextualPolicy, Decision
from headwater.bandits.decision_log import (
    DECISIONS_SCHEMA,
    DECISIONS_TOPIC,
    DecisionLog,
    read_decisions,
)
from headwater.bandits.decision_log import ensure_topic as ensure_decisions_topic
from headwater.bandits.elec2 import bandit as elec2_bandit
from headwater.bandits.epsilon import EpsilonGreedy
from headwater.bandits.feedback import Reward, RewardFeed, Routed, rewards_of
from headwater.bandits.linear import LinearPolicy
from headwater.bandits.linear_thompson import LinearThompson, win_probabilities
from headwater.bandits.linucb import LinUCB
from headwater.bandits.logged import LoggedDecisions, fixed_action_values, join_rewards
from headwater.bandits.offpolicy import (
    Estimate,
    doubly_robust,
    ips,
    progressive_rewards,
    snips,
)
from headwater.bandits.replay import BanditData, PlayedRun, play
from headwater.bandits.ridge import Ridge
from headwater.bandits.simulation import (
    DriftingBernoulli,
    LearningPolicy,
    SimulationRun,
    simulate,
)
from headwater.routing.arms import ArmStatistics
from headwater.routing.bandit import ArmDecision, BanditPolicy
from headwater.routing.thompson import BetaThompson, GaussianThompson
from headwater.routing.ucb import UCB1

__all__ = [
    "DECISIONS_SCHEMA",
    "DECISIONS_TOPIC",
    "UCB1",
    "ArmDecision",
    "ArmStatistics",
    "BanditData",
    "BanditPolicy",
    "BetaThompson",
    "Context",
    "ContextEncoder",
    "ContextualPolicy",
    "Decision",
    "DecisionLog",
    "DriftingBernoulli",
    "EpsilonGreedy",
    "Estimate",
    "FixedHorizonTest",
    "GaussianThompson",
    "LearningPolicy",
    "LinUCB",
    "LinearPolicy",
    "LinearThompson",
    "LoggedDecisions",
    "PlayedRun",
    "Reward",
    "RewardFeed",
    "Ridge",
    "Routed",
    "SequentialTest",
    "SimulationRun",
    "SplitTest",
    "StoppingRule",
    "doubly_robust",
    "elec2_bandit",
    "ensure_decisions_topic",
    "fixed_action_values",
    "ips",
    "join_rewards",
    "play",
    "progressive_rewards",
    "read_decisions",
    "rewards_of",
    "simulate",
    "snips",
    "win_probabilities",
]
