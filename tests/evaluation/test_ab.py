"""A/B tests: streaming moments, a test that is safe to peek at, decisions from labels."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import EvaluationError, ValidationError
from headwater.evaluation.ab import ab_test, assign
from headwater.serving import Split
from headwater.stats.sequential import MixtureSPRT, Moments, mixture_likelihood_ratio


@given(st.lists(st.floats(-1e3, 1e3), max_size=40), st.lists(st.integers(0, 40), max_size=5))
def test_streaming_moments_equal_the_batch(values: list[float], cuts: list[int]) -> None:
    moments = Moments()
    points = sorted({0, len(values), *(c for c in cuts if c <= len(values))})
    for a, b in itertools.pairwise(points):
        moments.update(values[a:b])
    assert moments.n == len(values)
    if values:
        assert moments.mean == pytest.approx(np.mean(values), abs=1e-9)
    if len(values) > 1:
        assert moments.variance == pytest.approx(np.var(values, ddof=1), rel=1e-9, abs=1e-6)


@given(st.lists(st.integers(0, 1), min_size=30, max_size=80),
       st.lists(st.integers(0, 1), min_size=30, max_size=80), st.integers(1, 30))
def test_the_ratio_after_any_looks_is_the_ratio_of_all_the_data(
        a: list[int], b: list[int], step: int) -> None:
    test = MixtureSPRT(tau=0.1, min_samples=2)
    for i in range(0, max(len(a), len(b)), step):
        test.update(a[i:i + step], b[i:i + step])
    v = np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b)
    if v > 0:
        want = mixture_likelihood_ratio(float(np.mean(b) - np.mean(a)), float(v), 0.1)
        assert test.likelihood_ratio == pytest.approx(want, rel=1e-9)
    assert test.p_value <= 1.0 / max(test.likelihood_ratio, 1.0) + 1e-12


def test_peeking_keeps_the_error_rate() -> None:
    """A/A experiments looked at 40 times each: the mixture SPRT rejects at most about
    alpha of them, a z-test looked at as often rejects far more."""
    rng = np.random.default_rng(12)
    runs, looks, batch, alpha = 300, 40, 50, 0.05
    sprt_rejections = naive_rejections = 0
    for _ in range(runs):
        test = MixtureSPRT(alpha=alpha, tau=0.05)
        naive = False
        for _ in range(looks):
            test.update(rng.binomial(1, 0.2, batch), rng.binomial(1, 0.2, batch))
            v = test.variance
            if not math.isnan(v) and v > 0 and abs(test.estimate) / math.sqrt(v) > 1.96:
                naive = True
        sprt_rejections += test.rejected
        naive_rejections += naive
    assert sprt_rejections / runs <= alpha + 0.02
    assert naive_rejections / runs > 2 * alpha


def _experiment(rate_a: float, rate_b: float, n: int = 6_000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    split = Split({"champion": 1, "challenger": 1}, salt="exp-1")
    entities = [f"u{i}" for i in rng.integers(0, 2_000, size=n)]
    arms = assign(entities, split)
    rate = np.where(np.array(arms) == "champion", rate_a, rate_b)
    y = rng.binomial(1, rate).astype(float)
    scores = np.clip(rate + rng.normal(scale=0.05, size=n), 0.01, 0.99)
    t = np.arange(n, dtype=np.int64) * 1_000_000
    return pa.table({
        "request_id": [f"r{i}" for i in range(n)], "entity": entities, "arm": arms,
        "served": [True] * n, "version": [1 if a == "champion" else 2 for a in arms],
        "score": scores, "label": y, "prediction_time": t, "label_time": t + 5_000_000})


def test_a_better_treatment_wins_and_the_report_shows_the_path() -> None:
    result = ab_test(_experiment(0.10, 0.16), tau=0.05)
    assert result.decision == "treatment"
    assert result.low > 0
    assert result.treatment.outcome > result.control.outcome
    assert result.crossed_entities == 0  # the split is sticky
    assert result.control.requests + result.treatment.requests == 6_000
    page = result.report().to_html()
    assert page.count("<svg") == 2
    assert "Decision: treatment" in page


def test_no_difference_and_a_model_metric_outcome() -> None:
    same = ab_test(_experiment(0.2, 0.2, seed=3), max_samples=2_500)
    assert same.decision in ("no difference", "continue")
    loss = ab_test(_experiment(0.2, 0.2, seed=3), outcome="log_loss")
    assert loss.outcome == "log_loss"
    assert not math.isnan(loss.estimate)


def test_a_changed_split_shows_as_crossed_entities() -> None:
    table = _experiment(0.1, 0.1, n=200)
    arms = table.column("arm").to_pylist()
    arms[0] = "challenger" if arms[0] == "champion" else "champion"
    entity = table.column("entity")[0].as_py()
    first = [a for a, e in zip(table.column("arm").to_pylist(), table.column("entity").to_pylist(),
                               strict=True) if e == entity]
    table = table.set_column(table.column_names.index("arm"), "arm", pa.array(arms))
    result = ab_test(table)
    assert result.crossed_entities == (1 if len(first) > 1 else 0)


def test_bad_input() -> None:
    table = _experiment(0.1, 0.1, n=100)
    with pytest.raises(EvaluationError, match="'c9'"):
        ab_test(table, treatment="c9")
    with pytest.raises(ValidationError, match="outcome"):
        ab_test(table, outcome="roc_auc")
    with pytest.raises(ValidationError, match="alpha"):
        MixtureSPRT(alpha=1.5)
    with pytest.raises(ValidationError, match="label_time"):
        ab_test(table.drop_columns(["label_time"]))


@given(st.lists(st.text(min_size=1, max_size=8), max_size=20))
def test_assignment_is_the_serving_route(entities: list[str]) -> None:
    split = Split({"a": 3, "b": 1}, salt="s")
    assert assign(entities, split) == [split.choose(e).arm for e in entities]
