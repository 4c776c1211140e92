"""Routing bandits: forgetting statistics, exact propensities, state, regret under drift."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.bandits import (
    UCB1,
    ArmStatistics,
    BanditPolicy,
    BetaThompson,
    DriftingBernoulli,
    FixedHorizonTest,
    GaussianThompson,
    SequentialTest,
    SplitTest,
    simulate,
)
from headwater.errors import BanditStateError, ValidationError
from headwater.routing.policies import Policy

ARMS = ("champion", "challenger")
DRIFT = DriftingBernoulli(ARMS, ((0, (0.55, 0.50)), (10_000, (0.45, 0.60))))

Make = Callable[[np.random.Generator], BanditPolicy]
POLICIES: dict[str, Make] = {
    "beta": lambda rng: BetaThompson(ARMS, rng=rng, discount=0.999),
    "beta-window": lambda rng: BetaThompson(ARMS, rng=rng, window=2_000),
    "gaussian": lambda rng: GaussianThompson(ARMS, rng=rng, discount=0.999, prior_mean=0.5,
                                             prior_variance=0.25),
    "ucb": lambda rng: UCB1(ARMS, rng=rng, discount=0.999),
    "ucb-window": lambda rng: UCB1(ARMS, rng=rng, window=2_000, explore=0.1),
}

observations = st.lists(st.tuples(st.integers(0, 2), st.floats(-5, 5)), max_size=60)


@given(observations, st.floats(0.5, 1.0))
def test_a_discounted_batch_equals_its_single_updates(obs: list[tuple[int, float]],
                                                      discount: float) -> None:
    batched, single = ArmStatistics(3, discount=discount), ArmStatistics(3, discount=discount)
    i = 0
    while i < len(obs):  # runs of one arm go in as one batch
        j = i
        while j < len(obs) and obs[j][0] == obs[i][0]:
            j += 1
        batched.update(obs[i][0], [r for _, r in obs[i:j]])
        i = j
    for arm, reward in obs:
        single.update(arm, [reward])
    for name in ("n", "s", "q"):
        np.testing.assert_allclose(getattr(batched, name), getattr(single, name),
                                   rtol=1e-9, atol=1e-9)


@given(observations, st.floats(0.5, 1.0))
def test_discounted_statistics_equal_the_weighted_sums_recomputed(
        obs: list[tuple[int, float]], discount: float) -> None:
    stats = ArmStatistics(3, discount=discount)
    for arm, reward in obs:
        stats.update(arm, [reward])
    t = len(obs)
    for arm in range(3):
        weights = [(discount ** (t - 1 - i), r) for i, (a, r) in enumerate(obs) if a == arm]
        assert stats.n[arm] == pytest.approx(sum(w for w, _ in weights), abs=1e-9)
        assert stats.s[arm] == pytest.approx(sum(w * r for w, r in weights), abs=1e-9)
        assert stats.q[arm] == pytest.approx(sum(w * r * r for w, r in weights), abs=1e-9)


@given(observations, st.integers(1, 20))
def test_a_window_equals_the_statistics_recomputed_from_it(obs: list[tuple[int, float]],
                                                           window: int) -> None:
    stats = ArmStatistics(3, window=window)
    for arm, reward in obs:
        stats.update(arm, [reward])
    kept = obs[-window:]
    for arm in range(3):
        mine = [r for a, r in kept if a == arm]
        assert stats.n[arm] == len(mine)
        assert stats.s[arm] == pytest.approx(sum(mine), abs=1e-9)
        assert stats.q[arm] == pytest.approx(sum(r * r for r in mine), abs=1e-9)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_bandits_are_routing_policies_with_exact_propensities(name: str) -> None:
    policy = POLICIES[name](np.random.default_rng(3))
    assert isinstance(policy, Policy)
    assert policy.arms == ARMS
    policy.update("champion", [1.0, 0.0, 1.0, 1.0])
    policy.update("challenger", [0.0, 1.0, 0.0])
    probabilities = policy.probabilities
    assert sum(probabilities.values()) == pytest.approx(1.0)
    picks = [policy.decide(f"k{i}") for i in range(20_000)]
    for arm, p in probabilities.items():
        assert all(d.propensity == p for d in picks if d.route.arm == arm)
        share = np.mean([d.route.arm == arm for d in picks])
        assert share == pytest.approx(p, abs=0.02)
    assert policy.describe()["kind"] == policy.kind


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_snapshot_restore_continue_equals_an_uninterrupted_run(name: str) -> None:
    import json

    make = POLICIES[name]
    whole, half = make(np.random.default_rng(7)), make(np.random.default_rng(7))
    rewards = np.random.default_rng(8).random((40, 25)) < 0.5

    def step(policy: BanditPolicy, i: int) -> list[str]:
        arms = [policy.choose(f"u{i}-{j}").arm for j in range(700)]  # crosses plan blocks
        policy.update(arms[0], rewards[i].astype(float))
        return arms

    expected = [step(whole, i) for i in range(40)]
    got = [step(half, i) for i in range(20)]
    state = json.loads(json.dumps(half.snapshot()))
    restored = type(half).restore(state)
    got += [step(restored, i) for i in range(20, 40)]
    assert got == expected
    assert restored.snapshot() == whole.snapshot()


def test_bad_input_names_the_field() -> None:
    policy = BetaThompson(ARMS, rng=np.random.default_rng(0))
    with pytest.raises(ValidationError, match="arm") as unknown:
        policy.update("nobody", [1.0])
    assert unknown.value.field == "arm"
    with pytest.raises(ValidationError) as outside:
        policy.update("champion", [2.0])
    assert outside.value.field == "rewards"
    with pytest.raises(ValidationError) as nan:
        policy.update("champion", [float("nan")])
    assert nan.value.field == "rewards"
    for kwargs, field in [({"discount": 0.0}, "discount"), ({"window": 0}, "window"),
                          ({"explore": 2.0}, "policy.explore")]:
        with pytest.raises(ValidationError) as bad:
            BetaThompson(ARMS, rng=np.random.default_rng(0), **kwargs)  # type: ignore[arg-type]
        assert bad.value.field == field
    with pytest.raises(ValidationError) as repeat:
        UCB1(("a", "a"), rng=np.random.default_rng(0))
    assert repeat.value.field == "policy.arms"
    with pytest.raises(BanditStateError) as kind:
        UCB1.restore(policy.snapshot())
    assert kind.value.field == "kind"
    with pytest.raises(BanditStateError):
        BetaThompson.restore({"kind": "thompson-beta"})


@pytest.mark.parametrize("name", ["beta", "beta-window", "gaussian"])
def test_thompson_follows_drift_and_beats_the_ab_test(name: str) -> None:
    bandit = simulate(POLICIES[name](np.random.default_rng(0)), DRIFT, steps=20_000,
                      batch=100, rng=np.random.default_rng(1))
    ab = SplitTest(ARMS, test=FixedHorizonTest(2_000))
    test = simulate(ab, DRIFT, steps=20_000, batch=100, rng=np.random.default_rng(1))
    assert ab.winner == "champion"  # the better arm while the test ran
    assert bandit.share("challenger", last=5_000) > 0.8  # it followed the drift
    assert bandit.regret_vs_best_fixed < 0.0 < test.regret_vs_best_fixed
    assert bandit.regret_vs_oracle < test.regret_vs_oracle / 4


def test_the_fixed_horizon_test_keeps_the_control_without_evidence() -> None:
    rng = np.random.default_rng(0)
    verdicts = [FixedHorizonTest(500).observe(list(rng.random(500) < 0.5),
                                              list(rng.random(500) < 0.5)) for _ in range(200)]
    assert sum(v == 1 for v in verdicts) <= 20  # one-sided false positives near alpha / 2


def test_the_sequential_test_stops_early_on_a_clear_difference() -> None:
    ab = SplitTest(ARMS, test=SequentialTest())
    env = DriftingBernoulli(ARMS, ((0, (0.3, 0.6)),))
    simulate(ab, env, steps=5_000, batch=50, rng=np.random.default_rng(2))
    assert ab.winner == "challenger"
    assert ab.decided_at is not None
    assert ab.decided_at < 2_000
    assert ab.decide("u").propensity == 1.0
    null = SplitTest(ARMS, test=SequentialTest(max_per_arm=1_000))
    simulate(null, DriftingBernoulli(ARMS, ((0, (0.5, 0.5)),)), steps=5_000, batch=50,
             rng=np.random.default_rng(3))
    assert null.winner == "champion"
