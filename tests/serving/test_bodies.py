"""Decoding bodies: the quick duplicate-key check agrees with a full parse, and errors
inside mappings name the key."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import ValidationError
from headwater.serving.bodies import BodyError, decode
from headwater.serving.messages import DecideBody, OutcomesBody, PredictBody

_PREDICT = msgspec.json.Decoder(PredictBody)

names = st.sampled_from(["user", "item", "amount", "device", "a:b", "u\\u0073er", ""])
scalars = st.one_of(st.floats(-1e6, 1e6), st.integers(-10, 10), st.booleans(), st.none(),
                    st.sampled_from(["ios", "x:y", "", 'a"b:']))
Pairs = list[tuple[str, Any]]


def text(value: Any) -> str:
    """JSON text of ``value``, where a list of pairs is an object written as given (so a
    key may repeat; keys are written raw, so ``u\\u0073er`` is ``user`` again)."""
    if isinstance(value, list) and all(isinstance(p, tuple) for p in value):
        return "{" + ", ".join(f'"{k}": {text(v)}' for k, v in value) + "}"
    return json.dumps(value)


@st.composite
def bodies(draw: st.DrawFn) -> str:
    """A /predict body (single or batch), objects written with possibly repeated keys."""
    def request() -> Pairs:
        pairs: Pairs = [("entities", draw(st.lists(st.tuples(names, st.sampled_from(
            ["u1", "u2", "k:1"])), max_size=3)))]
        if draw(st.booleans()):
            pairs.append(("request", draw(st.lists(st.tuples(names, scalars), max_size=4))))
        if draw(st.booleans()):
            pairs.append(("request_id", draw(st.sampled_from(["r1", "r:2"]))))
        if draw(st.booleans()):  # a repeated field
            pairs.append(draw(st.sampled_from(pairs)))
        return draw(st.permutations(pairs))

    if draw(st.booleans()):
        return text(request())
    batch = [request() for _ in range(draw(st.integers(0, 3)))]
    return "{" + '"requests": [' + ", ".join(text(r) for r in batch) + "]}"


def has_duplicate(body: str) -> bool:
    found = False

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        found = found or len({k for k, _ in pairs}) != len(pairs)
        return dict(pairs)

    json.loads(body, object_pairs_hook=hook)
    return found


@given(bodies())
def test_a_body_is_refused_as_ambiguous_exactly_when_an_object_repeats_a_key(body: str) -> None:
    if has_duplicate(body):
        with pytest.raises(BodyError, match="duplicate key"):
            decode(_PREDICT, body.encode())
        return
    try:
        decode(_PREDICT, body.encode())
    except BodyError:
        pytest.fail(f"refused as ambiguous, with no repeated key: {body}")
    except ValidationError:
        pass  # a value of the wrong type: not the point here


def test_other_message_types_are_checked_too() -> None:
    with pytest.raises(BodyError, match="duplicate key 'label'"):
        decode(msgspec.json.Decoder(OutcomesBody),
               b'{"entity": "u", "request_id": "r", "label": 1, "label": 0}')
    with pytest.raises(BodyError, match="duplicate key 'x'"):
        decode(msgspec.json.Decoder(DecideBody),
               b'{"actions": ["a"], "context": {"x": {"x": 1, "x": 2}}}')
    assert decode(msgspec.json.Decoder(DecideBody),
                  b'{"actions": ["a", "b"], "context": {"x": 1.5, "y": "t:1"}}').context == {
        "x": 1.5, "y": "t:1"}


@pytest.mark.parametrize(("body", "field"), [
    (b'{"entities": {"user": 7.5}}', "entities.user"),
    (b'{"entities": {"user": "u"}, "request": {"a": 1, "b": [2]}}', "request.b"),
    (b'{"entities": {"user": "u"}, "request": {"a": 1e999}}', "request.a"),
    (b'{"requests": [{"entities": {"user": "u"}}, {"entities": {"user": "u", "item": {}}}]}',
     "requests[1].entities.item"),
    (b'{"entities": {"user": "u"}, "request": {"' + b"n" * 200 + b'": 1}}', "request"),
])
def test_an_error_inside_a_mapping_names_the_key(body: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        decode(_PREDICT, body)
    assert raised.value.field == field
    assert "[...]" not in raised.value.reason
    assert len(str(raised.value)) < 200
