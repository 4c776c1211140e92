"""Each routing arm judged on its own logged predictions, with what its trainer spent.

The training-examples topic holds every scored prediction joined with its label, one row
per arm (served or shadow): an arm's rows in prediction-time order are its prequential
record — each prediction was made before its label was known. :func:`score_strategies`
turns them into accuracy, exact ROC AUC, log loss and kappa-temporal, next to the
no-change baseline (predict the previous label), the versions the arm's trainer made
(from the model store) and what they cost. ``headwater report`` and the demos' scorecards
read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.evaluation.metrics import kappa_temporal
from headwater.labels import TRAINING_EXAMPLES_TOPIC
from headwater.log import Log
from headwater.models.metrics import accuracy, log_loss, roc_auc
from headwater.registry import ModelRegistry

__all__ = ["Cost", "Scores", "StrategyScore", "score_strategies"]

#: One arm's predictions in time order: when, label, score.
_Record = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]


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
    series: dict[str, _Record]


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
    series: dict[str, _Record] = {}
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
