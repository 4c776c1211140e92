"""The public surface of headwater.bandits is deliberate: these names, no others."""

from __future__ import annotations

import headwater.bandits as bandits

PUBLIC = [
    "DECISIONS_SCHEMA", "DECISIONS_TOPIC", "UCB1", "ArmDecision", "ArmStatistics",
    "BanditData", "BanditPolicy", "BetaThompson", "Context", "ContextEncoder",
    "ContextualPolicy", "Decision", "DecisionLog", "DriftingBernoulli", "EpsilonGreedy",
    "Estimate", "FixedHorizonTest", "GaussianThompson", "LearningPolicy", "LinUCB",
    "LinearPolicy", "LinearThompson", "LoggedDecisions", "PlayedRun", "Reward", "RewardFeed",
    "Ridge", "Routed", "SequentialTest", "SimulationRun", "SplitTest", "StoppingRule",
    "doubly_robust", "elec2_bandit", "ensure_decisions_topic", "fixed_action_values", "ips",
    "join_rewards", "play", "progressive_rewards", "read_decisions", "rewards_of", "simulate",
    "snips", "win_probabilities",
]


def test_exported_members() -> None:
    assert sorted(bandits.__all__) == sorted(PUBLIC)


def test_all_names_exist_and_the_package_is_documented() -> None:
    assert bandits.__doc__
    for name in bandits.__all__:
        assert getattr(bandits, name) is not None, name
