"""The exact metrics against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.models.metrics import accuracy, log_loss, roc_auc


def _pairs_auc(y: list[int], scores: list[float]) -> float:
    """The probability that a random positive outscores a random negative (ties: 1/2)."""
    wins = 0.0
    pairs = 0
    for (yi, si), (yj, sj) in itertools.product(zip(y, scores, strict=True), repeat=2):
        if yi == 1 and yj == 0:
            pairs += 1
            wins += 1.0 if si > sj else 0.5 if si == sj else 0.0
    return wins / pairs


@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0.0, 0.1, 0.5, 0.7, 1.0])),
                min_size=2, max_size=40))
def test_auc_is_exact_with_ties(data: list[tuple[int, float]]) -> None:
    y = [label for label, _ in data]
    scores = [score for _, score in data]
    if len(set(y)) < 2:
        assert math.isnan(roc_auc(y, scores))
    else:
        assert roc_auc(y, scores) == pytest.approx(_pairs_auc(y, scores), abs=1e-12)


def test_accuracy_and_log_loss() -> None:
    y = np.array([1, 0, 1])
    scores = np.array([0.9, 0.2, 0.4])
    assert accuracy(y, scores) == pytest.approx(2 / 3)
    assert log_loss(y, scores) == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.4)) / 3)
