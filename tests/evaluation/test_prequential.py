"""Prequential evaluation against a one-example-at-a-time oracle."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import ValidationError
from headwater.evaluation.examples import Examples
from headwater.evaluation.prequential import prequential
from headwater.models import LogisticRegression
from headwater.models.features import Features
from tests.evaluation.models import Recorder

STREAMS = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 10), st.integers(0, 1)),
                   min_size=1, max_size=40)


def _examples(rows: list[tuple[int, int, int]]) -> Examples:
    t = np.array([r[0] for r in rows])
    return Examples({"id": np.arange(len(rows), dtype=np.float64)},
                    np.array([r[2] for r in rows]), prediction_time=t,
                    label_time=t + np.array([r[1] for r in rows]))


def _oracle(ex: Examples) -> tuple[list[float], list[int]]:
    """One example at a time: before each prediction (in time order), learn every label
    known strictly before it, in label-time order; then every remaining label."""
    pending = sorted(range(len(ex)), key=lambda i: (ex.label_time[i], i))
    learnt: list[int] = []
    scores = [0.0] * len(ex)
    for i in sorted(range(len(ex)), key=lambda i: (ex.prediction_time[i], i)):
        while pending and ex.label_time[pending[0]] < ex.prediction_time[i]:
            learnt.append(pending.pop(0))
        scores[i] = len(learnt) / (len(learnt) + 1.0)
    return scores, learnt + pending


@given(STREAMS)
def test_prequential_equals_the_one_at_a_time_oracle(rows: list[tuple[int, int, int]]) -> None:
    ex = _examples(rows)
    model = Recorder()
    result = prequential(model, ex, metrics=("accuracy", "log_loss"), window=5, every=3)
    scores, learnt = _oracle(ex)
    assert result.scores.tolist() == scores
    assert model.learnt == learnt
    assert result.learnt == len(ex)
    assert result.counts[-1] == len(ex)


@given(STREAMS)
def test_no_label_is_learnt_before_its_time(rows: list[tuple[int, int, int]]) -> None:
    ex = _examples(rows)
    result = prequential(Recorder(), ex, metrics=("accuracy",))
    for i in range(len(ex)):  # the number learnt before i is the labels known before t_i
        before = int((ex.label_time < ex.prediction_time[i]).sum())
        assert result.scores[i] == before / (before + 1.0)


def test_a_real_model_learns_a_delayed_stream() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=3_000)
    ex = Examples({"x": x}, (x > 0).astype(int), prediction_time=np.arange(3_000),
                  label_time=np.arange(3_000) + 100)
    result = prequential(LogisticRegression(), ex, window=500)
    assert result.final["accuracy@500"] > 0.9
    assert result.final["roc_auc"] > 0.9
    assert set(result.curves) == {"accuracy", "accuracy@500", "log_loss", "log_loss@500",
                                  "roc_auc", "roc_auc@500", "kappa_t", "kappa_t@500"}
    page = result.report(model="churn v3").to_html()
    assert "churn v3: roc_auc over time" in page


def test_examples_refuse_a_label_known_before_its_prediction() -> None:
    with pytest.raises(ValidationError, match=r"label_time\[1\]"):
        Examples({"x": np.zeros(2)}, np.zeros(2), prediction_time=np.array([1, 5]),
                 label_time=np.array([1, 4]))


@given(STREAMS, st.integers(1, 7))
def test_micro_batches_learn_each_label_at_the_next_tick(rows: list[tuple[int, int, int]],
                                                         tick: int) -> None:
    ex = _examples(rows)
    result = prequential(Recorder(), ex, metrics=("accuracy",), learn_every=tick)
    for i in range(len(ex)):
        ticks = (ex.label_time // tick + 1) * tick
        before = int((ticks <= ex.prediction_time[i]).sum())
        assert result.scores[i] == before / (before + 1.0)
        assert before <= int((ex.label_time < ex.prediction_time[i]).sum())


def test_without_delay_one_predict_learn_call_equals_the_loop() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=600)
    y = (x + rng.normal(scale=0.3, size=600) > 0).astype(int)
    ex = Examples({"x": x}, y, prediction_time=np.arange(600))
    fast = prequential(LogisticRegression(), ex, metrics=("log_loss",))
    assert fast.learnt == 600

    class Plain:  # the same model without predict_learn: the general loop
        def __init__(self) -> None:
            self.inner = LogisticRegression()

        def predict(self, batch: Features) -> npt.NDArray[np.float64]:
            return self.inner.predict(batch)

        def learn(self, batch: Features, y: npt.ArrayLike,
                  sample_weight: npt.ArrayLike | None = None) -> None:
            self.inner.learn(batch, y)

    loop = prequential(Plain(), ex, metrics=("log_loss",))
    np.testing.assert_allclose(fast.scores, loop.scores, rtol=1e-9, atol=1e-12)
