"""Backtests: train on one period of the log, test on the next, with nothing from the future.

A :class:`Fold` trains on the examples predicted in ``[train_start, test_start)``
whose labels were known before ``test_start``, and tests on those predicted in
``[test_start, test_end)``. :func:`walk_forward` lays folds along a period — rolling
(a training window of fixed length) or expanding (from the start) — and
:func:`backtest` trains a fresh model per fold and measures it on the test period,
optionally letting it keep learning there as labels arrive (prequential, with their
delay).

Features come from the log as they were known: :func:`examples_at` joins each label
row with its entity's features *as known at* its prediction time
(:func:`headwater.features.point_in_time`, ``mode="known_at"``: exactly what serving
could have seen). Leaks are checked, not trusted away: :func:`check_fold` refuses a
training label not known before the test period and a test example outside it, and
:func:`check_features` recomputes a frame's features point-in-time and names the first
value that differs (a value from the future, or from the latest snapshot).

>>> import numpy as np
>>> [(f.train_start, f.test_start, f.test_end) for f in walk_forward(0, 100, train=40, test=20)]
[(0, 40, 60), (20, 60, 80), (40, 80, 100)]
>>> [f.train_start for f in walk_forward(0, 100, train=40, test=30, expanding=True)]
[0, 0]
>>> train = Examples({"x": np.zeros(2)}, np.array([0, 1]), prediction_time=np.array([1, 2]),
...                  label_time=np.array([5, 50]))
>>> try:
...     check_fold(train, train.take(np.array([], int)), Fold(0, 40, 60))
... except LeakageError as leak:
...     print(leak.field, "-", leak.reason)  # doctest: +NORMALIZE_WHITESPACE
train.label_time[1] - the label is known at 1970-01-01T00:00:00.000050+00:00, not before
the test period starts at 1970-01-01T00:00:00.000040+00:00
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import EvaluationError, LeakageError, ValidationError
from headwater.evaluation.examples import Examples, int64_column
from headwater.evaluation.metrics import make_metric
from headwater.evaluation.prequential import Learner, prequential
from headwater.features.definitions import Feature
from headwater.features.pointintime import Mode, Queries, Sources, point_in_time
from headwater.reports import Report
from headwater.time import describe_instant, format_duration, format_micros, from_micros

__all__ = [
    "BacktestResult",
    "Fold",
    "FoldResult",
    "backtest",
    "check_features",
    "check_fold",
    "examples_at",
    "walk_forward",
]

_DEFAULT_METRICS: Final = ("accuracy", "log_loss", "roc_auc")


@dataclass(frozen=True)
class Fold:
    """Train on predictions in ``[train_start, test_start)``, test on
    ``[test_start, test_end)`` (µs)."""

    train_start: int
    test_start: int
    test_end: int

    def __post_init__(self) -> None:
        if not self.train_start < self.test_start < self.test_end:
            raise ValidationError("fold", "expected train_start < test_start < test_end, got "
                                  f"{describe_instant(self.train_start)}, "
                                  f"{describe_instant(self.test_start)}, "
                                  f"{describe_instant(self.test_end)}")


def walk_forward(start: int, end: int, *, train: int, test: int, step: int | None = None,
                 expanding: bool = False) -> list[Fold]:
    """Folds over ``[start, end)``: a training window of ``train`` µs (from ``start``
    when ``expanding``), then ``test`` µs of test; the next fold starts ``step`` (default
    ``test``) later. Only whole folds are kept."""
    for name, value in (("train", train), ("test", test), ("step", step or test)):
        if not isinstance(value, int) or value <= 0:
            shown = format_duration(value) if type(value) is int else repr(value)
            raise ValidationError(name, f"expected a positive duration, got {shown}")
    folds = []
    at = start + train
    while at + test <= end:
        folds.append(Fold(start if expanding else at - train, at, at + test))
        at += step or test
    if not folds:
        raise EvaluationError(
            f"no whole fold fits: {format_duration(train)} + {format_duration(test)} needed, "
            f"the data spans {format_duration(max(end - start, 0), exact=False)} "
            f"({describe_instant(start)} .. {describe_instant(end)})")
    return folds


def check_fold(train: Examples, test: Examples, fold: Fold) -> None:
    """Refuse a fold that leaks: a training example predicted outside its period or whose
    label was not known before the test period, a test example outside the test period
    (every example's label is after its prediction, :class:`Examples` checks that)."""
    for field, rows, why in (
        ("train.prediction_time", (train.prediction_time < fold.train_start)
         | (train.prediction_time >= fold.test_start),
         f"outside the training period [{describe_instant(fold.train_start)}, "
         f"{describe_instant(fold.test_start)})"),
        ("train.label_time", train.label_time >= fold.test_start,
         f"not before the test period starts at {describe_instant(fold.test_start)}"),
        ("test.prediction_time", (test.prediction_time < fold.test_start)
         | (test.prediction_time >= fold.test_end),
         f"outside the test period [{describe_instant(fold.test_start)}, "
         f"{describe_instant(fold.test_end)})"),
    ):
        bad = np.flatnonzero(rows)
        if len(bad):
            i = int(bad[0])
            value = (train.label_time if field == "train.label_time"
                     else train.prediction_time if field.startswith("train")
                     else test.prediction_time)[i]
            what = "the label is known at" if field.endswith("label_time") else "predicted at"
            raise LeakageError(f"{field}[{i}]", f"{what} {describe_instant(int(value))}, {why}")


def examples_at(labels: pa.Table, features: Sequence[Feature], source: Sources, *,
                entity: str = "entity", label: str = "label",
                prediction_time: str = "prediction_time", label_time: str = "label_time",
                mode: Mode = "known_at", missing: float = 0.0) -> Examples:
    """Label rows joined with their entity's features at their prediction time.

    ``mode="known_at"`` (the default) gives what serving could see; a feature with no
    value is ``missing`` (models refuse NaN)."""
    times = int64_column(labels, prediction_time)
    frame = point_in_time(list(features), source,
                          Queries(labels.column(entity).combine_chunks(), times), mode=mode)
    columns = {name: np.asarray(pc.fill_null(frame.column(name), missing), dtype=np.float64)
               for name in frame.column_names}
    y = np.asarray(labels.column(label).cast(pa.float64()), dtype=np.float64)
    return Examples(columns, y, prediction_time=times,
                    label_time=int64_column(labels, label_time))


def check_features(examples: Examples, features: Sequence[Feature], source: Sources,
                   entities: pa.Array, *, missing: float = 0.0, tolerance: float = 1e-9) -> None:
    """Recompute each feature as known at each example's prediction time and refuse the
    first value that differs: a feature from after the prediction (or from a snapshot
    taken later) is a leak."""
    truth = examples_at(
        pa.table({"entity": entities, "label": examples.y,
                  "prediction_time": examples.prediction_time,
                  "label_time": examples.label_time}),
        features, source, missing=missing)
    for name, want in truth.features.items():
        if name not in examples.features:
            raise ValidationError(name, "the examples have no such feature column")
        got = np.asarray(examples.features[name], np.float64)
        bad = np.flatnonzero(~np.isclose(got, want, rtol=0.0, atol=tolerance))
        if len(bad):
            i = int(bad[0])
            raise LeakageError(f"{name}[{i}]", f"is {float(got[i])!r} but was "
                               f"{float(want[i])!r} as known at its prediction time "
                               f"{describe_instant(int(examples.prediction_time[i]))}")


@dataclass(frozen=True)
class FoldResult:
    """One fold: sizes, labels left out (not known in time), and the test metrics."""

    fold: Fold
    train: int
    test: int
    unlabelled: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class BacktestResult:
    """Every fold's result, and the metrics pooled over all test predictions."""

    folds: list[FoldResult]
    pooled: dict[str, float]
    update: bool

    def report(self, report: Report | None = None, *, title: str = "Backtest",
               model: str = "model") -> Report:
        """Add (or make) a report: one row per fold, pooled metrics, metrics by fold."""
        report = report or Report(title)
        report.section(f"Backtest: {model}")
        how = ("keeps learning in the test period as labels arrive" if self.update
               else "is frozen in the test period")
        report.text(f"Walk-forward over {len(self.folds)} folds: a fresh model learns each "
                    "training period (labels known before the test period only) and "
                    f"{how}. Features are as known at each prediction time.")
        names = list(self.pooled)
        report.table(["fold", "train from", "test from", "test to", "train", "test",
                      "unlabelled", *names],
                     [[i + 1, _short(r.fold.train_start), _short(r.fold.test_start),
                       _short(r.fold.test_end), r.train, r.test, r.unlabelled,
                       *(r.metrics[n] for n in names)] for i, r in enumerate(self.folds)])
        report.table(["metric", "pooled over the test periods"],
                     [[n, v] for n, v in self.pooled.items()])
        x = [float(i + 1) for i in range(len(self.folds))]
        report.line_plot({n: (x, [r.metrics[n] for r in self.folds]) for n in names},
                         title=f"{model}: test metrics by fold", xlabel="fold", ylabel="metric")
        return report


def _concat(first: Examples, second: Examples) -> Examples:
    return Examples({c: np.concatenate([v, second.features[c]])
                     for c, v in first.features.items()},
                    np.concatenate([first.y, second.y]),
                    prediction_time=np.concatenate([first.prediction_time,
                                                    second.prediction_time]),
                    label_time=np.concatenate([first.label_time, second.label_time]))


def _short(us: int) -> str:
    return from_micros(us).strftime("%Y-%m-%d %H:%M")


def backtest(make_model: Callable[[], Learner], examples: Examples, folds: Sequence[Fold], *,
             metrics: Sequence[str] = _DEFAULT_METRICS, update: bool = False) -> BacktestResult:
    """Train a fresh ``make_model()`` per fold and test it (see the module docstring).

    ``update=True`` lets the model learn in the test period, each label at its time
    (including the labels of training examples that arrive then)."""
    if not folds:
        raise ValidationError("folds", "no fold to run")
    for name in metrics:
        make_metric(name)
    results = []
    pooled = {name: make_metric(name) for name in metrics}
    for fold in folds:
        period = examples.between(fold.train_start, fold.test_start).sorted()
        known = period.label_time < fold.test_start
        train = period.take(known)
        test = examples.between(fold.test_start, fold.test_end).sorted()
        check_fold(train, test, fold)
        if not len(train) or not len(test):
            raise EvaluationError(f"fold from {format_micros(fold.train_start)}: "
                                  f"{len(train)} training and {len(test)} test examples")
        model = make_model()
        order = np.lexsort((np.arange(len(train)), train.label_time))
        model.learn({c: v[order] for c, v in train.features.items()}, train.y[order])
        if update:  # training rows whose labels arrive in the test period are learnt then
            late = period.take(~known)
            stream = _concat(late, test)
            scores = prequential(model, stream, metrics=(metrics[0],)).scores[len(late):]
        else:
            scores = model.predict(test.features)
        values = {}
        for name in metrics:
            m = make_metric(name)
            m.update(test.y, scores)
            values[name] = m.value
            pooled[name].update(test.y, scores)
        results.append(FoldResult(fold, len(train), len(test), int((~known).sum()), values))
    return BacktestResult(results, {n: m.value for n, m in pooled.items()}, update)


