"""The contract every model adapter passes: the built-in linear models, River, sklearn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import UntrustedArtifactError, ValidationError
from headwater.models import Model, load_model
from tests.models.adapters import ADAPTERS, Adapter, batch, rows, target

pytestmark = pytest.mark.parametrize("adapter", ADAPTERS)


def _data(adapter: Adapter, n: int = 60, seed: int = 1) -> tuple[dict[str, Any], Any]:
    features = batch(n, seed, categorical=adapter.categorical)
    return features, target(features, adapter.classifier)


def _load(adapter: Adapter, directory: Path) -> Model:
    return load_model(directory, trusted=adapter.needs_trust)


def test_is_a_model_with_jsonable_params(adapter: Adapter) -> None:
    model = adapter.build()
    assert isinstance(model, Model)
    assert json.loads(json.dumps(model.params())) == model.params()
    assert isinstance(type(model).format, str)


def test_predict_shapes_and_ranges(adapter: Adapter) -> None:
    model = adapter.build()
    features, y = _data(adapter)
    neutral = 0.5 if adapter.classifier else 0.0
    assert model.predict(features).tolist() == [neutral] * 60
    assert model.predict_one({k: v[0].item() for k, v in features.items()}) == neutral
    model.learn(features, y)
    scores = model.predict(features)
    assert scores.shape == (60,)
    assert scores.dtype == np.float64
    assert np.isfinite(scores).all()
    if adapter.classifier:
        assert ((scores >= 0) & (scores <= 1)).all()
        assert np.mean((scores > 0.5) == y) > 0.7
    else:
        assert np.corrcoef(scores, y)[0, 1] > 0.8


def test_predict_one_matches_predict(adapter: Adapter) -> None:
    model = adapter.build()
    features, y = _data(adapter)
    model.learn(features, y)
    scores = model.predict(features)
    for i in range(5):
        one = model.predict_one({k: v[i].item() for k, v in features.items()})
        assert one == pytest.approx(scores[i], rel=1e-9, abs=1e-12)


def test_learning_changes_predictions(adapter: Adapter) -> None:
    model = adapter.build()
    features, y = _data(adapter)
    model.learn(rows(features, 0, 30), y[:30])
    before = model.predict(features)
    model.learn(rows(features, 30, 60), y[30:])
    assert not np.allclose(model.predict(features), before)


def test_fit_starts_from_scratch(adapter: Adapter) -> None:
    first, second = _data(adapter, seed=1), _data(adapter, seed=2)
    model = adapter.build()
    model.learn(*first)
    model.fit(*second)
    fresh = adapter.build()
    fresh.fit(*second)
    np.testing.assert_array_equal(model.predict(first[0]), fresh.predict(first[0]))


def test_clone_has_the_params_and_no_state(adapter: Adapter) -> None:
    model = adapter.build()
    features, y = _data(adapter)
    model.learn(features, y)
    twin = model.clone()
    assert twin.params() == model.params()
    assert type(twin) is type(model)
    neutral = 0.5 if adapter.classifier else 0.0
    assert twin.predict(features).tolist() == [neutral] * 60
    twin.learn(features, y)
    np.testing.assert_allclose(twin.predict(features), model.predict(features))


def test_save_load_predicts_the_same(adapter: Adapter, tmp_path: Path) -> None:
    model = adapter.build()
    features, y = _data(adapter)
    model.save(tmp_path / "untrained")
    assert _load(adapter, tmp_path / "untrained").predict(features).tolist() == (
        model.predict(features).tolist())
    model.learn(features, y)
    model.save(tmp_path / "trained")
    manifest = json.loads((tmp_path / "trained" / "headwater-model.json").read_text())
    assert manifest["format"] == type(model).format
    assert manifest["params"] == model.params()
    assert set(manifest["features"]) <= set(features)
    loaded = _load(adapter, tmp_path / "trained")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))
    assert type(model).load(tmp_path / "trained", trusted=True).params() == model.params()


def test_pickle_formats_need_trust(adapter: Adapter, tmp_path: Path) -> None:
    model = adapter.build()
    model.save(tmp_path)
    if adapter.needs_trust:
        with pytest.raises(UntrustedArtifactError, match="trusted=True"):
            load_model(tmp_path)
    else:
        load_model(tmp_path)


def test_snapshot_restore_continue_equals_uninterrupted(adapter: Adapter,
                                                        tmp_path: Path) -> None:
    features, y = _data(adapter, n=90)
    straight = adapter.build()
    resumed = adapter.build()
    for start in range(0, 90, 30):
        part = rows(features, start, start + 30)
        straight.learn(part, y[start: start + 30])
        resumed.learn(part, y[start: start + 30])
        resumed.save(tmp_path / str(start))
        resumed = _load(adapter, tmp_path / str(start))
    np.testing.assert_array_equal(resumed.predict(features), straight.predict(features))


def test_snapshot_in_the_middle_of_a_block(adapter: Adapter, tmp_path: Path) -> None:
    features, y = _data(adapter, n=45)
    straight = adapter.build()
    straight.learn(rows(features, 0, 7), y[:7])
    straight.learn(rows(features, 7, 45), y[7:])
    resumed = adapter.build()
    resumed.learn(rows(features, 0, 7), y[:7])  # 7 rows: not a multiple of the block
    resumed.save(tmp_path)
    resumed = _load(adapter, tmp_path)
    resumed.learn(rows(features, 7, 45), y[7:])
    np.testing.assert_array_equal(resumed.predict(features), straight.predict(features))


@given(sizes=st.lists(st.integers(1, 9), min_size=1, max_size=6), seed=st.integers(0, 99))
def test_a_batch_learns_as_its_rows_would(adapter: Adapter, sizes: list[int],
                                          seed: int) -> None:
    """Learning a batch equals learning it in any split, down to one row per call."""
    if not adapter.row_equivalent:
        pytest.skip("learn follows the estimator (partial_fit shuffles each batch)")
    n = sum(sizes)
    features = batch(n, seed, categorical=adapter.categorical)
    y = target(features, adapter.classifier)
    whole, split = adapter.build(), adapter.build()
    whole.learn(features, y)
    start = 0
    for size in sizes:
        split.learn(rows(features, start, start + size), y[start: start + size])
        start += size
    np.testing.assert_allclose(split.predict(features), whole.predict(features),
                               rtol=1e-9, atol=1e-12)


# -- bad input ------------------------------------------------------------------------


def _trained(adapter: Adapter) -> tuple[Model, dict[str, Any], Any]:
    model = adapter.build()
    features, y = _data(adapter)
    model.learn(features, y)
    return model, features, y


def test_a_missing_column_is_named(adapter: Adapter) -> None:
    model, features, y = _trained(adapter)
    del features["b"]
    with pytest.raises(ValidationError, match="missing") as raised:
        model.predict(features)
    assert raised.value.field == "b"
    with pytest.raises(ValidationError) as raised:
        model.learn(features, y)
    assert raised.value.field == "b"
    with pytest.raises(ValidationError) as raised:
        model.predict_one({"a": 1.0, "c": 2})
    assert raised.value.field == "b"


def test_a_wrong_dtype_is_named(adapter: Adapter) -> None:
    model, features, _ = _trained(adapter)
    features["a"] = np.array(["x"] * 60)
    with pytest.raises(ValidationError, match="numeric") as raised:
        model.predict(features)
    assert raised.value.field == "a"
    with pytest.raises(ValidationError) as raised:
        model.predict_one({"a": "x", "b": 1.0, "c": 1, "city": "oslo"})
    assert raised.value.field == "a"


def test_nan_is_refused_with_the_column_and_row(adapter: Adapter) -> None:
    model, features, y = _trained(adapter)
    features["b"] = features["b"].copy()
    features["b"][7] = np.nan
    with pytest.raises(ValidationError, match="row 7") as raised:
        model.learn(features, y)
    assert raised.value.field == "b"
    with pytest.raises(ValidationError, match="NaN") as raised:
        model.predict_one({"a": 1.0, "b": float("nan"), "c": 1, "city": "oslo"})
    assert raised.value.field == "b"


def test_mismatched_lengths_are_named(adapter: Adapter) -> None:
    model, features, y = _trained(adapter)
    features["c"] = features["c"][:-1]
    with pytest.raises(ValidationError, match="59 rows") as raised:
        model.predict(features)
    assert raised.value.field == "c"
    features, y = _data(adapter)
    with pytest.raises(ValidationError) as raised:
        model.learn(features, y[:-1])
    assert raised.value.field == "y"
    with pytest.raises(ValidationError) as raised:
        model.learn(features, y, sample_weight=np.ones(3))
    assert raised.value.field == "sample_weight"


def test_bad_targets_are_named(adapter: Adapter) -> None:
    model = adapter.build()
    features, y = _data(adapter)
    bad = y.astype(np.float64)
    bad[3] = np.nan if not adapter.classifier else 2.0
    with pytest.raises(ValidationError) as raised:
        model.learn(features, bad)
    assert raised.value.field == "y"
