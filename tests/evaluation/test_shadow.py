"""Shadow evaluation: pairing by request id, agreement and paired intervals."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import EvaluationError, ValidationError
from headwater.evaluation.intervals import paired_difference
from headwater.evaluation.metrics import accuracy, log_loss, roc_auc
from headwater.evaluation.shadow import pair, shadow_compare, wilson

ROWS = st.lists(st.tuples(st.integers(0, 12), st.sampled_from(["champion", "challenger"]),
                          st.sampled_from([0.1, 0.4, 0.6, 0.9]), st.integers(0, 1)),
                min_size=1, max_size=40)


def _table(rows: list[tuple[int, str, float, int]]) -> pa.Table:
    return pa.table({
        "request_id": [f"r{r[0]}" for r in rows], "entity": [f"u{r[0]}" for r in rows],
        "arm": [r[1] for r in rows], "served": [r[1] == "champion" for r in rows],
        "version": [1 if r[1] == "champion" else 2 for r in rows],
        "score": [r[2] for r in rows], "label": [float(r[3]) for r in rows]})


@given(ROWS)
def test_pairing_equals_a_dictionary_join(rows: list[tuple[int, str, float, int]]) -> None:
    served: dict[str, tuple[float, int]] = {}
    shadow: dict[str, float] = {}
    for rid, arm, score, label in rows:
        if arm == "champion":
            served.setdefault(f"r{rid}", (score, label))
        else:
            shadow.setdefault(f"r{rid}", score)
    both = [r for r in served if r in shadow]
    if not any(arm == "challenger" for _, arm, _, _ in rows):
        with pytest.raises(ValidationError, match="challenger"):
            pair(_table(rows))
        return
    if not both:
        with pytest.raises(EvaluationError):
            pair(_table(rows))
        return
    paired = pair(_table(rows))
    assert paired.request_ids == both
    assert paired.scores_b.tolist() == [served[r][0] for r in both]
    assert paired.scores_a.tolist() == [shadow[r] for r in both]
    assert paired.y.tolist() == [served[r][1] for r in both]
    assert paired.unpaired_served == len(served) - len(both)
    assert paired.unpaired_shadow == len(shadow) - len(both)
    result = shadow_compare(paired, metrics=("accuracy", "log_loss"), method="normal")
    agree = [(shadow[r] > 0.5) == (served[r][0] > 0.5) for r in both]
    assert result.agreement == pytest.approx(sum(agree) / len(both))
    assert result.deltas[0].difference == pytest.approx(
        accuracy(paired.y, paired.scores_a) - accuracy(paired.y, paired.scores_b))
    assert result.deltas[1].difference == pytest.approx(
        log_loss(paired.y, paired.scores_a) - log_loss(paired.y, paired.scores_b))


@given(st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1), st.floats(0, 1)), min_size=2,
                max_size=40))
def test_the_normal_interval_is_the_mean_difference_and_its_standard_error(
        rows: list[tuple[int, float, float]]) -> None:
    y = np.array([r[0] for r in rows], float)
    a, b = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    interval = paired_difference("accuracy", y, a, b, method="normal", confidence=0.95)
    d = ((a > 0.5) == y).astype(float) - ((b > 0.5) == y).astype(float)
    half = 1.959963984540054 * d.std(ddof=1) / math.sqrt(len(d))
    assert interval.difference == pytest.approx(d.mean(), abs=1e-12)
    assert interval.low == pytest.approx(d.mean() - half, abs=1e-9)
    assert interval.high == pytest.approx(d.mean() + half, abs=1e-9)


def test_bootstrap_is_seeded_and_brackets_a_clear_difference() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, size=500).astype(float)
    better = np.clip(y * 0.6 + 0.2 + rng.normal(scale=0.2, size=500), 0, 1)
    worse = np.clip(y * 0.2 + 0.4 + rng.normal(scale=0.3, size=500), 0, 1)
    one = paired_difference("roc_auc", y, better, worse, resamples=300, seed=1)
    again = paired_difference("roc_auc", y, better, worse, resamples=300, seed=1)
    assert one == again
    assert one.difference == pytest.approx(roc_auc(y, better) - roc_auc(y, worse))
    assert 0 < one.low < one.difference < one.high
    with pytest.raises(ValidationError, match="method"):
        paired_difference("roc_auc", y, better, worse, method="normal")


def test_wilson_interval() -> None:
    assert all(math.isnan(v) for v in wilson(0, 0))
    low, high = wilson(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4)
    assert high == pytest.approx(0.5962, abs=1e-4)
    assert wilson(10, 10)[1] == 1.0


def test_report_and_several_shadow_arms() -> None:
    table = pa.table({
        "request_id": ["a", "a", "a", "b", "b", "b"],
        "arm": ["champion", "c1", "c2"] * 2, "served": [True, False, False] * 2,
        "version": [1, 2, 3] * 2, "score": [0.9, 0.8, 0.1, 0.2, 0.3, 0.9],
        "label": [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]})
    with pytest.raises(ValidationError, match="challenger"):
        pair(table)
    with pytest.raises(ValidationError, match="challenger"):
        pair(table, challenger="c9")
    result = shadow_compare(pair(table, challenger="c2"), metrics=("accuracy",),
                            resamples=50)
    assert result.agreement == 0.0
    assert result.challenger == "c2 v3"
    assert "Shadow: c2 v3 against champion v1" in result.report().to_html()
