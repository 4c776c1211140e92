"""The trainers' learning loop, test-then-train: score a batch of examples, then learn it.

A trainer learns a slice of examples ``batch_rows`` at a time, and every example is scored
before its label is learnt (prequential, "test then train"). The loop is the one
prequential evaluation runs (:func:`headwater.evaluation.prequential.score_then_learn`,
imported here): the scores feed the gate, :func:`headwater.learning.reproduce` replays a
slice exactly as the trainer learnt it, and an evaluation measures what a trainer does.

>>> import numpy as np
>>> from headwater.models import LogisticRegression
>>> model = LogisticRegression()
>>> x = {"amount": np.array([1.0, 2.0, 3.0, 4.0])}
>>> scores = score_then_learn(model, x, np.array([0.0, 1.0, 0.0, 1.0]), batch_rows=2)
>>> float(scores[0])  # the first row meets a model that has learnt nothing
0.5
"""

from __future__ import annotations

from headwater.evaluation.prequential import BATCH_ROWS, check_batch_rows, score_then_learn

__all__ = ["BATCH_ROWS", "check_batch_rows", "score_then_learn"]
