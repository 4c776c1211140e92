"""The predictor: features and request values in, the model's own score out."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from headwater.errors import ModelError, ValidationError
from headwater.serving import PredictRequest, neutral_defaults
from tests.serving.conftest import COLUMNS, World, Wrapped, train, training_batch


def test_the_score_is_the_model_s_on_the_same_inputs(world: World) -> None:
    model = train(1)
    version = world.register(model, "champion")
    predictor = world.predictor(world.deployment())
    features = world.reader.read({"user": "u1"}, world.clock.now_us())
    got = predictor.predict({"user": "u1"}, {"price": 12.0, "device": "ios"}, request_id="r1")
    row = {**features, "price": 12.0, "device": "ios"}
    assert got.score == model.predict_one({c: row[c] for c in COLUMNS})
    batch = {c: np.array([row[c]]) for c in COLUMNS}
    assert math.isclose(got.score, float(model.predict(batch)[0]), rel_tol=1e-9)
    assert (got.request_id, got.model, got.version, got.arm) == ("r1", "fraud", version,
                                                                 "champion")
    assert not got.unknown_entity
    assert got.missing == ()
    assert not got.fallback


def test_an_unknown_entity_is_flagged_and_filled_with_the_defaults(world: World) -> None:
    model = train(1)
    world.register(model, "champion")
    predictor = world.predictor(world.deployment())
    got = predictor.predict({"user": "nobody"}, {"price": 12.0, "device": "ios"})
    assert got.unknown_entity
    # the sum and the count of an entity never seen are 0 (their feature default), not
    # the model's running means; the max has no value, so the model's default fills it
    assert got.missing == ("biggest",)
    defaults: Mapping[str, Any] = neutral_defaults(model)
    assert defaults["txns"] > 1.0
    row = {"spend": 0.0, "txns": 0.0, "biggest": defaults["biggest"], "price": 12.0,
           "device": "ios"}
    assert got.score == model.predict_one(row)
    # a missing request value is filled and reported too; NaN counts as missing
    partial = predictor.predict({"user": "u1"}, {"price": math.nan})
    assert partial.missing == ("price", "device")
    assert not partial.unknown_entity
    assert defaults["device"] == ""


def test_a_numeric_default_is_the_mean_the_model_standardises_with() -> None:
    defaults = neutral_defaults(train(2))
    batch = training_batch(2)
    for name in ("spend", "txns", "biggest", "price"):
        assert math.isclose(defaults[name], float(batch[name].mean()), rel_tol=1e-9)
    assert defaults["device"] == ""


def test_bad_input_names_the_field(world: World) -> None:
    world.register(train(1), "champion")
    predictor = world.predictor(world.deployment())
    with pytest.raises(ValidationError, match=r"entities\.user"):
        predictor.predict({"account": "u1"})
    with pytest.raises(ValidationError, match="price"):
        predictor.predict({"user": "u1"}, {"price": "twelve", "device": "ios"})


def test_batch_predict_agrees_with_single_predictions(world: World) -> None:
    world.register(train(1), "champion")
    predictor = world.predictor(world.deployment())
    requests = [PredictRequest({"user": f"u{i}"}, {"price": 5.0 * i, "device": "web"},
                               f"r{i}") for i in range(8)]
    batch = predictor.predict_batch(requests)
    single = [predictor.predict_request(r) for r in requests]
    assert [p.request_id for p in batch] == [f"r{i}" for i in range(8)]
    for b, s in zip(batch, single, strict=True):
        assert math.isclose(b.score, s.score, rel_tol=1e-9)
        assert (b.unknown_entity, b.missing, b.version) == (s.unknown_entity, s.missing,
                                                            s.version)
    with pytest.raises(ValidationError, match=r"requests\[1\]\.entities\.user"):
        predictor.predict_batch([requests[0], PredictRequest({})])


class Broken:
    """A model that raises on every call."""

    format = "broken"
    feature_names = None

    def predict_one(self, x: Mapping[str, Any]) -> float:
        raise RuntimeError("boom")

    def predict(self, batch: Any) -> Any:
        raise RuntimeError("boom")


def test_a_model_that_raises_falls_back_to_the_previous_version(world: World) -> None:
    good = train(1)
    world.register(good, "champion")
    deployment = world.deployment()
    predictor = world.predictor(deployment)
    first = deployment.snapshot.arms["champion"]
    v2 = world.register(train(2))
    world.registry.promote("fraud", v2, actor="test", reason="test")
    deployment.source = Wrapped(world.registry, lambda model: Broken())
    assert deployment.reload()
    assert deployment.snapshot.arms["champion"].version == v2
    got = predictor.predict({"user": "u1"}, {"price": 3.0, "device": "web"})
    assert got.fallback
    assert got.version == first.version
    assert got.score == good.predict_one({**world.reader.read({"user": "u1"}, world.clock.now_us()),
                                          "price": 3.0, "device": "web"})
    batch = predictor.predict_batch([PredictRequest({"user": "u2"}, {"price": 1.0})])
    assert batch[0].fallback
    assert batch[0].version == first.version
    assert predictor.fallbacks == 2
    assert predictor.model_errors >= 2


def test_when_nothing_can_answer_a_model_error_is_raised(world: World) -> None:
    world.register(train(1), "champion")
    deployment = world.deployment()
    broken = deployment.snapshot.arms["champion"]
    object.__setattr__(broken, "model", Broken())
    predictor = world.predictor(deployment)
    with pytest.raises(ModelError, match="could answer"):
        predictor.predict({"user": "u1"})
