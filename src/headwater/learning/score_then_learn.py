"""The trainers' learning loop, test-then-train: score a batch of examples, then learn it.

A trainer learns a slice of examples ``batch_rows`` at a time, and every example is scored
before its label is learnt (prequential, "test then train"): a model with
``predict_learn`` (the built-in linear ones) scores each row just before learning it, in
one pass; any other is asked ``predict`` on the batch, then ``learn``. The scores feed the
gate; and because the loop is this one function, :func:`headwater.learning.reproduce`
replays a slice exactly as the trainer learnt it.

>>> import numpy as np
>>> from headwater.models import LogisticRegression
>>> model = LogisticRegression()
>>> x = {"amount": np.array([1.0, 2.0, 3.0, 4.0])}
>>> scores = score_then_learn(model, x, np.array([0.0, 1.0, 0.0, 1.0]), batch_rows=2)
>>> float(scores[0])  # the first row meets a model that has learnt nothing
0.5
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.models import Model

__all__ = ["BATCH_ROWS", "check_batch_rows", "score_then_learn"]

#: The trainers' default batch: a slice is learnt ``BATCH_ROWS`` examples at a time.
BATCH_ROWS: Final = 4096


def check_batch_rows(batch_rows: object) -> int:
    """``batch_rows`` if it is an int >= 1, else a :class:`~headwater.errors.ValidationError`
    naming it."""
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValidationError("batch_rows", f"expected an int >= 1, got {batch_rows!r}")
    return batch_rows


def score_then_learn(model: Model, features: Mapping[str, npt.NDArray[Any]],
                     y: npt.NDArray[Any], *, batch_rows: int = BATCH_ROWS
                     ) -> npt.NDArray[np.float64]:
    """Learn the examples in order, ``batch_rows`` at a time; return each example's score
    from before it was learnt."""
    check_batch_rows(batch_rows)
    n = len(y)
    scores = np.empty(n)
    predict_learn = getattr(model, "predict_learn", None)
    for lo in range(0, n, batch_rows):
        part = {k: v[lo:lo + batch_rows] for k, v in features.items()}
        if predict_learn is not None:
            scores[lo:lo + batch_rows] = predict_learn(part, y[lo:lo + batch_rows])
        else:
            scores[lo:lo + batch_rows] = model.predict(part)
            model.learn(part, y[lo:lo + batch_rows])
    return scores
