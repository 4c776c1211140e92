"""Models a user brings, served: a River pipeline, a scikit-learn gradient-boosting model
and a scikit-learn ``Pipeline`` — each trained the user's way, saved the user's way
(pickle, skops, joblib), registered with ``headwater models register`` after the
operator's opt-in, and served by ``headwater serve`` as a separate process — answer over
HTTP what the same model answers in the user's own process."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from headwater.store.online import EmbeddedOnlineStore
from tests.models.adapters import require
from tests.processes import Server, headwater
from tests.registry.artifacts import rows

PROJECT = """
from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
user = Entity("user", key="user")
payments = StreamSource.of("payments")
spent = Feature.of("spent", user, payments, "sum", column="amount", window=Lifetime())
fs = FeatureSet("fs", (spent,))
"""
#: What the user asks about: request values (the feature set's own feature is unused).
ASKED = [{"amount": float(a), "age": float(b)}
         for a, b in zip([5.0, 40.0, 75.5, 120.0, 260.0, 33.3], [19, 35, 52, 64, 80, 47],
                         strict=True)]
Scorer = Callable[[dict[str, float]], float]


def river_pipeline(directory: Path) -> tuple[Path, list[str], Scorer]:
    require("river")
    from river import compose, linear_model, preprocessing

    pipeline = compose.Pipeline(preprocessing.StandardScaler(),
                                linear_model.LogisticRegression())
    batch, y = rows(300, seed=3)
    for i in range(300):  # learnt the River way, one dict at a time
        pipeline.learn_one({"amount": batch["amount"][i], "age": batch["age"][i]}, bool(y[i]))
    path = directory / "river.pkl"
    path.write_bytes(pickle.dumps(pipeline))
    return path, ["--features", "amount,age"], lambda r: pipeline.predict_proba_one(r)[True]


def gradient_boosting(directory: Path) -> tuple[Path, list[str], Scorer]:
    require("sklearn")
    import pyarrow as pa
    import skops.io as skops_io  # type: ignore[import-untyped]
    from sklearn.ensemble import GradientBoostingClassifier  # type: ignore[import-untyped]

    batch, y = rows(300, seed=4)
    model = GradientBoostingClassifier(n_estimators=30, random_state=0)
    model.fit(pa.table(batch), y)  # fitted on named columns: feature_names_in_
    path = directory / "gbm.skops"
    skops_io.dump(model, path)
    return path, [], lambda r: float(model.predict_proba(pa.table(
        {k: [v] for k, v in r.items()}))[0, 1])


def sklearn_pipeline(directory: Path) -> tuple[Path, list[str], Scorer]:
    require("sklearn")
    import joblib  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    batch, y = rows(300, seed=5)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    model.fit(np.column_stack([batch["amount"], batch["age"]]), y)  # unnamed columns
    path = directory / "pipeline.joblib"
    joblib.dump(model, path)
    return path, ["--features", "amount,age"], lambda r: float(
        model.predict_proba(np.array([[r["amount"], r["age"]]]))[0, 1])


@pytest.mark.parametrize("make", [river_pipeline, gradient_boosting, sklearn_pipeline],
                         ids=["river-pipeline", "sklearn-gradient-boosting", "sklearn-pipeline"])
def test_a_model_the_user_brings_answers_over_http_what_it_answers_in_process(
        tmp_path: Path, make: Callable[[Path], tuple[Path, list[str], Scorer]]) -> None:
    home = tmp_path / "home"
    EmbeddedOnlineStore(home / "online").close()
    (tmp_path / "features.py").write_text(PROJECT)
    source, options, in_process = make(tmp_path)
    expected = [in_process(r) for r in ASKED]
    assert len(set(np.round(expected, 6))) >= 3  # a real model, not a constant

    granted = headwater(home, "models", "trust", "--pickle", "--actor", "ops", "--reason",
                        "we serve our data scientists' River and tree models")
    assert granted.returncode == 0, granted.stderr
    done = headwater(home, "models", "register", "churn", str(source), *options, "--promote",
                     "--reason", "the model from the notebook")
    assert done.returncode == 0, done.stderr
    assert "churn champion → v1" in done.stdout

    with Server(home, "--model", "churn", "--project", str(tmp_path / "features.py")) as server:
        status, body = server.get("/ready")
        assert (status, body) == (200, {"ready": True}), server.printed()
        for request, score in zip(ASKED, expected, strict=True):
            status, answer = server.post("/predict", {"entities": {"user": "u1"},
                                                      "request": request})
            assert status == 200, answer
            assert (answer["model"], answer["version"]) == ("churn", 1)
            assert answer["score"] == pytest.approx(score, rel=0, abs=1e-12)
        status, batch = server.post("/predict", {"requests": [
            {"entities": {"user": f"u{i}"}, "request": r} for i, r in enumerate(ASKED)]})
        assert status == 200, batch
        got: list[Any] = [p["score"] for p in batch["predictions"]]
        assert got == pytest.approx(expected, rel=0, abs=1e-12)
