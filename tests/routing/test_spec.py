"""One typed spec per kind of policy, one builder, one default salt."""

from __future__ import annotations

import msgspec
import pytest

from headwater.errors import ValidationError
from headwater.routing import (
    DEFAULT_SALT,
    KINDS,
    BetaThompson,
    Canary,
    PolicySpec,
    Split,
    SplitSpec,
    build,
    parse_spec,
    policy_from_spec,
)

KEYS = [f"entity-{i}" for i in range(10_000)]


def test_the_kinds_are_the_tags_of_the_union() -> None:
    assert KINDS == ("champion", "shadow", "split", "canary", "thompson",
                     "gaussian_thompson", "ucb1")
    for kind in KINDS:
        spec = parse_spec({"kind": kind})  if kind != "split" else parse_spec(
            {"kind": kind, "weights": {"champion": 1}})
        assert msgspec.to_builtins(spec)["kind"] == kind
        assert build(spec).arms


def test_every_way_of_writing_a_split_routes_each_entity_the_same() -> None:
    ways = [build(SplitSpec({"champion": 90, "challenger": 10})),
            policy_from_spec({"kind": "split", "weights": {"champion": 0.9, "challenger": 0.1}}),
            policy_from_spec({"kind": "split", "weights": {"champion": 9, "challenger": 1},
                              "salt": DEFAULT_SALT}),
            Split({"champion": 90, "challenger": 10})]
    first = [ways[0].choose(key).arm for key in KEYS]
    assert 900 < first.count("challenger") < 1100
    for policy in ways[1:]:
        assert [policy.choose(key).arm for key in KEYS] == first
    # what a split describes is a spec of the same split
    described = policy_from_spec(ways[0].describe())
    assert [described.choose(key).arm for key in KEYS] == first
    # a salt names another experiment: about 2 * 0.9 * 0.1 of the entities change arm
    other = policy_from_spec({"kind": "split", "weights": {"champion": 90, "challenger": 10},
                              "salt": "exp-2"})
    moved = sum(other.choose(key).arm != arm for key, arm in zip(KEYS, first, strict=True))
    assert 1500 < moved < 2100


def test_a_canary_described_is_the_same_canary() -> None:
    canary = Canary(5.0)
    again = policy_from_spec(canary.describe())
    assert [again.choose(k).arm for k in KEYS] == [canary.choose(k).arm for k in KEYS]


@pytest.mark.parametrize(("spec", "field", "reason"), [
    ([1], "policy", "expected an object, got list"),
    ({"kind": "coin"}, "policy.kind", "expected one of champion, shadow, split, canary"),
    ({}, "policy.kind", "got None"),
    ({"kind": "split"}, "policy.weights", "Object missing required field `weights`"),
    ({"kind": "split", "weights": {"a": "most"}}, "policy.weights.a",
     "Expected `float`, got `str`"),
    ({"kind": "champion", "colour": "red"}, "policy.colour", "unknown field `colour`"),
    ({"kind": "thompson", "seed": True}, "policy.seed", "Expected `int | null`, got `bool`"),
    ({"kind": "thompson", "arms": ["champion"]}, "policy.arms", "at least two arms"),
    ({"kind": "canary", "percent": 120}, "policy.percent", "expected 0..100, got 120"),
    ({"kind": "split", "weights": {"a": -1}}, "policy.weights.a", "finite weight >= 0"),
])
def test_a_bad_spec_names_its_field(spec: object, field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as raised:
        policy_from_spec(spec)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert reason in raised.value.reason


def test_a_bandit_spec_builds_a_seeded_bandit() -> None:
    spec: PolicySpec = parse_spec({"kind": "thompson", "arms": ["a", "b", "c"], "seed": 4,
                                   "discount": 0.99})
    one, two = build(spec), build(spec)
    assert isinstance(one, BetaThompson)
    assert one.arms == ("a", "b", "c")
    assert [one.choose("k").arm for _ in range(50)] == [two.choose("k").arm for _ in range(50)]
