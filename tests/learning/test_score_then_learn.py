"""The trainers' test-then-train loop: every score comes from before its label was learnt."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from headwater.errors import ValidationError
from headwater.learning import score_then_learn
from headwater.models import LogisticRegression


def examples(n: int = 60) -> tuple[dict[str, npt.NDArray[Any]], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] - x[:, 1] > 0).astype(np.float64)
    return {"x1": x[:, 0], "x2": x[:, 1]}, y


class BatchOnly:
    """A logistic regression seen through ``predict`` and ``learn`` only, as a model of any
    other library is (no ``predict_learn``)."""

    def __init__(self) -> None:
        self.inner = LogisticRegression()

    def predict(self, batch: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.float64]:
        return self.inner.predict(batch)

    def learn(self, batch: dict[str, npt.NDArray[Any]], y: npt.ArrayLike) -> None:
        self.inner.learn(batch, y)


def test_a_model_with_predict_learn_scores_each_row_before_learning_it() -> None:
    x, y = examples()
    model = LogisticRegression()
    scores = score_then_learn(model, x, y, batch_rows=7)
    by_hand = LogisticRegression()
    expected = []
    for i in range(len(y)):
        row = {k: v[i:i + 1] for k, v in x.items()}
        expected.append(float(by_hand.predict(row)[0]))
        by_hand.learn(row, y[i:i + 1])
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.predict(x), by_hand.predict(x), rtol=0, atol=1e-9)


def test_any_other_model_scores_each_batch_before_learning_it() -> None:
    x, y = examples()
    model = BatchOnly()
    scores = score_then_learn(model, x, y, batch_rows=25)  # type: ignore[arg-type]
    assert scores.shape == (60,)
    np.testing.assert_array_equal(scores[:25], 0.5)  # the first batch meets an empty model
    by_hand = LogisticRegression()
    for lo in (0, 25, 50):
        part = {k: v[lo:lo + 25] for k, v in x.items()}
        np.testing.assert_allclose(scores[lo:lo + 25], by_hand.predict(part), rtol=0, atol=1e-12)
        by_hand.learn(part, y[lo:lo + 25])
    # a batch learnt whole ends where the rows learnt one by one end
    np.testing.assert_allclose(model.predict(x), by_hand.predict(x), rtol=0, atol=1e-9)


@pytest.mark.parametrize("batch_rows", [0, -3, True, 2.5, "64"])
def test_batch_rows_is_checked(batch_rows: object) -> None:
    x, y = examples(4)
    with pytest.raises(ValidationError) as caught:
        score_then_learn(LogisticRegression(), x, y, batch_rows=batch_rows)  # type: ignore[arg-type]
    assert caught.value.field == "batch_rows"
