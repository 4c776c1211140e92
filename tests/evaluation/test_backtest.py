"""Backtests: folds, what each fold learns, and leaks planted to be caught."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import EvaluationError, LeakageError, ValidationError
from headwater.evaluation.backtest import (
    Fold,
    backtest,
    check_features,
    check_fold,
    examples_at,
    walk_forward,
)
from headwater.evaluation.examples import Examples
from headwater.features.definitions import Entity, Feature, StreamSource
from headwater.features.pointintime import Sources
from headwater.features.windows import Lifetime
from headwater.models import LogisticRegression
from headwater.time import parse_duration
from tests.evaluation.models import Recorder

USER = Entity("user", key="user")
SPEND = Feature.of("spend", USER, StreamSource.of("payments"), "sum", column="amount",
                   window=Lifetime())
COUNT = Feature.of("payments", USER, StreamSource.of("payments"), "count", window=Lifetime())


@given(st.integers(0, 50), st.integers(1, 200), st.integers(1, 30), st.integers(1, 30),
       st.one_of(st.none(), st.integers(1, 30)), st.booleans())
def test_walk_forward_folds_tile_the_period(start: int, length: int, train: int, test: int,
                                            step: int | None, expanding: bool) -> None:
    try:
        folds = walk_forward(start, start + length, train=train, test=test, step=step,
                             expanding=expanding)
    except EvaluationError:
        assert train + test > length
        return
    for i, f in enumerate(folds):
        assert f.test_end - f.test_start == test
        assert f.train_start == (start if expanding else f.test_start - train)
        assert f.test_end <= start + length
        if i:
            assert f.test_start - folds[i - 1].test_start == (step or test)


@given(st.lists(st.tuples(st.integers(0, 99), st.integers(0, 40)), min_size=1, max_size=60),
       st.booleans())
def test_each_fold_learns_exactly_the_labels_known_before_its_test(
        rows: list[tuple[int, int]], update: bool) -> None:
    t = np.array([r[0] for r in rows])
    ex = Examples({"id": np.arange(len(rows), dtype=np.float64)}, np.arange(len(rows)) % 2,
                  prediction_time=t, label_time=t + np.array([r[1] for r in rows]))
    models: list[Recorder] = []

    def make() -> Recorder:
        models.append(Recorder())
        return models[-1]

    folds = [Fold(0, 50, 75), Fold(25, 75, 100)]
    try:
        result = backtest(make, ex, folds, metrics=("accuracy",), update=update)
    except EvaluationError:
        return  # a fold without training or test examples
    for fold, model, fold_result in zip(folds, models, result.folds, strict=True):
        start, end = fold.train_start, fold.test_start
        want = [i for i in range(len(rows)) if start <= t[i] < end and ex.label_time[i] < end]
        assert sorted(model.learnt[:len(want)]) == want
        if update:  # then every label of the period and of the test, each when known
            tested = [i for i in range(len(rows)) if end <= t[i] < fold.test_end]
            late = [i for i in range(len(rows)) if start <= t[i] < end and i not in want]
            assert sorted(model.learnt[len(want):]) == sorted(late + tested)
        else:
            assert len(model.learnt) == len(want)
        in_period = ((t >= fold.train_start) & (t < fold.test_start)).sum()
        assert fold_result.unlabelled == in_period - len(want)
        assert fold_result.test == ((t >= fold.test_start) & (t < fold.test_end)).sum()


def test_a_planted_label_leak_is_caught() -> None:
    fold = Fold(0, 100, 200)
    train = Examples({"x": np.zeros(3)}, np.array([0, 1, 0]), prediction_time=np.array([1, 2, 3]),
                     label_time=np.array([10, 20, 150]))  # the third is known in the test period
    test = Examples({"x": np.zeros(1)}, np.array([1]), prediction_time=np.array([120]))
    with pytest.raises(LeakageError, match=r"train\.label_time\[2\]") as caught:
        check_fold(train, test, fold)
    assert caught.value.field == "train.label_time[2]"
    with pytest.raises(LeakageError, match=r"test\.prediction_time\[0\]"):
        check_fold(train.take(np.array([0, 1])), test, Fold(0, 100, 110))
    with pytest.raises(LeakageError, match=r"label_time\[0\]"):  # a label before its prediction
        Examples({"x": np.zeros(1)}, np.array([1]), prediction_time=np.array([5]),
                 label_time=np.array([4]))


def _payments() -> Sources:
    # user a pays at 10 (known at 10) and at 40 (event time 40, appended late at 90)
    events = pa.table({"user": ["a", "b", "a", "b"], "amount": [5.0, 7.0, 100.0, 1.0],
                       "ts": [10, 20, 40, 60], "_append_time": [10, 20, 90, 60],
                       "_offset": [0, 1, 2, 3]})
    return Sources(events, entity="user", event_time="ts")


def _labels() -> pa.Table:
    return pa.table({"entity": ["a", "b", "a"], "prediction_time": [50, 70, 95],
                     "label": [1.0, 0.0, 1.0], "label_time": [60, 80, 99]})


def test_examples_are_features_as_known_at_prediction_time() -> None:
    ex = examples_at(_labels(), [SPEND, COUNT], _payments())
    assert ex.features["spend"].tolist() == [5.0, 8.0, 105.0]  # 100 was not known at 50
    assert ex.features["payments"].tolist() == [1.0, 2.0, 2.0]
    check_features(ex, [SPEND, COUNT], _payments(), pa.array(["a", "b", "a"]))


def test_a_planted_feature_leak_is_caught() -> None:
    labels = _labels()
    # as of event time, the late payment shows at 50 though it was appended at 90
    leaky = examples_at(labels, [SPEND], _payments(), mode="event_time")
    with pytest.raises(LeakageError, match=r"spend\[0\]"):
        check_features(leaky, [SPEND], _payments(), labels.column("entity").combine_chunks())
    # the latest snapshot joined to every row: the classic leak
    late = labels.set_column(1, "prediction_time", pa.array([99, 99, 99]))
    snapshot = examples_at(late.set_column(3, "label_time", pa.array([99, 99, 99])), [SPEND],
                           _payments())
    frame = Examples(snapshot.features, snapshot.y,
                     prediction_time=np.asarray(labels.column("prediction_time")),
                     label_time=np.asarray(labels.column("label_time")))
    with pytest.raises(LeakageError, match=r"spend\[0\]: is 105.0 but was 5.0"):
        check_features(frame, [SPEND], _payments(), labels.column("entity").combine_chunks())


def test_a_real_backtest_and_its_report() -> None:
    rng = np.random.default_rng(3)
    n = 4_000
    x = rng.normal(size=n)
    t = np.sort(rng.integers(0, 1_000_000, size=n))
    ex = Examples({"x": x}, (x + rng.normal(scale=0.3, size=n) > 0).astype(int),
                  prediction_time=t, label_time=t + 1_000)
    folds = walk_forward(0, 1_000_000, train=400_000, test=200_000)
    for update in (False, True):
        result = backtest(LogisticRegression, ex, folds, update=update)
        assert len(result.folds) == 3
        assert all(r.metrics["roc_auc"] > 0.85 for r in result.folds)
        assert result.pooled["accuracy"] > 0.8
    page = result.report(model="churn").to_html()
    assert "Backtest: churn" in page
    assert page.count("<svg") == 1


def test_bad_folds() -> None:
    with pytest.raises(ValidationError, match="fold"):
        Fold(10, 10, 20)
    with pytest.raises(ValidationError, match="train"):
        walk_forward(0, 10, train=0, test=5)
    with pytest.raises(EvaluationError, match="no whole fold"):
        walk_forward(0, 10, train=8, test=5)
    day = parse_duration("1d")
    with pytest.raises(EvaluationError, match=r"7d \+ 1d needed, the data spans 32ms "
                       r"\(1970-01-01T00:00:00\.000000\+00:00 \.\. "):
        walk_forward(0, 32_417, train=7 * day, test=day)
    with pytest.raises(ValidationError, match="expected a positive duration, got -1h"):
        walk_forward(0, 10, train=-parse_duration("1h"), test=5)
