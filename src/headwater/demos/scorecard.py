"""The Elec2 demo's scorecard: each strategy judged on its own logged predictions.

Everything here is read back from the log and the model store after the run, so it is
what the system recorded, not what the demo believed: the training examples of each
arm (a prediction made before its label was known, with that label) give the
prequential metrics; the alias history gives the versions over time; the trainers'
cost accounting gives the compute.

The scores come from :func:`headwater.evaluation.arms.score_strategies`; the *no-change*
baseline predicts the previous row's label (the last known one), the reference every
Elec2 result is compared with, shown over time next to the strategies. An ``ideal``
row (:func:`headwater.evaluation.arms.score_on_arrival`: the same model and features
learning each label the moment it arrives, in memory) is the reference the system is
judged against.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from headwater.evaluation.arms import Record, Scores
from headwater.models.metrics import accuracy, roc_auc
from headwater.registry import ModelRegistry
from headwater.reports import Report

__all__ = ["REFERENCES", "build_report"]

DAY: Final = 86_400_000_000
#: Published results on Elec2 (prequential, whole stream), for the report.
REFERENCES: Final = {"MOA ARF (100 trees) accuracy": 0.9005, "River ARF ROC AUC": 0.952,
                     "no-change accuracy": 0.8533}


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
    ideal = next((s for s in scores.strategies if s.name == "ideal"), None)
    if continual is not None and ideal is not None:
        report.text(f"The ideal — the same model and features learning each label the moment "
                    f"it arrives, in memory — scores accuracy {ideal.accuracy:.4f} and ROC "
                    f"AUC {ideal.auc:.4f}: continual learning through the system is "
                    f"{ideal.accuracy - continual.accuracy:+.4f} and "
                    f"{ideal.auc - continual.auc:+.4f} from it.")
    report.section("Quality over time")
    longest = max((len(y) for _, y, _ in scores.series.values()), default=0)
    window = max(48, min(window, longest // 4))  # short runs: still a few points
    step = max(1, min(step, window // 4))
    acc_series, auc_series = {}, {}
    for name, (when, y, scored) in {**scores.series, **_no_change(scores)}.items():
        days, acc, auc = _rolling(when, y, scored, window, step)
        acc_series[name] = (days, acc)
        auc_series[name] = (days, auc)
    report.line_plot(acc_series, title=f"Accuracy over the last {window / 48:g} days",
                     xlabel="days since the eighth day", ylabel="accuracy")
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


def _no_change(scores: Scores) -> dict[str, Record]:
    """The no-change baseline as a series: each label scored with the one before."""
    first = next(iter(scores.series.values()), None)
    if first is None or len(first[1]) < 2:
        return {}
    when, y, _ = first
    return {"no change": (when[1:], y[1:], y[:-1])}


def _lineage_text(registry: ModelRegistry, model: str, most: int = 12) -> str:
    """The last ``most`` generations of each alias's line of descent."""
    out: list[str] = []
    for alias, number in sorted(registry.aliases(model).items()):
        chain = [registry.get(model, number), *registry.ancestors(model, number, limit=most)]
        parts = [f"v{v.version} ({v.lineage.created_by.trigger})" for v in chain[:most]]
        more = " ← …" if len(chain) > most else ""
        out.append(f"{alias}: " + " ← ".join(parts) + more)
    return "\n".join(out)
