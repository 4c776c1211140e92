"""Streaming metrics against batch recomputation and a brute-force AUC."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import ValidationError
from headwater.evaluation.metrics import (
    METRICS,
    ROCAUC,
    Accuracy,
    KappaTemporal,
    StreamingMetric,
    accuracy,
    kappa_temporal,
    log_loss,
    mae,
    make_metric,
    restore_metric,
    rmse,
    roc_auc,
)

SCORES = st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
EXAMPLES = st.lists(st.tuples(st.integers(0, 1), SCORES), min_size=0, max_size=60)
CUTS = st.lists(st.integers(0, 60), max_size=6)
WINDOWS = st.one_of(st.none(), st.integers(1, 25))


def _batches(n: int, cuts: list[int]) -> list[slice]:
    points = sorted({0, n, *(c for c in cuts if c <= n)})
    return [slice(a, b) for a, b in itertools.pairwise(points)]


def _brute_auc(y: list[int], scores: list[float]) -> float:
    wins, pairs = 0.0, 0
    for (yi, si), (yj, sj) in itertools.product(zip(y, scores, strict=True), repeat=2):
        if yi == 1 and yj == 0:
            pairs += 1
            wins += 1.0 if si > sj else 0.5 if si == sj else 0.0
    return wins / pairs if pairs else math.nan


def _batch(name: str, y: np.ndarray, s: np.ndarray, previous: float | None) -> float:
    if not len(y):
        return math.nan
    if name == "accuracy":
        return accuracy(y, s)
    if name == "log_loss":
        return log_loss(y, s)
    if name == "roc_auc":
        return _brute_auc(y.tolist(), s.tolist())
    if name == "kappa_t":
        return kappa_temporal(y, s, previous=previous)
    if name == "mae":
        return mae(y, s)
    return rmse(y, s)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", list(METRICS))
@given(data=EXAMPLES, cuts=CUTS, window=WINDOWS)
def test_streaming_equals_batch_recomputation(name: str, data: list[tuple[int, float]],
                                              cuts: list[int], window: int | None) -> None:
    y = np.array([label for label, _ in data], np.float64)
    s = np.array([score for _, score in data], np.float64)
    metric = make_metric(name, window=window)
    for part in _batches(len(y), cuts):
        metric.update(y[part], s[part])
        end = part.stop
        start = 0 if window is None else max(0, end - window)
        previous = float(y[start - 1]) if start > 0 else None
        assert _same(metric.value, _batch(name, y[start:end], s[start:end], previous))
        assert metric.count == end - start


@given(data=st.lists(st.tuples(st.integers(0, 1), st.floats(0, 1)), min_size=2, max_size=50))
def test_exact_auc_equals_pairwise_count(data: list[tuple[int, float]]) -> None:
    y = [label for label, _ in data]
    s = [score for _, score in data]
    assert _same(roc_auc(y, s), _brute_auc(y, s))


def test_kappa_temporal_against_no_change() -> None:
    kappa = KappaTemporal()
    # labels in runs: the no-change classifier is right 5 of 8 times (it has no
    # prediction for the first), the model, always predicting 1, 3 times
    kappa.update(np.array([0, 0, 0, 1, 1, 1, 0, 0]), np.full(8, 0.8))
    assert kappa.value == pytest.approx((3 / 8 - 5 / 8) / (1 - 5 / 8))
    assert kappa.value < 0  # worse than repeating the last label


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValidationError, match="scores"):
        Accuracy().update(np.array([1, 0]), np.array([0.5]))
    with pytest.raises(ValidationError, match="scores"):
        Accuracy().update(np.array([1]), np.array([np.nan]))
    with pytest.raises(ValidationError, match="window"):
        ROCAUC(window=0)
    with pytest.raises(ValidationError, match="metric"):
        make_metric("f1")


def test_every_metric_is_a_streaming_metric_and_clones_empty() -> None:
    for name in METRICS:
        metric = make_metric(name, window=5)
        metric.update(np.array([1.0, 0.0]), np.array([0.9, 0.2]))
        assert isinstance(metric, StreamingMetric)
        fresh = metric.clone()
        assert (fresh.count, fresh.window) == (0, 5)
        assert math.isnan(fresh.value)


@pytest.mark.parametrize("name", list(METRICS))
@given(data=EXAMPLES, cut=st.integers(0, 60), window=WINDOWS)
def test_snapshot_restore_continue_equals_an_uninterrupted_run(
        name: str, data: list[tuple[int, float]], cut: int, window: int | None) -> None:
    y = np.array([label for label, _ in data], np.float64)
    s = np.array([score for _, score in data], np.float64)
    whole = make_metric(name, window=window)
    whole.update(y, s)
    first = make_metric(name, window=window)
    first.update(y[:cut], s[:cut])
    snapshot = json.loads(json.dumps(first.snapshot()))  # JSON-able all the way
    resumed = restore_metric(snapshot)
    resumed.update(y[cut:], s[cut:])
    assert _same(resumed.value, whole.value)
    assert resumed.count == whole.count
