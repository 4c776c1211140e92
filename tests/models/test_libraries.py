"""What the River and scikit-learn adapters add to the contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from headwater.errors import ModelError, ValidationError
from tests.models.adapters import batch, target


def test_river_learn_many_and_weights() -> None:
    pytest.importorskip("river")
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
    pytest.importorskip("river")
    from river import compose, linear_model, preprocessing

    from headwater.models.river import RiverModel

    model = RiverModel(compose.Pipeline(preprocessing.StandardScaler(),
                                        linear_model.LogisticRegression()))
    features = batch(10, 0)  # River's scaler cannot take the string column
    with pytest.raises(ModelError, match="Pipeline failed to learn"):
        model.learn(features, target(features, True))


def test_sklearn_without_partial_fit_or_probabilities() -> None:
    pytest.importorskip("sklearn")
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
