"""Shadow evaluation: the challenger scored every request the champion answered, unseen.

Under a :class:`~headwater.serving.Shadow` policy every request is scored by the
served arm and by each shadow arm, and the label joiner writes one training example per
scored version (``served`` true for the answer, false for the shadows). :func:`pair`
lines them up by request id; :func:`shadow_compare` says how often the two agree (the
same decision at the threshold, with a Wilson interval) and how each metric differs,
challenger minus champion, with a paired bootstrap or normal-approximation interval
(:mod:`headwater.evaluation.intervals`).

>>> import pyarrow as pa
>>> rows = pa.table({"request_id": ["r1", "r2", "r1", "r2"],
...                  "arm": ["champion"] * 2 + ["challenger"] * 2,
...                  "served": [True, True, False, False], "version": [1, 1, 2, 2],
...                  "score": [0.9, 0.2, 0.8, 0.6], "label": [1.0, 0.0, 1.0, 0.0]})
>>> paired = pair(rows)
>>> paired.champion, paired.challenger, paired.scores_a.tolist()
('champion v1', 'challenger v2', [0.8, 0.6])
>>> result = shadow_compare(paired, metrics=("accuracy",), method="normal")
>>> result.agreement, result.deltas[0].difference
(0.5, -0.5)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import EvaluationError, ValidationError
from headwater.evaluation.intervals import Interval, Method, paired_difference
from headwater.reports import Report

__all__ = ["Paired", "ShadowResult", "pair", "shadow_compare", "wilson"]

F64 = npt.NDArray[np.float64]
_DEFAULT_METRICS: Final = ("accuracy", "log_loss", "roc_auc")
_NEEDED: Final = ("request_id", "arm", "served", "version", "score", "label")


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (``nan`` with no trial).

    >>> [round(v, 3) for v in wilson(45, 50)]
    [0.786, 0.957]
    """
    if n == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Paired:
    """The requests both arms scored: labels, the challenger's scores (``a``) and the
    champion's (``b``); and the rows of either that found no partner."""

    request_ids: list[str]
    y: F64
    scores_a: F64
    scores_b: F64
    challenger: str
    champion: str
    unpaired_served: int = 0
    unpaired_shadow: int = 0

    def __len__(self) -> int:
        return len(self.y)


def _check_columns(table: pa.Table) -> None:
    for name in _NEEDED:
        if name not in table.column_names:
            raise ValidationError(name, "training examples need this column")


def pair(table: pa.Table, *, challenger: str | None = None) -> Paired:
    """Pair the served row and the ``challenger`` arm's shadow row of each request.

    ``challenger`` may be omitted when the shadow rows come from one arm only. Repeated
    rows of a request keep the first."""
    _check_columns(table)
    rows = table.select(list(_NEEDED)).to_pydict()
    served = [bool(s) for s in rows["served"]]
    shadow_arms = sorted({a for a, s in zip(rows["arm"], served, strict=True) if not s})
    if challenger is None:
        if len(shadow_arms) != 1:
            raise ValidationError("challenger", f"name the shadow arm to compare: the rows "
                                  f"have {shadow_arms or 'none'}")
        challenger = shadow_arms[0]
    elif challenger not in shadow_arms:
        raise ValidationError("challenger", f"no shadow row of arm {challenger!r}; the shadow "
                              f"arms are {shadow_arms}")
    first_served: dict[str, int] = {}
    first_shadow: dict[str, int] = {}
    for i, (rid, arm, is_served) in enumerate(zip(rows["request_id"], rows["arm"], served,
                                                  strict=True)):
        if is_served:
            first_served.setdefault(rid, i)
        elif arm == challenger:
            first_shadow.setdefault(rid, i)
    ids = [rid for rid in first_served if rid in first_shadow]
    if not ids:
        raise EvaluationError(f"no request was both served and shadowed by {challenger!r}")
    a = [first_shadow[r] for r in ids]
    b = [first_served[r] for r in ids]
    score, label, version = rows["score"], rows["label"], rows["version"]
    champion_arms = sorted({f"{rows['arm'][i]} v{version[i]}" for i in b})
    challenger_versions = sorted({f"v{version[i]}" for i in a})
    return Paired(
        ids, np.array([label[i] for i in b], np.float64), np.array([score[i] for i in a]),
        np.array([score[i] for i in b]), f"{challenger} {', '.join(challenger_versions)}",
        ", ".join(champion_arms), len(first_served) - len(ids), len(first_shadow) - len(ids))


@dataclass(frozen=True)
class ShadowResult:
    """Agreement and metric differences (challenger minus champion) on paired requests."""

    challenger: str
    champion: str
    requests: int
    agreement: float
    agreement_low: float
    agreement_high: float
    mean_abs_difference: float
    deltas: list[Interval]
    unpaired_served: int
    unpaired_shadow: int

    def report(self, report: Report | None = None, *,
               title: str = "Shadow evaluation") -> Report:
        """Add (or make) a report of the comparison."""
        report = report or Report(title)
        report.section(f"Shadow: {self.challenger} against {self.champion}")
        report.text(f"{self.requests:,} requests answered by the champion and scored in the "
                    f"shadow by the challenger ({self.unpaired_served:,} served and "
                    f"{self.unpaired_shadow:,} shadow rows found no partner).")
        conf = self.deltas[0].confidence if self.deltas else 0.95
        report.table(["measure", "value", f"{conf:.0%} low", f"{conf:.0%} high"],
                     [["agreement", self.agreement, self.agreement_low, self.agreement_high],
                      ["mean |score difference|", self.mean_abs_difference, None, None]])
        report.text("Differences are the challenger's value minus the champion's.")
        report.table(["metric", "champion", "challenger", "difference", "low", "high",
                      "interval"],
                     [[d.metric, d.b, d.a, d.difference, d.low, d.high, d.method]
                      for d in self.deltas])
        for d in self.deltas:
            if d.low > 0 or d.high < 0:
                report.text(f"{d.metric}: the challenger differs from the champion by "
                            f"{d.difference:+.4g} (interval excludes 0).")
        return report


def shadow_compare(paired: Paired, *, metrics: Sequence[str] = _DEFAULT_METRICS,
                   method: Method = "bootstrap", confidence: float = 0.95,
                   resamples: int = 1_000, threshold: float = 0.5,
                   seed: int = 0) -> ShadowResult:
    """Agreement and metric differences of the challenger against the champion."""
    agree = (paired.scores_a > threshold) == (paired.scores_b > threshold)
    n = len(paired)
    low, high = wilson(int(agree.sum()), n, confidence)
    deltas = [paired_difference(m, paired.y, paired.scores_a, paired.scores_b, method=method,
                                confidence=confidence, resamples=resamples, seed=seed)
              for m in metrics]
    return ShadowResult(paired.challenger, paired.champion, n, float(agree.mean()), low, high,
                        float(np.abs(paired.scores_a - paired.scores_b).mean()), deltas,
                        paired.unpaired_served, paired.unpaired_shadow)
