"""The promotion gate: a candidate serves only if it is not worse than the champion.

Both are judged on the same recent examples. The candidate's scores are *prequential*
— each example was scored before the candidate learnt it — so a candidate is never
judged on data it was trained on; the champion's are its predictions on the same rows.
The candidate passes when ``candidate >= champion - margin`` (every metric oriented so
that higher is better: log loss is compared negated). The verdict keeps both values and
the reason, which the model store records with the version.

>>> gate = Gate("accuracy", margin=0.01, window=4)
>>> y = np.array([1.0, 0.0, 1.0, 0.0])
>>> gate.judge(y, np.array([0.9, 0.1, 0.8, 0.3]), np.array([0.9, 0.6, 0.4, 0.3])).promote
True
>>> gate.judge(y, np.array([0.9, 0.6, 0.4, 0.3]), np.array([0.9, 0.1, 0.8, 0.3])).reason
'accuracy 0.5000 is worse than the champion 1.0000 by more than 0.01'
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.learning.triggers import Metric, metric_value

__all__ = ["Gate", "Verdict"]


class Verdict(NamedTuple):
    """The gate's decision, with the two metric values it compared (higher is better)."""

    promote: bool
    metric: str
    candidate: float
    champion: float | None
    examples: int
    reason: str


class Gate:
    """Compares a candidate's prequential scores with the champion's on the last ``window``
    examples; see the module docstring."""

    def __init__(self, metric: Metric = "log_loss", *, margin: float = 0.0,
                 window: int = 1000) -> None:
        if margin < 0:
            raise ValidationError("margin", "must not be negative")
        if window <= 0:
            raise ValidationError("window", "must be positive")
        metric_value(metric, np.array([0.0, 1.0]), np.array([0.2, 0.8]))  # checks the name
        self.metric: Metric = metric
        self.margin = margin
        self.window = window

    def judge(self, y: npt.NDArray[np.float64], candidate: npt.NDArray[np.float64],
              champion: npt.NDArray[np.float64] | None) -> Verdict:
        """The verdict on the last ``window`` rows of ``y`` and the two score arrays
        (``champion`` is ``None`` when nothing serves yet: the candidate passes)."""
        y, candidate = y[-self.window:], candidate[-self.window:]
        name = self.metric
        if not len(y):
            return Verdict(False, name, math.nan, None, 0, "no examples to judge on")
        ours = metric_value(name, y, candidate)
        if champion is None:
            return Verdict(True, name, ours, None, len(y), "no champion yet")
        theirs = metric_value(name, y, champion[-self.window:])
        shown = (-ours, -theirs) if name == "log_loss" else (ours, theirs)
        if math.isnan(ours) or math.isnan(theirs):
            return Verdict(True, name, ours, theirs, len(y),
                           f"{name} undefined on these examples (one class only)")
        if ours >= theirs - self.margin:
            return Verdict(True, name, ours, theirs, len(y),
                           f"{name} {shown[0]:.4f} against the champion's {shown[1]:.4f}")
        return Verdict(False, name, ours, theirs, len(y),
                       f"{name} {shown[0]:.4f} is worse than the champion {shown[1]:.4f} "
                       f"by more than {self.margin}")
