"""The Elec2 demo's scorecard: each strategy judged on its own logged predictions.

Everything here is read back from the log and the model store after the run, so it is
what the system recorded, not what the demo believed: the training examples of each
arm (a prediction made before its label was known, with that label) give the
prequential metrics; the alias history gives the versions over time; the trainers'
cost accounting gives the compute.

The *no-change* baseline predicts the previous row's label (the last known one), the
reference every Elec2 result is compared with: ``kappa_temporal`` is the share of the
baseline's errors a strategy avoids (``1 - err / err_no_change``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.labels import TRAINING_EXAMPLES_TOPIC
from headwater.learning import Cost
from headwater.log import Log
from headwater.models.metrics import accuracy, log_loss, roc_auc
from headwater.registry import ModelRegistry
from headwater.reports import Report

__all__ = ["REFERENCES", "Scores", "StrategyScore", "build_report", "score_strategies"]

DAY: Final = 86_400_000_000
#: Published results on Elec2 (prequential, whole stream), for the report.
#: One strategy's predictions in time order: when, label, score.
_Record = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]
REFERENCES: Final = {"MOA ARF (100 trees) accuracy": 0.9005, "River ARF ROC AUC": 0.952,
                     "no-change accuracy": 0.8533}


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
    table = pa.Table.from_batches([f.batch for f in log.replay(topic)],
                                  schema=log.topic(topic).schema.stored_schema())
    return table.select(["arm", "label", "score", "prediction_time"])


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
    if len(y) < 2:
        return float("nan")
    errors = float(np.mean((scores[1:] > 0.5) != (y[1:] > 0.5)))
    baseline = float(np.mean(y[1:] != y[:-1]))
    return float("nan") if baseline == 0 else 1.0 - errors / baseline


def _rolling(when: npt.NDArray[np.int64], y: npt.NDArray[np.float64],
             s: npt.NDArray[np.float64], window: int, step: int
             ) -> tuple[list[float], list[float], list[float]]:
    days, acc, auc = [], [], []
    for hi in range(window, len(y) + 1, step):
        lo = hi - window
        days.append((int(when[hi - 1]) - int(when[0])) / DAY)
        acc.append(accuracy(y[lo:hi], s[lo:hi]))
        auc.append(roc_auc(y[lo:hi], s[lo:hi]))
    return days, acc, auc


def build_report(scores: Scores, registry: ModelRegistry, model: str, *, rows: int,
                 wall_s: float, window: int = 48 * 28, step: int = 48 * 7) -> Report:
    """The demo's report: the table, the targets, rolling quality, versions, lineage."""
    report = Report("Headwater demo: Elec2 as a live stream")
    report.text(
        f"{rows:,} half-hour rows replayed through the log, the feature engine, the "
        "prediction service, the label joiner and four trainers in "
        f"{wall_s:.0f} s. Every strategy answered the same requests (one served, three "
        "in the shadow); each is scored on its own logged predictions from the eighth "
        "day on (prequential: every prediction was made before its label was known).")
    report.section("Quality and cost")
    table_rows: list[list[object]] = []
    for s in scores.strategies:
        table_rows.append([s.name, s.examples, round(s.accuracy, 4), round(s.auc, 4),
                           round(s.log_loss, 4), round(s.kappa_temporal, 4), s.versions,
                           s.rejected, s.cost.rows, round(s.cost.cpu_s, 2)])
    table_rows.append(["no change", scores.strategies[0].examples if scores.strategies else 0,
                       round(scores.no_change_accuracy, 4), round(scores.no_change_auc, 4),
                       None, 0.0, 0, 0, 0, 0.0])
    report.table(["strategy", "predictions", "accuracy", "ROC AUC", "log loss",
                  "kappa temporal", "versions", "rejected", "rows learnt", "CPU s"],
                 table_rows)  # type: ignore[arg-type]
    continual = next((s for s in scores.strategies if s.name == "continual"), None)
    if continual is not None:
        acc_ok = continual.accuracy > REFERENCES["MOA ARF (100 trees) accuracy"]
        auc_ok = continual.auc > REFERENCES["River ARF ROC AUC"]
        report.text(f"Continual learning: accuracy {continual.accuracy:.4f} against 0.9005 "
                    f"(MOA's Adaptive Random Forest, 100 trees) — "
                    f"{'above' if acc_ok else 'below'}; ROC AUC {continual.auc:.4f} against "
                    f"0.952 (River's ARF) — {'above' if auc_ok else 'below'}; the no-change "
                    f"baseline scores {scores.no_change_accuracy:.4f}.",
                    tone="good" if acc_ok and auc_ok else "bad")
    report.section("Quality over time")
    longest = max((len(y) for _, y, _ in scores.series.values()), default=0)
    window = max(48, min(window, longest // 4))  # short runs: still a few points
    step = max(1, min(step, window // 4))
    acc_series, auc_series = {}, {}
    for name, (when, y, scored) in scores.series.items():
        days, acc, auc = _rolling(when, y, scored, window, step)
        acc_series[name] = (days, acc)
        auc_series[name] = (days, auc)
    report.line_plot(acc_series, title=f"Accuracy over the last {window / 48:g} days",
                     xlabel="days since the eighth day", ylabel="accuracy",
                     hlines={"no change (whole stream)": scores.no_change_accuracy})
    report.line_plot(auc_series, title=f"ROC AUC over the last {window / 48:g} days",
                     xlabel="days since the eighth day", ylabel="ROC AUC")
    report.section("Versions over time")
    moves: dict[str, tuple[list[float], list[float]]] = {}
    first = None
    for s in scores.strategies:
        history = registry.history(model, s.name)
        if not history:
            continue
        first = history[0].at if first is None else min(first, history[0].at)
        moves[s.name] = ([(m.at - history[0].at) / DAY for m in history],
                         [float(m.to_version or 0) for m in history])
    report.line_plot(moves, title="The version each alias served", xlabel="days",
                     ylabel="version number")
    report.section("Lineage")
    report.text(_lineage_text(registry, model))
    return report


def _lineage_text(registry: ModelRegistry, model: str, most: int = 12) -> str:
    """The last ``most`` generations of each alias's line of descent."""
    out: list[str] = []
    for alias, number in sorted(registry.aliases(model).items()):
        chain = [registry.get(model, number), *registry.ancestors(model, number, limit=most)]
        parts = [f"v{v.version} ({v.lineage.created_by.trigger})" for v in chain[:most]]
        more = " ← …" if len(chain) > most else ""
        out.append(f"{alias}: " + " ← ".join(parts) + more)
    return "\n".join(out)
