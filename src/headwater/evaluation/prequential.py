"""Prequential evaluation (test-then-train) with label delay.

Each example is scored at its prediction time by the model *as it was then*: having
learnt exactly the examples whose labels were known strictly before that moment, in
the order their labels became known. Its label is learnt only at its label time. With
no delay (label time = prediction time) this is plain test-then-train; with a delay
the model runs behind the stream as it would in production. The scores are measured
in label-time order (as an evaluator watching the stream would learn of them), and
the metrics are sampled every ``every`` labels, cumulative and over the last
``window`` examples.

The promotion gate that judges a candidate on such scores against the champion's is
:class:`headwater.learning.Gate`.

>>> import numpy as np
>>> from headwater.models import LogisticRegression
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=2_000)
>>> ex = Examples({"x": x}, (x > 0).astype(int), prediction_time=np.arange(2_000),
...               label_time=np.arange(2_000) + 50)
>>> result = prequential(LogisticRegression(), ex, metrics=("accuracy",), window=500)
>>> result.final["accuracy"] > 0.9, len(result.scores)
(True, 2000)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.evaluation.examples import Examples
from headwater.evaluation.metrics import make_metric
from headwater.models.features import Features
from headwater.reports import Report
from headwater.time import format_duration

__all__ = ["Learner", "PrequentialResult", "prequential"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_DEFAULT_METRICS: Final = ("accuracy", "log_loss", "roc_auc", "kappa_t")


@dataclass(frozen=True)
class PrequentialResult:
    """Each example's score (input order) and the metrics sampled over label time.

    ``curves[name]`` is the cumulative metric and ``curves[f"{name}@{window}"]`` the
    windowed one, at each of ``times`` (label time, µs) after ``counts`` labels.
    """

    scores: F64
    times: I64
    counts: I64
    curves: dict[str, F64]
    final: dict[str, float]
    window: int
    learnt: int = 0
    notes: list[str] = field(default_factory=list)

    def report(self, report: Report | None = None, *, title: str = "Prequential evaluation",
               model: str = "model") -> Report:
        """Add (or make) a report: final values, and each metric over time."""
        report = report or Report(title)
        report.section(f"Prequential: {model}")
        report.text(f"Test-then-train over {len(self.scores):,} examples: each scored by the "
                    "model as it was at its prediction time, learnt when its label became "
                    f"known. Windowed metrics are over the last {self.window:,} examples.")
        for note in self.notes:
            report.text(note)
        names = [n for n in self.curves if "@" not in n]
        report.table(["metric", "cumulative", f"last {self.window:,}"],
                     [[n, self.final[n], self.final[f"{n}@{self.window}"]] for n in names])
        x = (self.times - self.times[0]) / 3.6e9 if len(self.times) else self.times
        for name in names:
            report.line_plot(
                {"cumulative": (x.tolist(), self.curves[name].tolist()),
                 f"last {self.window:,}": (x.tolist(),
                                            self.curves[f"{name}@{self.window}"].tolist())},
                title=f"{model}: {name} over time", xlabel="hours since the first label",
                ylabel=name)
        return report


class Learner(Protocol):
    """What prequential evaluation needs of a model (every
    :class:`~headwater.models.Model` is one): score a batch, learn a batch."""

    def predict(self, batch: Features) -> F64: ...

    def learn(self, batch: Features, y: npt.ArrayLike,
              sample_weight: npt.ArrayLike | None = None) -> None: ...


def _learn_order(ex: Examples) -> I64:
    return np.lexsort((np.arange(len(ex)), ex.label_time)).astype(np.int64)


def prequential(model: Learner, examples: Examples, *,
                metrics: tuple[str, ...] = _DEFAULT_METRICS, window: int = 1_000,
                every: int | None = None, learn: bool = True,
                learn_every: int | None = None) -> PrequentialResult:
    """Test-then-train ``model`` over ``examples`` (see the module docstring).

    The model is updated in place. ``learn=False`` only scores (a frozen model).
    ``every`` defaults to about 200 points over the stream. ``learn_every`` (µs) learns
    in micro-batches, as a trainer on a schedule does: a label known at ``l`` is
    learnt at the next multiple of ``learn_every`` after ``l`` — later, never earlier,
    and much faster on long streams.
    """
    if not len(examples):
        raise ValidationError("examples", "nothing to evaluate")
    if learn_every is not None and (isinstance(learn_every, bool) or learn_every <= 0):
        shown = format_duration(learn_every) if type(learn_every) is int else repr(learn_every)
        raise ValidationError("learn_every", f"expected a positive duration, got {shown}")
    for name in metrics:
        make_metric(name)
    order = np.argsort(examples.prediction_time, kind="stable")
    predicted = examples.prediction_time[order]
    learn_order = _learn_order(examples)
    known = examples.label_time[learn_order]
    if learn_every is not None:  # learnt at the tick after: "known before t" = tick <= t
        known = (known // learn_every + 1) * learn_every - 1
    n = len(examples)
    columns = examples.features
    fast = getattr(model, "predict_learn", None)
    if (learn and learn_every is None and callable(fast) and (order == learn_order).all()
            and (examples.label_time == examples.prediction_time).all()
            and (np.diff(predicted) > 0).all()):
        # no delay and no ties: each row is scored then learnt, in one call
        scores = np.asarray(fast({c: v[order] for c, v in columns.items()},
                                 examples.y[order]), np.float64)
        return _measure(examples, scores, learn_order, metrics, window, every, n)
    scores = np.empty(n)
    done = j = learnt = 0
    while done < n:
        if learn:
            k = int(np.searchsorted(known, predicted[done], side="left"))  # labels < t
            if k > j:
                rows = learn_order[j:k]
                model.learn({c: v[rows] for c, v in columns.items()}, examples.y[rows])
                learnt += k - j
                j = k
            upto = known[j] if j < n else np.iinfo(np.int64).max
            end = max(int(np.searchsorted(predicted, upto, side="right")), done + 1)
        else:
            end = n
        rows = order[done:end]
        scores[rows] = model.predict({c: v[rows] for c, v in columns.items()})
        done = end
    if learn and j < n:  # the labels that arrive after the last prediction
        rows = learn_order[j:]
        model.learn({c: v[rows] for c, v in columns.items()}, examples.y[rows])
        learnt += n - j
    return _measure(examples, scores, learn_order, metrics, window, every, learnt)


def _measure(examples: Examples, scores: F64, learn_order: I64, metrics: tuple[str, ...],
             window: int, every: int | None, learnt: int) -> PrequentialResult:
    n = len(examples)
    step = every or max(1, n // 200)
    cumulative = {m: make_metric(m) for m in metrics}
    windowed = {m: make_metric(m, window=window) for m in metrics}
    cuts = [*range(step, n, step), n]
    curves: dict[str, list[float]] = {}
    times, counts = [], []
    start = 0
    y, s = examples.y[learn_order], scores[learn_order]
    for cut in cuts:
        for name in metrics:
            for key, metric in ((name, cumulative[name]), (f"{name}@{window}", windowed[name])):
                metric.update(y[start:cut], s[start:cut])
                curves.setdefault(key, []).append(metric.value)
        times.append(int(examples.label_time[learn_order[cut - 1]]))
        counts.append(cut)
        start = cut
    final = {k: v[-1] for k, v in curves.items()}
    return PrequentialResult(scores, np.asarray(times, np.int64), np.asarray(counts, np.int64),
                             {k: np.asarray(v) for k, v in curves.items()}, final, window,
                             learnt)
