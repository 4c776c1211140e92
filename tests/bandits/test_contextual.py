"""Contextual policies: batch updates, exact propensities, state, drift, and Elec2."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.bandits import (
    BanditData,
    ContextualPolicy,
    EpsilonGreedy,
    LinearPolicy,
    LinearThompson,
    LinUCB,
    Ridge,
    elec2_bandit,
    play,
    win_probabilities,
)
from headwater.errors import BanditStateError, ValidationError

ACTIONS = ("a", "b", "c")
Make = Callable[[np.random.Generator], LinearPolicy]
POLICIES: dict[str, Make] = {
    "epsilon": lambda rng: EpsilonGreedy(3, rng=rng, epsilon=0.1),
    "linucb": lambda rng: LinUCB(3, rng=rng, alpha=0.5),
    "thompson": lambda rng: LinearThompson(3, rng=rng, scale=0.3),
    "thompson-forgetting": lambda rng: LinearThompson(3, rng=rng, scale=0.3, discount=0.99),
    "linucb-forgetting": lambda rng: LinUCB(3, rng=rng, alpha=0.5, discount=0.99),
}


def world(seed: int, n: int) -> BanditData:
    """Three actions whose success rates depend linearly on a 3-d context."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    beta = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-0.5, -0.5, 0.5]])
    rates = 1.0 / (1.0 + np.exp(-(x @ beta.T)))
    return BanditData(x, (rng.random(rates.shape) < rates).astype(float), ACTIONS)


events = st.lists(st.tuples(st.sampled_from(ACTIONS),
                            st.lists(st.floats(-3, 3), min_size=2, max_size=2),
                            st.floats(0, 1)), min_size=1, max_size=30)


@given(events, st.sampled_from([1.0, 0.9, 0.5]))
def test_a_ridge_batch_equals_its_single_updates(obs: list[tuple[str, list[float], float]],
                                                 discount: float) -> None:
    x = np.array([row for _, row, _ in obs])
    actions = [a for a, _, _ in obs]
    rewards = np.array([r for _, _, r in obs])
    batched, single = Ridge(2, discount=discount), Ridge(2, discount=discount)
    batched.update(x, actions, rewards)
    for i in range(len(obs)):
        single.update(x[i:i + 1], actions[i:i + 1], rewards[i:i + 1])
    assert set(batched.gram) == set(single.gram)
    for a in batched.gram:
        np.testing.assert_allclose(batched.gram[a], single.gram[a], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(batched.moment[a], single.moment[a], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(batched.theta(a), single.theta(a), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policies_choose_with_exact_propensities(name: str) -> None:
    policy = POLICIES[name](np.random.default_rng(0))
    assert isinstance(policy, ContextualPolicy)
    data = world(1, 300)
    play(policy, data, batch=10)
    context = np.array([0.3, -0.2, 0.1])
    p = policy.probabilities(context, ACTIONS)
    assert p.sum() == pytest.approx(1.0)
    decisions = [policy.choose(context, ACTIONS) for _ in range(10_000)]
    for i, action in enumerate(ACTIONS):
        mine = [d for d in decisions if d.action == action]
        assert all(d.propensity == pytest.approx(p[i]) for d in mine)
        assert len(mine) / len(decisions) == pytest.approx(p[i], abs=0.02)
    assert decisions[0].policy == policy.name
    assert decisions[0].probabilities == pytest.approx(tuple(p))


@given(st.lists(st.floats(-2, 2), min_size=3, max_size=4),
       st.lists(st.floats(0.05, 2), min_size=4, max_size=4))
def test_win_probabilities_agree_with_sampling(mean: list[float], sd: list[float]) -> None:
    m, s = np.array(mean), np.array(sd[:len(mean)])
    draws = m + s * np.random.default_rng(0).standard_normal((40_000, len(m)))
    sampled = np.bincount(draws.argmax(axis=1), minlength=len(m)) / len(draws)
    np.testing.assert_allclose(win_probabilities(m, s), sampled, atol=0.015)
    pair = win_probabilities(m[:2], s[:2])  # the closed form
    sampled2 = np.mean(draws[:, 0] > draws[:, 1])
    assert pair[0] == pytest.approx(sampled2, abs=0.015)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_snapshot_restore_continue_equals_an_uninterrupted_run(name: str) -> None:
    make = POLICIES[name]
    data = world(2, 400)
    whole = play(make(np.random.default_rng(5)), data, batch=8)
    first = make(np.random.default_rng(5))
    head = play(first, data.head(200), batch=8)
    restored = type(first).restore(json.loads(json.dumps(first.snapshot())))
    rest = BanditData(data.contexts[200:], data.rewards[200:], ACTIONS)
    tail = play(restored, rest, batch=8)
    np.testing.assert_array_equal(np.concatenate([head.actions, tail.actions]), whole.actions)
    np.testing.assert_allclose(np.concatenate([head.propensities, tail.propensities]),
                               whole.propensities)


def test_contexts_may_be_named_and_bad_ones_are_refused() -> None:
    policy = EpsilonGreedy(("price", "hour"), rng=np.random.default_rng(0))
    decision = policy.choose({"price": 1.0, "hour": 3}, ["up", "down"])
    assert decision.action in ("up", "down")
    policy.update([{"price": 1.0, "hour": 3}], [decision.action], [1.0])
    with pytest.raises(ValidationError) as missing:
        policy.choose({"price": 1.0}, ["up"])
    assert missing.value.field == "context.hour"
    with pytest.raises(ValidationError) as text:
        policy.choose({"price": "high", "hour": 3}, ["up"])  # type: ignore[dict-item]
    assert text.value.field == "context.price"
    with pytest.raises(ValidationError) as shape:
        LinUCB(2, rng=np.random.default_rng(0)).choose([1.0], ["up"])
    assert shape.value.field == "context"
    with pytest.raises(ValidationError) as none:
        policy.choose([1.0, 2.0], [])
    assert none.value.field == "actions"
    with pytest.raises(ValidationError) as lengths:
        policy.update(np.zeros((2, 2)), ["up"], [1.0, 0.0])
    assert lengths.value.field == "rewards"
    with pytest.raises(ValidationError) as eps:
        EpsilonGreedy(2, rng=np.random.default_rng(0), epsilon=1.5)
    assert eps.value.field == "policy.epsilon"
    with pytest.raises(BanditStateError) as kind:
        LinUCB.restore(policy.snapshot())
    assert kind.value.field == "kind"


def test_forgetting_follows_a_flip_the_plain_model_is_slow_to_see() -> None:
    rng = np.random.default_rng(4)
    n = 6_000
    x = rng.normal(size=(n, 2))
    good = (x[:, 0] > 0).astype(float)
    rewards = np.column_stack([good, 1.0 - good])
    rewards[n // 2:] = rewards[n // 2:, ::-1]  # the world flips half way
    data = BanditData(x, rewards, ("left", "right"))
    plain = play(LinUCB(2, rng=np.random.default_rng(0), alpha=0.2), data, batch=10)
    forgetting = play(LinUCB(2, rng=np.random.default_rng(0), alpha=0.2, discount=0.99),
                      data, batch=10)
    after = slice(n // 2, n)
    assert forgetting.rewards[after].mean() > plain.rewards[after].mean() + 0.05


def test_the_best_policy_beats_the_references_on_elec2() -> None:
    data = elec2_bandit(limit=8_000)
    d = data.contexts.shape[1]
    linucb = play(LinUCB(d, rng=np.random.default_rng(0), alpha=0.1), data)
    uniform = play(EpsilonGreedy(d, rng=np.random.default_rng(0), epsilon=1.0), data)
    assert linucb.mean_reward > 0.81
    assert uniform.mean_reward == pytest.approx(0.5, abs=0.02)
    assert np.all(uniform.propensities == 0.5)
