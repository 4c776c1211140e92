"""The promotion gate: a candidate serves only if it is not worse than the champion.

Both are judged on the same recent examples. The candidate's scores are *prequential*
— each example was scored before the candidate learnt it — so a candidate is never
judged on data it was trained on; the champion's are its predictions on the same rows.
The candidate passes when it is not worse than the champion by more than ``margin``
(for log loss: ``candidate <= champion + margin``). The verdict
(:class:`headwater.evaluation.Verdict`) keeps both values and the reason, which the
model store records with the version.

A score on a handful of examples is noise, so the gate refuses to promote on fewer than
``min_examples`` (:data:`DEFAULT_MIN_EXAMPLES`, or the whole ``window`` when that is
smaller), with or without a champion; the rejection says how many it had. A version
trained on fewer rows than that is kept as rejected: train on more, or lower
``min_examples`` knowingly (``headwater train --gate-min-examples``).

>>> gate = Gate("accuracy", margin=0.01, window=4)
>>> y = np.array([1.0, 0.0, 1.0, 0.0])
>>> gate.judge(y, np.array([0.9, 0.1, 0.8, 0.3]), np.array([0.9, 0.6, 0.4, 0.3])).promote
True
>>> gate.judge(y, np.array([0.9, 0.6, 0.4, 0.3]), np.array([0.9, 0.1, 0.8, 0.3])).reason
'accuracy 0.5000 is worse than the champion 1.0000 by more than 0.01'
>>> gate.judge(y[:2], np.array([0.9, 0.1]), None).reason
'only 2 examples to judge on; promoting needs at least 4 (min_examples)'
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.evaluation.metrics import higher_is_better
from headwater.evaluation.prequential import Verdict
from headwater.learning.triggers import metric_value

__all__ = ["DEFAULT_MIN_EXAMPLES", "Gate"]

#: The fewest examples the gate promotes on, unless its window is smaller.
DEFAULT_MIN_EXAMPLES: Final = 200


class Gate:
    """Compares a candidate's prequential scores with the champion's on the last ``window``
    examples, promoting only on at least ``min_examples`` (default: the smaller of
    :data:`DEFAULT_MIN_EXAMPLES` and ``window``); see the module docstring."""

    def __init__(self, metric: str = "log_loss", *, margin: float = 0.0,
                 window: int = 1000, min_examples: int | None = None) -> None:
        if not (math.isfinite(margin) and margin >= 0):
            raise ValidationError("margin", f"expected a finite number >= 0, got {margin!r}")
        if window <= 0:
            raise ValidationError("window", "must be positive")
        if min_examples is None:
            min_examples = min(DEFAULT_MIN_EXAMPLES, window)
        if not 1 <= min_examples <= window:
            raise ValidationError("min_examples", f"expected 1..{window} (the gate judges on "
                                  f"the last {window} examples), got {min_examples!r}")
        higher_is_better(metric)  # checks the name
        self.metric = metric
        self.margin = margin
        self.window = window
        self.min_examples = min_examples

    def judge(self, y: npt.NDArray[np.float64], candidate: npt.NDArray[np.float64],
              champion: npt.NDArray[np.float64] | None) -> Verdict:
        """The verdict on the last ``window`` rows of ``y`` and the two score arrays
        (``champion`` is ``None`` when nothing serves yet: the candidate passes on enough
        examples)."""
        y, candidate = y[-self.window:], candidate[-self.window:]
        name, margin, n = self.metric, self.margin, len(y)
        if not n:
            return Verdict(name, math.nan, math.nan, margin, False, "no examples to judge on", 0)
        sign = 1.0 if higher_is_better(name) else -1.0
        ours = sign * metric_value(name, y, candidate)  # as the metric reads
        theirs = (math.nan if champion is None
                  else sign * metric_value(name, y, champion[-self.window:]))
        if n < self.min_examples:
            return Verdict(name, ours, theirs, margin, False,
                           f"only {n} examples to judge on; promoting needs at least "
                           f"{self.min_examples} (min_examples)", n)
        if champion is None:
            return Verdict(name, ours, math.nan, margin, True, "no champion yet", n)
        if math.isnan(ours) or math.isnan(theirs):
            return Verdict(name, ours, theirs, margin, True,
                           f"{name} undefined on these {n} examples (one class only)", n)
        gain = sign * (ours - theirs)
        if gain >= -margin:
            return Verdict(name, ours, theirs, margin, True,
                           f"{name} {ours:.4f} against the champion's {theirs:.4f}", n)
        return Verdict(name, ours, theirs, margin, False,
                       f"{name} {ours:.4f} is worse than the champion {theirs:.4f} by more "
                       f"than {margin}", n)
