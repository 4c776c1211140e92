"""Routing policies: proportions, stickiness, shadows; and their cost stays small."""

from __future__ import annotations

import pytest

from headwater.errors import ValidationError
from headwater.serving import Canary, ChampionOnly, Policy, Route, Shadow, Split, bucket

KEYS = [f"user-{i}" for i in range(20_000)]


def test_champion_only_and_shadow_routes_are_constant() -> None:
    assert ChampionOnly().choose("a") == Route("champion")
    shadow = Shadow("champion", ("challenger", "other"))
    assert shadow.choose("a") == Route("champion", ("challenger", "other"))
    assert shadow.arms == ("champion", "challenger", "other")
    for policy in (ChampionOnly(), shadow, Split({"a": 1}), Canary(5)):
        assert isinstance(policy, Policy)


@pytest.mark.parametrize("weights", [{"a": 0.5, "b": 0.5}, {"a": 0.9, "b": 0.1},
                                     {"a": 1, "b": 2, "c": 1}])
def test_a_split_keeps_its_proportions(weights: dict[str, float]) -> None:
    split = Split(weights, salt="exp")
    counts = dict.fromkeys(weights, 0)
    for key in KEYS:
        counts[split.choose(key).arm] += 1
    total = sum(weights.values())
    for arm, weight in weights.items():
        assert abs(counts[arm] / len(KEYS) - weight / total) < 0.015, counts


def test_a_split_is_sticky_and_salted() -> None:
    one, again = Split({"a": 1, "b": 1}, salt="x"), Split({"a": 1, "b": 1}, salt="x")
    other = Split({"a": 1, "b": 1}, salt="y")
    assert [one.choose(k) for k in KEYS[:500]] == [again.choose(k) for k in KEYS[:500]]
    assert [one.choose(k) for k in KEYS[:500]] != [other.choose(k) for k in KEYS[:500]]
    assert bucket("user-1", "x") == bucket("user-1", "x")  # stable: no per-process seed


def test_a_canary_takes_its_percentage_and_only_grows() -> None:
    small, large = Canary(5.0), Canary(20.0)
    at5 = {k for k in KEYS if small.choose(k).arm == "challenger"}
    at20 = {k for k in KEYS if large.choose(k).arm == "challenger"}
    assert abs(len(at5) / len(KEYS) - 0.05) < 0.01
    assert abs(len(at20) / len(KEYS) - 0.20) < 0.015
    assert at5 <= at20  # raising the percentage only moves entities to the canary
    assert all(Canary(0).choose(k).arm == "champion" for k in KEYS[:100])


def test_bad_policies_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"policy\.percent"):
        Canary(150)
    with pytest.raises(ValidationError, match=r"policy\.weights"):
        Split({"a": 0, "b": 0})
    with pytest.raises(ValidationError, match=r"policy\.weights\.b"):
        Split({"a": 1, "b": -1})
    with pytest.raises(ValidationError, match=r"policy\.shadows"):
        Shadow("champion", ("champion",))
    with pytest.raises(ValidationError, match=r"policy\.canary"):
        Canary(5, canary="champion")


def test_describe_is_json_ready() -> None:
    assert Split({"a": 3, "b": 1}).describe() == {"kind": "split", "weights": {"a": 0.75,
                                                                                "b": 0.25},
                                                   "salt": ""}
    assert Canary(5).describe()["percent"] == 5.0


@pytest.mark.parametrize("policy", [ChampionOnly(), Shadow("champion", ("b",)),
                                    Split({"champion": 3.0, "b": 1.0}, salt="p"),
                                    Canary(20.0, salt="p")], ids=lambda p: p.describe()["kind"])
def test_propensities_are_the_routing_frequencies(policy: Policy) -> None:
    keys = [f"user-{i}" for i in range(20_000)]
    chosen = [policy.choose(k).arm for k in keys]
    served = [arm for arm in policy.arms if policy.propensity(arm) > 0]
    assert sum(policy.propensity(arm) for arm in policy.arms) == pytest.approx(1.0)
    for arm in served:
        assert chosen.count(arm) / len(keys) == pytest.approx(policy.propensity(arm), abs=0.01)
    assert policy.propensity("nobody") == 0.0
