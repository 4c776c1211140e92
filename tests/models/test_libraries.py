"""What the River and scikit-learn adapters add to the contract, and how they learn the
columns of an estimator fitted before it was wrapped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.errors import ModelError, ValidationError
from tests.extras import require_extra
from tests.models.adapters import batch, require, target


def test_river_learn_many_and_weights() -> None:
    require_extra("river", "river")
    from river import linear_model, tree

    from headwater.models.river import RiverModel

    features = batch(200, 0, categorical=False)
    y = target(features, True)
    many = RiverModel(linear_model.LogisticRegression(), learn_many=True)
    many.learn(features, y)
    many.learn(features, y, sample_weight=np.full(200, 2.0))
    assert np.mean((many.predict(features) > 0.5) == y) > 0.6
    assert many.params()["learn_many"] is True
    weighted = RiverModel(linear_model.LogisticRegression())
    weighted.learn(features, y, sample_weight=np.zeros(200))
    assert weighted.predict(features).tolist() == [0.5] * 200  # zero weight: no step
    regressor = RiverModel(tree.HoeffdingTreeRegressor())
    regressor.learn(features, target(features, False))
    assert json.dumps(regressor.params())
    with pytest.raises(ValidationError) as raised:
        RiverModel(object())
    assert raised.value.field == "estimator"


def test_river_errors_are_wrapped() -> None:
    require_extra("river", "river")
    from river import compose, linear_model, preprocessing

    from headwater.models.river import RiverModel

    model = RiverModel(compose.Pipeline(preprocessing.StandardScaler(),
                                        linear_model.LogisticRegression()))
    features = batch(10, 0)  # River's scaler cannot take the string column
    with pytest.raises(ModelError, match="Pipeline failed to learn"):
        model.learn(features, target(features, True))


def test_sklearn_without_partial_fit_or_probabilities() -> None:
    require_extra("sklearn", "sklearn")
    from sklearn.linear_model import (  # type: ignore[import-untyped]
        LogisticRegression,
        SGDClassifier,
    )
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    from headwater.models.sklearn import SklearnModel

    features = batch(100, 0, categorical=False)
    y = target(features, True)
    refit = SklearnModel(LogisticRegression())
    refit.learn(features, y)  # no partial_fit: fit on the batch
    assert np.mean((refit.predict(features) > 0.5) == y) > 0.9
    hinge = SklearnModel(SGDClassifier(random_state=0))  # no predict_proba
    hinge.learn(features, y)
    scores = hinge.predict(features)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert np.mean((scores > 0.5) == y) > 0.8
    with pytest.raises(ValidationError) as raised:
        SklearnModel(StandardScaler())
    assert raised.value.field == "estimator"
    with pytest.raises(ValidationError, match="numeric columns only") as raised:
        SklearnModel(LogisticRegression()).learn(batch(10, 0), np.zeros(10))
    assert raised.value.field == "city"


def _table_and_labels(n: int = 300, seed: int = 0) -> tuple[Any, npt.NDArray[np.int64]]:
    """A pyarrow table with named columns (what scikit-learn records as
    ``feature_names_in_``) and labels that depend on two of them."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    table = pa.table({"amount": rng.gamma(2.0, 30.0, n), "age": rng.uniform(18, 80, n),
                      "noise": rng.normal(size=n)})
    y = (np.asarray(table["amount"]) / 60 + np.asarray(table["age"]) / 40 > 2.5)
    return table, y.astype(np.int64)


def test_a_prefitted_sklearn_estimator_reads_the_columns_it_was_fitted_on() -> None:
    require_extra("sklearn", "sklearn")
    from sklearn.ensemble import GradientBoostingClassifier  # type: ignore[import-untyped]

    from headwater.models.sklearn import SklearnModel

    table, y = _table_and_labels()
    estimator = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(table, y)
    model = SklearnModel(estimator)
    assert model.features == ("amount", "age", "noise")
    expected = estimator.predict_proba(table)[:, 1]  # by name, as it was fitted
    assert len(set(np.round(expected, 6))) > 2  # not a constant
    columns = {c: np.asarray(table[c]) for c in ("noise", "age", "amount")}  # another order
    np.testing.assert_allclose(model.predict(columns), expected, rtol=0, atol=1e-12)
    assert model.predict_one({"noise": columns["noise"][3], "age": columns["age"][3],
                              "amount": columns["amount"][3]}) == pytest.approx(expected[3])
    with pytest.raises(ValidationError) as raised:
        model.predict_one({"amount": 1.0, "noise": 0.0})
    assert raised.value.field == "age"


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.tuples(st.floats(0, 500), st.floats(18, 90), st.floats(-3, 3)),
                     min_size=1, max_size=20))
def test_a_prefitted_sklearn_estimator_agrees_with_itself_on_any_rows(
        rows: list[tuple[float, float, float]]) -> None:
    estimator, model = _FITTED.get()
    import pyarrow as pa

    matrix = np.array(rows, dtype=np.float64)
    expected = estimator.predict_proba(pa.table(
        {"amount": matrix[:, 0], "age": matrix[:, 1], "noise": matrix[:, 2]}))[:, 1]
    batch_ = {"age": matrix[:, 1], "noise": matrix[:, 2], "amount": matrix[:, 0]}
    np.testing.assert_array_equal(model.predict(batch_), expected)
    for i, (amount, age, noise) in enumerate(rows):
        assert model.predict_one({"age": age, "amount": amount, "noise": noise}) == expected[i]


class _Fitted:
    """One pre-fitted tree model and its adapter, built once for the property test."""

    def __init__(self) -> None:
        self._pair: tuple[Any, Any] | None = None

    def get(self) -> tuple[Any, Any]:
        if self._pair is None:
            require("sklearn")
            from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

            from headwater.models.sklearn import SklearnModel

            table, y = _table_and_labels(seed=1)
            estimator = DecisionTreeClassifier(max_depth=4, random_state=0).fit(table, y)
            self._pair = estimator, SklearnModel(estimator)
        return self._pair


_FITTED = _Fitted()


def test_a_prefitted_sklearn_estimator_without_column_names_is_refused() -> None:
    require_extra("sklearn", "sklearn")
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler

    from headwater.models.sklearn import SklearnModel

    table, y = _table_and_labels()
    matrix = np.column_stack([np.asarray(table[c]) for c in ("amount", "age", "noise")])
    estimator = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(matrix, y)
    with pytest.raises(ValidationError, match="3 unnamed column") as raised:
        SklearnModel(estimator)
    assert raised.value.field == "features"
    with pytest.raises(ValidationError, match="2 names for the 3 columns"):
        SklearnModel(estimator, features=["amount", "age"])
    model = SklearnModel(estimator, features=["amount", "age", "noise"])
    np.testing.assert_array_equal(
        model.predict({c: np.asarray(table[c]) for c in ("amount", "age", "noise")}),
        estimator.predict_proba(matrix)[:, 1])
    named = make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=5))
    named.fit(table, y)
    with pytest.raises(ValidationError, match="not the columns Pipeline was fitted on"):
        SklearnModel(named, features=["age", "amount", "noise"])
    assert SklearnModel(named).features == ("amount", "age", "noise")
    unfitted = SklearnModel(GradientBoostingClassifier())  # nothing learnt: neutral
    assert unfitted.features is None
    assert unfitted.predict_one({"amount": 1.0}) == 0.5


def test_given_sklearn_features_survive_save_load_and_clone(tmp_path: Path) -> None:
    require_extra("sklearn", "sklearn")
    from sklearn.linear_model import LogisticRegression

    from headwater.models import load_model
    from headwater.models.sklearn import SklearnModel

    table, y = _table_and_labels()
    matrix = np.column_stack([np.asarray(table[c]) for c in ("age", "amount")])
    model = SklearnModel(LogisticRegression().fit(matrix, y), features=["age", "amount"])
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m", trusted=True)
    assert isinstance(loaded, SklearnModel)
    assert loaded.features == ("age", "amount")
    assert loaded.clone().features == ("age", "amount")  # given, so kept unfitted
    learnt = SklearnModel(LogisticRegression())
    learnt.learn({"b": np.arange(10.0), "a": np.arange(10.0) % 2}, np.arange(10) % 2)
    learnt.save(tmp_path / "learnt")
    reloaded = load_model(tmp_path / "learnt", trusted=True)
    assert isinstance(reloaded, SklearnModel)
    assert reloaded.features == ("b", "a")
    assert reloaded.clone().features is None  # learnt, not given: a clone learns its own


def test_a_pretrained_river_estimator_is_asked_never_replaced_by_a_constant() -> None:
    require_extra("river", "river")
    from river import compose, linear_model, preprocessing

    from headwater.models.river import RiverModel

    pipeline = compose.Pipeline(preprocessing.StandardScaler(),
                                linear_model.LogisticRegression())
    table, y = _table_and_labels(seed=2)
    rows = [{"amount": a, "age": b} for a, b in zip(table["amount"].to_pylist(),
                                                     table["age"].to_pylist(), strict=True)]
    for row, label in zip(rows, y.tolist(), strict=True):
        pipeline.learn_one(row, bool(label))
    expected = [pipeline.predict_proba_one(r)[True] for r in rows[:20]]
    assert len(set(np.round(expected, 6))) > 2
    as_is = RiverModel(pipeline)  # its inputs unknown: every column is given to River
    given = RiverModel(pipeline, features=["amount", "age"])
    assert as_is.features is None
    assert given.features == ("amount", "age")
    for model in (as_is, given):
        assert [model.predict_one(r) for r in rows[:20]] == pytest.approx(expected, abs=1e-12)
    columns = {"amount": np.asarray(table["amount"])[:20], "age": np.asarray(table["age"])[:20],
               "other": np.zeros(20)}
    np.testing.assert_allclose(given.predict(columns), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValidationError) as raised:
        given.predict_one({"amount": 10.0})
    assert raised.value.field == "age"
    with pytest.raises(ValidationError) as raised:
        given.predict({"amount": np.zeros(3)})
    assert raised.value.field == "age"
    with pytest.raises(ValidationError) as raised:
        RiverModel(pipeline, features=["amount", "amount"])
    assert raised.value.field == "features"


def test_given_river_features_survive_save_load_and_learning(tmp_path: Path) -> None:
    require_extra("river", "river")
    from river import linear_model

    from headwater.models import load_model
    from headwater.models.river import RiverModel

    model = RiverModel(linear_model.LogisticRegression(), features=["a", "b"])
    model.save(tmp_path / "fresh")
    fresh = load_model(tmp_path / "fresh", trusted=True)
    assert isinstance(fresh, RiverModel)
    assert fresh.features == ("a", "b")
    data = {"a": np.array([1.0, -1.0] * 10), "b": np.ones(20), "c": np.zeros(20)}
    fresh.learn(data, np.array([1, 0] * 10))
    assert fresh.features == ("a", "b")  # the extra column is not learnt
    fresh.save(tmp_path / "learnt")
    learnt = load_model(tmp_path / "learnt", trusted=True)
    assert isinstance(learnt, RiverModel)
    np.testing.assert_array_equal(learnt.predict(data), fresh.predict(data))
    assert learnt.clone().features == ("a", "b")


class _Pretrained:
    """One River pipeline trained the River way, built once for the property test."""

    def __init__(self) -> None:
        self._pipeline: Any = None

    def get(self) -> Any:
        if self._pipeline is None:
            require("river")
            from river import compose, linear_model, preprocessing

            pipeline = compose.Pipeline(preprocessing.StandardScaler(),
                                        linear_model.LogisticRegression())
            table, y = _table_and_labels(seed=3)
            for a, b, label in zip(table["amount"].to_pylist(), table["age"].to_pylist(),
                                   y.tolist(), strict=True):
                pipeline.learn_one({"amount": a, "age": b}, bool(label))
            self._pipeline = pipeline
        return self._pipeline


_PRETRAINED = _Pretrained()


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.floats(0, 500), st.floats(18, 90)), min_size=1,
                     max_size=20),
       given_names=st.booleans())
def test_a_pretrained_river_estimator_agrees_with_itself_on_any_rows(
        rows: list[tuple[float, float]], given_names: bool) -> None:
    from headwater.models.river import RiverModel

    pipeline = _PRETRAINED.get()
    model = RiverModel(pipeline, features=["amount", "age"] if given_names else None)
    expected = [pipeline.predict_proba_one({"amount": a, "age": b})[True] for a, b in rows]
    batch_ = {"age": np.array([b for _, b in rows]), "amount": np.array([a for a, _ in rows])}
    assert model.predict(batch_).tolist() == expected
    assert [model.predict_one({"age": b, "amount": a}) for a, b in rows] == expected
