"""A/B tests: a sticky split by entity, per-arm metrics from joined labels, a safe-to-peek test.

Traffic is split by entity with :class:`~headwater.serving.Split` (a hash of salt and
key: an entity always sees the same arm, in every process). :func:`assign` gives the
arm of each entity the same way, for planning or checking. :func:`ab_test` reads the
served training examples (each request's answer joined with its label), groups them by
arm, measures each arm, and runs a :class:`~headwater.stats.sequential.MixtureSPRT`
over the requests in the order their labels arrived, looking after every ``every``
labels — safe, since its p-value is valid at every look.

The *outcome* compared is the label itself (``"label"``: a conversion rate, higher is
better) or a per-example model metric (``"accuracy"``, ``"log_loss"``, ``"mae"``).
The decision is ``"treatment"`` or ``"control"`` once the test rejects (the better
arm wins), ``"no difference"`` when ``max_samples`` per arm are reached without
rejection, and ``"continue"`` otherwise.

>>> from headwater.serving import Split
>>> assign(["u1", "u2", "u3"], Split({"champion": 1, "challenger": 1}, salt="exp"))
['challenger', 'champion', 'challenger']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import EvaluationError, ValidationError
from headwater.evaluation.examples import int64_column
from headwater.evaluation.intervals import PER_EXAMPLE, per_example
from headwater.evaluation.metrics import higher_is_better, make_metric
from headwater.reports import Report
from headwater.routing.policies import Split
from headwater.stats.sequential import MixtureSPRT

__all__ = ["ABArm", "ABDecision", "ABResult", "ab_test", "assign"]

ABDecision = Literal["treatment", "control", "no difference", "continue"]
F64 = npt.NDArray[np.float64]
_ARM_METRICS: Final = ("accuracy", "log_loss", "roc_auc")


def assign(entities: Iterable[str], split: Split) -> list[str]:
    """The arm of each entity under ``split`` (what serving routes it to)."""
    return [split.choose(str(e)).arm for e in entities]


@dataclass(frozen=True)
class ABArm:
    """One arm: requests, entities, mean outcome and model metrics on its labels."""

    arm: str
    versions: str
    requests: int
    entities: int
    outcome: float
    metrics: dict[str, float]


@dataclass(frozen=True)
class ABResult:
    """The arms, the test's path over time, and the decision with its reason."""

    control: ABArm
    treatment: ABArm
    outcome: str
    alpha: float
    estimate: float
    low: float
    high: float
    p_value: float
    decision: ABDecision
    reason: str
    looks: list[int] = field(default_factory=list)
    path_estimate: list[float] = field(default_factory=list)
    path_low: list[float] = field(default_factory=list)
    path_high: list[float] = field(default_factory=list)
    path_p: list[float] = field(default_factory=list)
    crossed_entities: int = 0

    def report(self, report: Report | None = None, *, title: str = "A/B test") -> Report:
        """Add (or make) a report: the arms, the decision, the test over time."""
        report = report or Report(title)
        report.section(f"A/B: {self.treatment.arm} against {self.control.arm}")
        report.text(f"Outcome: {self.outcome}. Sequential test: mixture SPRT at alpha "
                    f"{self.alpha:g}, looked at after every batch of labels; its p-value and "
                    "confidence sequence stay valid however often they are looked at.")
        names = list(self.control.metrics)
        report.table(["arm", "versions", "requests", "entities", f"mean {self.outcome}",
                      *names],
                     [[s.arm, s.versions, s.requests, s.entities, s.outcome,
                       *(s.metrics[n] for n in names)] for s in (self.control, self.treatment)])
        report.table(["difference (treatment - control)", "low", "high", "p-value (always valid)"],
                     [[self.estimate, self.low, self.high, self.p_value]])
        tone = "" if self.decision in ("continue", "no difference") else "good"
        report.text(f"Decision: {self.decision}. {self.reason}", tone=tone)
        if self.crossed_entities:
            report.text(f"{self.crossed_entities:,} entities were served by both arms: the "
                        "split was not sticky for them (a changed split or salt?).", tone="bad")
        x = [float(n) for n in self.looks]
        report.line_plot({"estimate": (x, self.path_estimate),
                          "low": (x, [_finite(v) for v in self.path_low]),
                          "high": (x, [_finite(v) for v in self.path_high])},
                         title="Difference and its confidence sequence",
                         xlabel="labelled requests", ylabel=f"difference in {self.outcome}",
                         hlines={"no difference": 0.0})
        report.line_plot({"p-value": (x, self.path_p)}, title="Always-valid p-value",
                         xlabel="labelled requests", ylabel="p", hlines={"alpha": self.alpha})
        return report


def _finite(value: float) -> float:
    """Infinite bounds (before the test can start) are not drawn."""
    return value if math.isfinite(value) else math.nan


def _outcomes(outcome: str, y: F64, scores: F64) -> F64:
    if outcome == "label":
        return y
    if outcome not in PER_EXAMPLE:
        raise ValidationError("outcome", f"expected 'label' or one of {', '.join(PER_EXAMPLE)}, "
                              f"got {outcome!r}")
    return per_example(outcome, y, scores)


def _stats(arm: str, rows: pa.Table, y: F64, scores: F64, values: F64,
           metrics: Sequence[str]) -> ABArm:
    measured = {}
    for name in metrics:
        m = make_metric(name)
        m.update(y, scores)
        measured[name] = m.value
    versions = sorted(set(rows.column("version").to_pylist()))
    return ABArm(arm, ", ".join(f"v{v}" for v in versions), len(y),
                    len(set(rows.column("entity").to_pylist())),
                    float(values.mean()) if len(values) else math.nan, measured)


def ab_test(table: pa.Table, *, control: str = "champion", treatment: str = "challenger",
            outcome: str = "label", alpha: float = 0.05, tau: float = 0.05,
            min_samples: int = 30, max_samples: int | None = None, every: int | None = None,
            metrics: Sequence[str] = _ARM_METRICS) -> ABResult:
    """Compare arm ``treatment`` with arm ``control`` on served, labelled requests.

    ``table`` holds training examples (shadow rows are ignored). ``every`` is how many
    labels pass between looks (default: about 100 looks in all)."""
    for name in ("arm", "served", "label", "score", "label_time", "entity", "version"):
        if name not in table.column_names:
            raise ValidationError(name, "training examples need this column")
    served = table.filter(pa.array(np.asarray(table.column("served"), bool)))
    arms = np.asarray(served.column("arm").to_pylist(), dtype=object)
    order = np.argsort(int64_column(served, "label_time"), kind="stable")
    served, arms = served.take(pa.array(order)), arms[order]
    y = np.asarray(served.column("label").cast(pa.float64()), np.float64)
    scores = np.asarray(served.column("score").cast(pa.float64()), np.float64)
    is_a, is_b = arms == control, arms == treatment
    for role, arm, mask in (("control", control, is_a), ("treatment", treatment, is_b)):
        if not mask.any():
            raise EvaluationError(f"the {role} arm {arm!r} has no labelled request; the arms "
                                  f"are {sorted(set(arms.tolist()))}")
    values = _outcomes(outcome, y, scores)
    better_high = True if outcome == "label" else higher_is_better(outcome)
    test = MixtureSPRT(alpha=alpha, tau=tau, min_samples=min_samples)
    both = np.flatnonzero(is_a | is_b)
    step = every or max(1, len(both) // 100)
    looks: list[int] = []
    path: tuple[list[float], list[float], list[float], list[float]] = ([], [], [], [])
    stopped_at: int | None = None
    for start in range(0, len(both), step):
        rows = both[start:start + step]
        test.update(values[rows][is_a[rows]], values[rows][is_b[rows]])
        looks.append(start + len(rows))
        for series, value in zip(path, (test.estimate, test.low, test.high, test.p_value),
                                 strict=True):
            series.append(value)
        if test.rejected and stopped_at is None:
            stopped_at = looks[-1]
        if max_samples is not None and min(test.a.n, test.b.n) >= max_samples:
            break
    entities = served.column("entity").to_pylist()
    seen: dict[str, set[str]] = {}
    for entity, arm in zip(entities, arms.tolist(), strict=True):
        seen.setdefault(entity, set()).add(arm)
    crossed = sum(1 for s in seen.values() if control in s and treatment in s)
    a_stats = _stats(control, served.filter(pa.array(is_a)), y[is_a], scores[is_a],
                     values[is_a], metrics)
    b_stats = _stats(treatment, served.filter(pa.array(is_b)), y[is_b], scores[is_b],
                     values[is_b], metrics)
    decision, reason = _decide(test, better_high, stopped_at, max_samples, outcome)
    return ABResult(a_stats, b_stats, outcome, alpha, test.estimate, test.low, test.high,
                    test.p_value, decision, reason, looks, *path, crossed_entities=crossed)


def _decide(test: MixtureSPRT, better_high: bool, stopped_at: int | None,
            max_samples: int | None, outcome: str) -> tuple[ABDecision, str]:
    if test.rejected:
        treatment_better = (test.estimate > 0) == better_high
        decision: ABDecision = "treatment" if treatment_better else "control"
        return decision, (f"The difference in {outcome} is {test.estimate:+.4g} "
                          f"(confidence sequence [{test.low:.4g}, {test.high:.4g}], p = "
                          f"{test.p_value:.3g} <= {test.alpha:g}), first significant after "
                          f"{stopped_at:,} labelled requests.")
    if max_samples is not None and min(test.a.n, test.b.n) >= max_samples:
        return "no difference", (f"No difference found in {max_samples:,} requests per arm "
                                 f"(p = {test.p_value:.3g}, difference within "
                                 f"[{test.low:.4g}, {test.high:.4g}]).")
    return "continue", (f"Not significant yet (p = {test.p_value:.3g} > {test.alpha:g}) after "
                        f"{test.a.n:,} and {test.b.n:,} labelled requests: keep the split.")
