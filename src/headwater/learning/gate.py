"""The promotion gate: a candidate serves unless the evidence says it is worse.

One rule decides every promotion, and a continual trainer checks the same rule after
every update. A candidate is compared with a reference model (the champion, or the last
checkpoint of a model that keeps learning) on the same examples: the candidate's scores
are *prequential* — each example was scored before the candidate learnt it — and the
reference's are its predictions on the same rows. For each example the difference of
their losses is taken (``worse = loss(candidate) - loss(reference)``: log loss,
absolute error, or a miss for accuracy), and the mixture sequential test of
:mod:`headwater.stats.sequential` gives a confidence sequence for the mean difference.
The candidate is held back only when that sequence lies wholly above ``margin``: when
it is *significantly* worse than the reference by more than the margin, at level
``alpha``. A candidate descended from the champion that learnt more data is therefore
never refused because it was a little worse on a noisy sample; a real drop is caught as
soon as the evidence is there, however often the test is looked at.

- :class:`Gate` judges one candidate once, at publication, on the last ``window``
  examples. It refuses to promote on fewer than ``min_examples``
  (:data:`DEFAULT_MIN_EXAMPLES`, or the whole ``window`` when that is smaller), with
  or without a champion: a score on a handful of examples is noise, and a version
  trained on 2 examples must not serve. Its :class:`Verdict` keeps both values, the
  bounds on the difference and the reason, which the model store records.
- :class:`Guard` is the same test run sequentially, sans I/O: fed the labels of each
  update with the updating model's scores and the checkpoint's, it says when the
  updating model has dropped significantly below its checkpoint (then the trainer
  reverts to the checkpoint). Fed one batch, it is the gate's test on that batch.

The test compares per-example losses, so the gate's metric is one whose value is a mean
of per-example values (:data:`headwater.evaluation.metrics.PER_EXAMPLE`: ``log_loss``,
``accuracy``, ``mae``); ``roc_auc``, ``kappa_t`` and ``rmse`` are refused by name.

>>> gate = Gate("accuracy", margin=0.01, window=40, min_examples=4)
>>> y = np.tile([1.0, 0.0, 1.0, 0.0], 10)
>>> sharp, wrong = np.tile([0.9, 0.1, 0.8, 0.3], 10), np.tile([0.2, 0.6, 0.4, 0.7], 10)
>>> gate.judge(y, sharp, wrong).promote
True
>>> verdict = gate.judge(y, wrong, sharp)  # it misses every row the champion hits
>>> verdict.promote, verdict.low, verdict.reason.split(" (")[0]
(False, 1.0, 'accuracy 0.0000 is worse than the champion 1.0000 by more than 0.01')
>>> gate.judge(y[:2], sharp[:2], None).reason
'only 2 examples to judge on; promoting needs at least 4 (min_examples)'
>>> guard = Guard("log_loss")
>>> for _ in range(5):
...     _ = guard.update(y, updating=wrong, checkpoint=sharp)
>>> guard.dropped, guard.examples
(True, 200)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.evaluation.metrics import PER_EXAMPLE, higher_is_better, per_example
from headwater.reports import Report
from headwater.stats import MixtureSPRT

__all__ = ["DEFAULT_ALPHA", "DEFAULT_MIN_EXAMPLES", "DEFAULT_TAU", "Gate", "Guard", "Verdict"]

F64 = npt.NDArray[np.float64]

#: The fewest examples the gate promotes on, unless its window is smaller.
DEFAULT_MIN_EXAMPLES: Final = 200

#: The level of the test: the chance of holding back (or reverting) a candidate that is
#: not worse by more than the margin, over every look at one test.
DEFAULT_ALPHA: Final = 0.05

#: The mixture's scale: about the size of a loss difference worth finding.
DEFAULT_TAU: Final = 0.1

#: The fewest examples the sequential guard looks at before it may call a drop.
GUARD_MIN_EXAMPLES: Final = 30

_LOSS: Final = {"accuracy": "misses", "log_loss": "log loss", "mae": "absolute error"}


@dataclass(frozen=True)
class Verdict:
    """The gate's answer: both values of the metric, whether to promote, and why.

    ``low`` and ``high`` bound how much worse the candidate is than the reference —
    the mean of its per-example loss minus the reference's, positive when worse — by
    the test's confidence sequence (``nan`` when there was nothing to compare)."""

    metric: str
    candidate: float
    champion: float
    margin: float
    promote: bool
    reason: str
    examples: int
    low: float = math.nan
    high: float = math.nan

    def report(self, report: Report | None = None, *, title: str = "Promotion gate") -> Report:
        """Add (or make) a report of the verdict."""
        report = report or Report(title)
        report.section("Promotion gate")
        report.table(["metric", "candidate", "champion", "margin", "examples",
                      "worse by (low)", "worse by (high)"],
                     [[self.metric, self.candidate, self.champion, self.margin, self.examples,
                       self.low, self.high]])
        report.text(("Promote: " if self.promote else "Keep the champion: ") + self.reason,
                    tone="good" if self.promote else "bad")
        return report


def _check_metric(metric: str) -> None:
    higher_is_better(metric)  # names the known metrics when it is none of them
    if metric not in PER_EXAMPLE:
        raise ValidationError("metric", f"the gate tests per-example differences and "
                              f"{metric!r} is not a mean of per-example values: use "
                              f"{', '.join(PER_EXAMPLE)}")


def _check_margin(margin: float) -> None:
    if not (isinstance(margin, int | float) and math.isfinite(margin) and margin >= 0):
        raise ValidationError("margin", f"expected a finite number >= 0, got {margin!r}")


class Guard:
    """The sequential test of an updating model against a reference on the same labels.

    Feed :meth:`update` the labels of each batch with the updating model's prequential
    scores and the reference's (the last checkpoint's) predictions on the same rows.
    :attr:`dropped` turns true — and stays true until :meth:`reset` — once the updating
    model is significantly worse than the reference by more than ``margin`` (at level
    ``alpha`` over every look; see the module docstring). Rows the reference could not
    score (a non-finite score) are left out of the comparison and counted in
    :attr:`unscored`; a non-finite score of the updating model is a drop at once.
    """

    def __init__(self, metric: str = "log_loss", *, margin: float = 0.0,
                 alpha: float = DEFAULT_ALPHA, tau: float = DEFAULT_TAU,
                 min_examples: int = GUARD_MIN_EXAMPLES) -> None:
        _check_metric(metric)
        _check_margin(margin)
        self.metric, self.margin = metric, float(margin)
        self._higher = higher_is_better(metric)
        self._settings = (alpha, tau, min_examples)
        self._test = MixtureSPRT(alpha=alpha, tau=tau, min_samples=min_examples)
        self.alpha = self._test.alpha
        self.min_examples = self._test.min_samples
        self.unscored = 0
        self._sums = [0.0, 0.0]  # the metric's per-example values: updating, reference
        self._broken = 0

    def reset(self) -> None:
        """Start a new test (after a checkpoint, or a revert to one)."""
        alpha, tau, min_examples = self._settings
        self._test = MixtureSPRT(alpha=alpha, tau=tau, min_samples=min_examples)
        self.unscored = 0
        self._sums = [0.0, 0.0]
        self._broken = 0

    def update(self, y: npt.ArrayLike, updating: npt.ArrayLike,
               checkpoint: npt.ArrayLike) -> bool:
        """Add a batch (labels, the updating model's scores, the reference's scores on
        the same rows) and look; returns :attr:`dropped`."""
        labels = np.asarray(y, np.float64).ravel()
        ours = np.asarray(updating, np.float64).ravel()
        theirs = np.asarray(checkpoint, np.float64).ravel()
        if not len(labels) == len(ours) == len(theirs):
            raise ValidationError("scores", f"expected one score per label from each model, "
                                  f"got {len(labels)} labels, {len(ours)} and {len(theirs)} "
                                  "scores")
        self._broken += int((~np.isfinite(ours)).sum())
        keep = np.isfinite(theirs) & np.isfinite(ours)
        self.unscored += int((~np.isfinite(theirs)).sum())
        if not keep.all():
            labels, ours, theirs = labels[keep], ours[keep], theirs[keep]
        if len(labels):
            mine = per_example(self.metric, labels, ours)
            ref = per_example(self.metric, labels, theirs)
            self._sums[0] += math.fsum(mine)
            self._sums[1] += math.fsum(ref)
            worse = ref - mine if self._higher else mine - ref
            self._test.update(np.full(len(worse), self.margin), worse)
        return self.dropped

    @property
    def examples(self) -> int:
        """Examples compared so far."""
        return self._test.b.n

    @property
    def dropped(self) -> bool:
        """Whether the updating model is significantly worse by more than the margin."""
        return self._broken > 0 or self._test.low > 0.0

    @property
    def worse_by(self) -> tuple[float, float, float]:
        """The mean per-example loss difference (updating minus reference) and the
        confidence sequence's bounds on it (``-inf``/``inf`` before ``min_examples``)."""
        if not self.examples:
            return math.nan, math.nan, math.nan
        shift = self.margin
        return self._test.estimate + shift, self._test.low + shift, self._test.high + shift

    @property
    def values(self) -> tuple[float, float]:
        """The metric of the updating model and of the reference on the rows compared."""
        n = self.examples
        if not n:
            return math.nan, math.nan
        return self._sums[0] / n, self._sums[1] / n

    @property
    def reason(self) -> str:
        """Why :attr:`dropped` is what it is, with the figures."""
        if self._broken:
            return f"the updating model gave {self._broken} non-finite scores"
        ours, theirs = self.values
        estimate, low, high = self.worse_by
        bounds = (f"{_LOSS[self.metric]}: {estimate:+.4g} in [{low:+.4g}, {high:+.4g}] at "
                  f"alpha {self.alpha:g}")
        if self.dropped:
            return (f"{self.metric} {ours:.4f} is worse than the checkpoint's {theirs:.4f} by "
                    f"more than {self.margin:g} over {self.examples} examples ({bounds})")
        return (f"{self.metric} {ours:.4f} against the checkpoint's {theirs:.4f} over "
                f"{self.examples} examples ({bounds})")


class Gate:
    """Judges a candidate's prequential scores against the champion's on the last
    ``window`` examples, promoting unless it is significantly worse by more than
    ``margin`` (see the module docstring), and only on at least ``min_examples``
    (default: the smaller of :data:`DEFAULT_MIN_EXAMPLES` and ``window``).
    :meth:`guard` makes the sequential :class:`Guard` with the same rule."""

    def __init__(self, metric: str = "log_loss", *, margin: float = 0.0,
                 window: int = 1000, min_examples: int | None = None,
                 alpha: float = DEFAULT_ALPHA, tau: float = DEFAULT_TAU) -> None:
        _check_margin(margin)
        if window <= 0:
            raise ValidationError("window", "must be positive")
        if min_examples is None:
            min_examples = min(DEFAULT_MIN_EXAMPLES, window)
        if not 1 <= min_examples <= window:
            raise ValidationError("min_examples", f"expected 1..{window} (the gate judges on "
                                  f"the last {window} examples), got {min_examples!r}")
        _check_metric(metric)
        MixtureSPRT(alpha=alpha, tau=tau)  # checks both
        self.metric = metric
        self.margin = margin
        self.window = window
        self.min_examples = min_examples
        self.alpha, self.tau = alpha, tau

    def guard(self, min_examples: int = GUARD_MIN_EXAMPLES) -> Guard:
        """A sequential guard with this gate's metric, margin and level."""
        return Guard(self.metric, margin=self.margin, alpha=self.alpha, tau=self.tau,
                     min_examples=min_examples)

    def judge(self, y: F64, candidate: F64, champion: F64 | None) -> Verdict:
        """The verdict on the last ``window`` rows of ``y`` and the two score arrays
        (``champion`` is ``None`` when nothing serves yet: the candidate passes on enough
        examples)."""
        y, candidate = y[-self.window:], candidate[-self.window:]
        name, margin, n = self.metric, self.margin, len(y)
        if not n:
            return Verdict(name, math.nan, math.nan, margin, False, "no examples to judge on", 0)
        if not np.isfinite(candidate).all():
            return Verdict(name, math.nan, math.nan, margin, False,
                           f"the candidate gave {int((~np.isfinite(candidate)).sum())} "
                           "non-finite scores", n)
        ours = math.fsum(per_example(name, y, candidate)) / n
        if n < self.min_examples:
            return Verdict(name, ours, math.nan, margin, False,
                           f"only {n} examples to judge on; promoting needs at least "
                           f"{self.min_examples} (min_examples)", n)
        if champion is None:
            return Verdict(name, ours, math.nan, margin, True, "no champion yet", n)
        test = self.guard(min_examples=min(max(2, n), GUARD_MIN_EXAMPLES))
        test.update(y, candidate, champion[-self.window:])
        if test.examples < self.min_examples:
            return Verdict(name, ours, math.nan, margin, True,
                           f"the champion scored only {test.examples} of these {n} examples "
                           f"(fewer than {self.min_examples}): nothing to hold the candidate "
                           "back on", n)
        ours, theirs = test.values
        _, low, high = test.worse_by
        bounds = f"{_LOSS[name]}: {test.worse_by[0]:+.4g} in [{low:+.4g}, {high:+.4g}] at " \
                 f"alpha {test.alpha:g}"
        if test.dropped:
            return Verdict(name, ours, theirs, margin, False,
                           f"{name} {ours:.4f} is worse than the champion {theirs:.4f} by "
                           f"more than {margin} ({bounds})", n, low, high)
        return Verdict(name, ours, theirs, margin, True,
                       f"{name} {ours:.4f} against the champion's {theirs:.4f}: not worse by "
                       f"more than {margin} ({bounds})", n, low, high)
