"""Each routing arm judged on its own logged predictions, with what its trainer spent.

The training-examples topic holds every scored prediction joined with its label, one row
per arm (served or shadow): an arm's rows in prediction-time order are its prequential
record — each prediction was made before its label was known. :func:`score_strategies`
turns them into accuracy, exact ROC AUC, log loss and kappa-temporal, next to the
no-change baseline (predict the previous label), the versions the arm's trainer made
(from the model store) and what they cost. ``headwater report`` and the demos' scorecards
read it. :func:`score_on_arrival` gives the reference a system is judged against: the
same model and features, learning each label the moment it arrives, in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ValidationError
from headwater.evaluation.examples import Examples
from headwater.evaluation.metrics import kappa_temporal
from headwater.evaluation.prequential import Learner, prequential
from headwater.labels import TRAINING_EXAMPLES_TOPIC
from headwater.log import Log
from headwater.models.metrics import accuracy, log_loss, roc_auc
from headwater.registry import ModelRegistry

__all__ = ["Cost", "Record", "Scores", "StrategyScore", "on_arrival", "score_on_arrival",
           "score_strategies"]

#: One arm's predictions in time order: when, label, score.
Record = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]


@dataclass
class Cost:
    """Rows learnt and the CPU and wall seconds spent learning them (a trainer of
    :mod:`headwater.learning` counts them, and records them in each version's metrics)."""

    rows: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def add(self, other: Cost) -> None:
        self.rows += other.rows
        self.cpu_s += other.cpu_s
        self.wall_s += other.wall_s


@dataclass(frozen=True)
class StrategyScore:
    """One strategy's prequential record and what it cost."""

    name: str
    examples: int
    accuracy: float
    auc: float
    log_loss: float
    kappa_temporal: float
    versions: int
    rejected: int
    cost: Cost


@dataclass(frozen=True)
class Scores:
    """Every strategy's score from ``start`` (µs) on, and the no-change baseline's."""

    start: int
    strategies: list[StrategyScore]
    no_change_accuracy: float
    no_change_auc: float
    series_time: npt.NDArray[np.int64]
    series: dict[str, Record]


def _arm_rows(log: Log, topic: str) -> pa.Table:
    return log.read_table(topic).select(["arm", "label", "score", "prediction_time"])


def score_strategies(log: Log, registry: ModelRegistry, model: str, strategies: list[str],
                     costs: dict[str, Cost], *, start: int,
                     topic: str = TRAINING_EXAMPLES_TOPIC) -> Scores:
    """Score each strategy (an arm and alias of ``model``) on its predictions made at or
    after ``start``."""
    table = _arm_rows(log, topic)
    table = table.filter(pc.greater_equal(table.column("prediction_time").cast(pa.int64()),
                                          start))
    versions = registry.versions(model)
    out: list[StrategyScore] = []
    series: dict[str, Record] = {}
    baseline_y: npt.NDArray[np.float64] | None = None
    times: npt.NDArray[np.int64] = np.zeros(0, np.int64)
    for name in strategies:
        rows = table.filter(pc.equal(table.column("arm"), name))
        when = rows.column("prediction_time").cast(pa.int64()).to_numpy()
        order = np.argsort(when, kind="stable")
        when = when[order]
        y = rows.column("label").to_numpy()[order]
        s = rows.column("score").to_numpy()[order]
        if baseline_y is None:
            baseline_y, times = y, when
        made = [v for v in versions if v.lineage.created_by.trainer == name]
        out.append(StrategyScore(
            name, len(y), accuracy(y, s), roc_auc(y, s), log_loss(y, s),
            _kappa_temporal(y, s), len(made), sum(v.status == "rejected" for v in made),
            costs.get(name, Cost())))
        series[name] = (when, y, s)
    y0 = baseline_y if baseline_y is not None else np.zeros(0)
    previous = np.r_[np.nan, y0[:-1]]
    no_change = previous[1:]
    return Scores(start, out, accuracy(y0[1:], no_change), roc_auc(y0[1:], no_change),
                  times, series)


def _kappa_temporal(y: npt.NDArray[np.float64], scores: npt.NDArray[np.float64]) -> float:
    """Kappa-temporal from the second prediction on (the first has no previous label)."""
    if len(y) < 2:
        return float("nan")
    return kappa_temporal(y[1:], scores[1:], previous=float(y[0]))


def on_arrival(model: Learner, examples: Examples) -> npt.NDArray[np.float64]:
    """Each example's score from ``model`` learning every label the moment it arrives,
    in memory. Labels are learnt in the order they became known (ties in prediction
    order); a label known at ``t`` is learnt before the predictions made at ``t`` (a
    label and a request at the same instant: the label came first), except a label
    known when its own prediction was made, which is learnt just after it.

    When every label arrives after its own prediction and no later than the next one,
    that is test-then-train in prediction order, which
    :func:`~headwater.evaluation.prequential.prequential` runs in one pass. Scores in
    ``examples``' order; the model is updated in place.
    """
    ex = examples.sorted()
    known, predicted = ex.label_time, ex.prediction_time
    in_turn = len(ex) < 2 or bool((np.diff(predicted) > 0).all()
                                  and (known[:-1] <= predicted[1:]).all())
    if in_turn:
        arrived = Examples(ex.features, ex.y, prediction_time=predicted)
    else:  # on a doubled clock, a delayed label lands just before the instant it is known
        arrived = Examples(ex.features, ex.y, prediction_time=2 * predicted,
                           label_time=np.where(known > predicted, 2 * known - 1, 2 * known))
    scores = prequential(model, arrived, metrics=("accuracy",)).scores
    out = np.empty(len(examples))
    out[np.argsort(examples.prediction_time, kind="stable")] = scores
    return out


def score_on_arrival(log: Log, make_model: Callable[[], Learner], arm: str, *, start: int,
                     name: str = "ideal", topic: str = TRAINING_EXAMPLES_TOPIC
                     ) -> tuple[StrategyScore, Record]:
    """The reference for ``arm``: a fresh ``make_model()`` learning each of the arm's
    labels the moment it arrives, in memory (:func:`on_arrival`), on the features the
    arm was served; scored like :func:`score_strategies` on the predictions made at or
    after ``start``, with the CPU and wall seconds its learning took."""
    table = pa.Table.from_batches([f.batch for f in log.replay(topic)],
                                  schema=log.topic(topic).schema.stored_schema())
    rows = table.filter(pc.equal(table.column("arm"), arm))
    if not rows.num_rows:
        raise ValidationError("arm", f"no training examples of arm {arm!r} in {topic}")
    examples = Examples.from_training_examples(rows).sorted()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    scores = on_arrival(make_model(), examples)
    cost = Cost(len(examples), time.process_time() - cpu0, time.perf_counter() - wall0)
    keep = examples.prediction_time >= start
    when, y, s = examples.prediction_time[keep], examples.y[keep], scores[keep]
    score = StrategyScore(name, len(y), accuracy(y, s), roc_auc(y, s), log_loss(y, s),
                          _kappa_temporal(y, s), 0, 0, cost)
    return score, (when, y, s)
