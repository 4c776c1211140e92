"""Off-policy estimates against on-policy values: identities, a simulation, and Elec2."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.bandits import (
    BanditData,
    EpsilonGreedy,
    doubly_robust,
    elec2_bandit,
    ips,
    play,
    progressive_rewards,
    snips,
)
from headwater.errors import ValidationError

FloatArray = npt.NDArray[np.float64]

logs = st.integers(2, 60).flatmap(lambda n: st.tuples(
    st.lists(st.floats(0, 1), min_size=n, max_size=n),
    st.lists(st.floats(0.01, 1), min_size=n, max_size=n)))


@given(logs)
def test_on_the_logging_policy_every_estimate_is_the_mean_reward(
        log: tuple[list[float], list[float]]) -> None:
    rewards, propensities = np.array(log[0]), np.array(log[1])
    mean = float(rewards.mean())
    assert ips(rewards, propensities, propensities).value == pytest.approx(mean)
    assert snips(rewards, propensities, propensities).value == pytest.approx(mean)
    model = np.full(len(rewards), 0.3)
    assert doubly_robust(rewards, propensities, propensities, model,
                         model).value == pytest.approx(mean)


@given(logs, st.lists(st.floats(0, 1), min_size=60, max_size=60))
def test_doubly_robust_with_a_perfect_model_is_the_model(
        log: tuple[list[float], list[float]], target: list[float]) -> None:
    rewards, propensities = np.array(log[0]), np.array(log[1])
    pi = np.array(target[:len(rewards)])
    expected = np.linspace(0, 1, len(rewards))
    got = doubly_robust(rewards, propensities, pi, rewards, expected)
    assert got.value == pytest.approx(float(expected.mean()))


def linear_world(seed: int, n: int) -> tuple[FloatArray, FloatArray]:
    """Contexts and success rates of three actions."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    logits = np.column_stack([x[:, 0], x[:, 1], -x[:, 0] - x[:, 1]])
    return x, 1.0 / (1.0 + np.exp(-logits))


def test_estimates_from_exploring_logs_match_the_on_policy_value() -> None:
    n = 20_000
    x, rates = linear_world(0, n)
    rng = np.random.default_rng(1)
    rewards = (rng.random(rates.shape) < rates).astype(float)
    data = BanditData(x, rewards, ("a", "b", "c"))
    logged = play(EpsilonGreedy(2, rng=np.random.default_rng(2), epsilon=0.3), data, batch=50)
    # The target: a fixed rule with a little randomisation.
    greedy = np.argmax(np.column_stack([x[:, 1], x[:, 0], np.zeros(n)]), axis=1)
    target = np.full((n, 3), 0.05)
    target[np.arange(n), greedy] = 0.9
    # On-policy value: the target run on fresh draws from the same world.
    x2, rates2 = linear_world(10, 200_000)
    greedy2 = np.argmax(np.column_stack([x2[:, 1], x2[:, 0], np.zeros(len(x2))]), axis=1)
    u = np.random.default_rng(11).random(len(x2))  # greedy 0.9, each other action 0.05
    chosen = np.where(u < 0.9, greedy2, (greedy2 + np.where(u < 0.95, 1, 2)) % 3)
    on_policy = float(np.mean(np.random.default_rng(13).random(len(x2))
                              < rates2[np.arange(len(x2)), chosen]))
    pi = target[np.arange(n), logged.actions]
    model = progressive_rewards(x, logged.actions, logged.rewards, 3)
    estimates = [
        ips(logged.rewards, logged.propensities, pi),
        snips(logged.rewards, logged.propensities, pi),
        doubly_robust(logged.rewards, logged.propensities, pi,
                      model[np.arange(n), logged.actions], (model * target).sum(axis=1)),
    ]
    for estimate in estimates:
        assert estimate.value == pytest.approx(on_policy, abs=0.02), estimate
        assert estimate.upper - estimate.lower < 0.06
        assert estimate.lower - 0.01 <= on_policy <= estimate.upper + 0.01
    dr, ips_ = estimates[2], estimates[0]
    assert dr.upper - dr.lower < ips_.upper - ips_.lower  # the model removes variance


def test_bootstrap_intervals_agree_with_the_normal_ones() -> None:
    rng = np.random.default_rng(0)
    rewards = (rng.random(5_000) < 0.6).astype(float)
    propensities = rng.uniform(0.2, 0.8, 5_000)
    target = rng.uniform(0.0, 1.0, 5_000)
    for estimator in (ips, snips):
        normal = estimator(rewards, propensities, target)
        boot = estimator(rewards, propensities, target, interval="bootstrap",
                         rng=np.random.default_rng(1), resamples=300)
        assert boot.value == normal.value
        assert boot.lower == pytest.approx(normal.lower, abs=0.01)
        assert boot.upper == pytest.approx(normal.upper, abs=0.01)


def test_on_elec2_estimates_of_the_last_label_rule_match_its_accuracy() -> None:
    data = elec2_bandit(limit=10_000)
    n = len(data)
    logged = play(EpsilonGreedy(data.contexts.shape[1], rng=np.random.default_rng(0),
                                epsilon=0.2), data)
    last = (data.contexts[:, data.features.index("last_label")] >= 0.5).astype(np.int64)
    on_policy = float(data.rewards[np.arange(n), last].mean())
    pi = (logged.actions == last).astype(float)
    model = progressive_rewards(data.contexts, logged.actions, logged.rewards, 2)
    for estimate in (ips(logged.rewards, logged.propensities, pi),
                     snips(logged.rewards, logged.propensities, pi),
                     doubly_robust(logged.rewards, logged.propensities, pi,
                                   model[np.arange(n), logged.actions],
                                   model[np.arange(n), last])):
        assert estimate.value == pytest.approx(on_policy, abs=0.02), estimate


def test_bad_logs_are_refused_naming_the_field() -> None:
    ones = np.ones(3)
    with pytest.raises(ValidationError) as zero:
        ips(ones, [0.5, 0.0, 0.5], ones)
    assert zero.value.field == "propensities"
    with pytest.raises(ValidationError) as short:
        snips(ones, ones, [1.0])
    assert short.value.field == "target"
    with pytest.raises(ValidationError) as nan:
        ips([1.0, float("nan")], [0.5, 0.5], [1.0, 1.0])
    assert nan.value.field == "rewards"
    with pytest.raises(ValidationError) as seed:
        ips(ones, ones, ones, interval="bootstrap")
    assert seed.value.field == "rng"
    with pytest.raises(ValidationError) as empty:
        ips([], [], [])
    assert empty.value.field == "rewards"
