"""Streaming metrics: updated with batches, read at any moment, over everything or a window.

Each metric is updated with a batch of labels and scores (NumPy arrays, rows in stream
order) and answers its :attr:`~StreamingMetric.value` at any moment: over every
example seen (cumulative, ``window=None``) or over the last ``window`` examples. The
classification metrics read scores as P(y = 1) and labels as 0/1:

- :class:`Accuracy` (``score > threshold`` is the label), :class:`LogLoss`,
  :class:`ROCAUC` (exact: the window's scores are kept and ranked, O(n log n));
- :class:`KappaTemporal`: accuracy measured against the *no-change* classifier, which
  predicts the previous label — ``(p - p_nc) / (1 - p_nc)``; below 0 the model does
  worse than repeating the last label, the trap of autocorrelated streams. The
  no-change classifier has no prediction for the very first example: a miss for it;

and the regression metrics :class:`MAE` and :class:`RMSE`. A metric with no example
(or, for AUC, with one class only) is ``nan``.

Every streaming value equals the batch function over the same examples —
:func:`~headwater.models.metrics.accuracy`, :func:`~headwater.models.metrics.log_loss`,
:func:`~headwater.models.metrics.roc_auc`, :func:`mae`, :func:`rmse` and
:func:`kappa_temporal` (over the window, with the label before it) — and the tests
prove it on random streams.

>>> import numpy as np
>>> acc, auc = Accuracy(), ROCAUC(window=4)
>>> for m in (acc, auc):
...     m.update(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.4]))
...     m.update(np.array([0, 1]), np.array([0.6, 0.9]))
>>> round(acc.value, 2), auc.value, auc.count
(0.6, 0.6666666666666666, 4)
>>> kappa = KappaTemporal()
>>> kappa.update(np.array([0, 0, 1, 1]), np.array([0.1, 0.9, 0.8, 0.7]))
>>> kappa.value  # the model is right 3 times of 4, the no-change classifier twice
0.5
>>> make_metric("rmse", window=100).name, higher_is_better("log_loss")
('rmse', False)
>>> restore_metric(kappa.snapshot()).value  # a snapshot restores the whole state
0.5
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Final, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.models.metrics import accuracy, log_loss, log_losses, roc_auc

__all__ = [
    "MAE",
    "METRICS",
    "PER_EXAMPLE",
    "RMSE",
    "ROCAUC",
    "Accuracy",
    "KappaTemporal",
    "LogLoss",
    "StreamingMetric",
    "accuracy",
    "higher_is_better",
    "kappa_temporal",
    "log_loss",
    "mae",
    "make_metric",
    "per_example",
    "restore_metric",
    "rmse",
    "roc_auc",
]

F64 = npt.NDArray[np.float64]


def mae(y: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    """The mean absolute error; ``nan`` with no rows."""
    error = np.abs(np.asarray(y, np.float64) - np.asarray(predictions, np.float64))
    return float(error.mean()) if len(error) else math.nan


def rmse(y: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    """The root mean squared error; ``nan`` with no rows."""
    error = np.asarray(y, np.float64) - np.asarray(predictions, np.float64)
    return math.sqrt(float(np.mean(error * error))) if len(error) else math.nan


def kappa_temporal(y: npt.ArrayLike, scores: npt.ArrayLike, *, previous: float | None = None,
                   threshold: float = 0.5) -> float:
    """Kappa-temporal of the rows: the model's accuracy against the no-change classifier's.

    ``previous`` is the label before the first row (``None``: none, the no-change
    classifier misses the first row). ``nan`` with no rows or when the no-change
    classifier is right on every row.
    """
    labels = np.asarray(y).astype(bool)
    if not len(labels):
        return math.nan
    hits = (np.asarray(scores, np.float64) > threshold) == labels
    before = np.empty(len(labels), bool)
    before[1:] = labels[:-1]
    before[0] = bool(previous) if previous is not None else not labels[0]
    return _kappa(float(hits.mean()), float((before == labels).mean()))


def _kappa(p_model: float, p_no_change: float) -> float:
    if p_no_change >= 1.0:
        return math.nan
    return (p_model - p_no_change) / (1.0 - p_no_change)


def _arrays(y: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[F64, F64]:
    labels = np.asarray(y, np.float64).ravel()
    values = np.asarray(scores, np.float64).ravel()
    if len(labels) != len(values):
        raise ValidationError("scores", f"expected {len(labels)} scores (one per label), "
                              f"got {len(values)}")
    if len(labels) and not np.isfinite(labels).all():
        raise ValidationError("y", "NaN or infinite label")
    if len(values) and not np.isfinite(values).all():
        raise ValidationError("scores", "NaN or infinite score")
    return labels, values


def _check_window(window: int | None) -> int | None:
    if window is None:
        return None
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValidationError("window", f"expected a number of examples >= 1, got {window!r}")
    return window


class _Columns:
    """Per-example columns: all of them (``window=None``, a growing array) or the last
    ``window`` rows (a ring buffer that overwrites its oldest rows)."""

    def __init__(self, width: int, window: int | None) -> None:
        self.window = window
        self.width = width
        self._data = np.empty((0, width))
        self._size = 0  # rows held
        self._head = 0  # in a full ring: the oldest row, where the next one goes

    def push(self, rows: F64) -> None:
        window = self.window
        if window is None:
            need = self._size + len(rows)
            if need > len(self._data):
                grown = np.empty((max(2 * len(self._data), need, 16), self.width))
                grown[:self._size] = self._data[:self._size]
                self._data = grown
            self._data[self._size:need] = rows
            self._size = need
            return
        if not len(self._data):
            self._data = np.empty((window, self.width))
        rows = rows[-window:]
        at = (self._head + self._size) % window if self._size < window else self._head
        first = min(len(rows), window - at)
        self._data[at:at + first] = rows[:first]
        self._data[:len(rows) - first] = rows[first:]
        grew = min(len(rows), window - self._size)
        self._size += grew
        if len(rows) > grew:  # overwrote the oldest rows
            self._head = (at + len(rows)) % window

    def load(self, rows: Any) -> None:
        """Hold ``rows`` (oldest first) instead of what was held."""
        self._data, self._size, self._head = np.empty((0, self.width)), 0, 0
        data = np.asarray(rows, np.float64).reshape(-1, self.width)
        if len(data):
            self.push(data)

    def rows(self) -> F64:
        """The rows held, oldest first."""
        if self.window is None or self._size < self.window or self._head == 0:
            return self._data[:self._size]
        return np.concatenate([self._data[self._head:], self._data[:self._head]])

    def __len__(self) -> int:
        return self._size


@runtime_checkable
class StreamingMetric(Protocol):
    """A metric updated with batches: ``update(y, scores)``, then ``value`` at any time."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]

    @property
    def window(self) -> int | None:
        """The number of most recent examples measured (``None``: all of them)."""
        ...

    @property
    def count(self) -> int:
        """The number of examples the value is over."""
        ...

    @property
    def value(self) -> float:
        """The metric over the examples held (``nan`` with none)."""
        ...

    def update(self, y: npt.ArrayLike, scores: npt.ArrayLike) -> None:
        """Add a batch of labels and scores, rows in stream order."""
        ...

    def clone(self) -> Self:
        """The same metric and settings, with no example."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able values (:meth:`restore` reads it back)."""
        ...

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> Self:
        """The metric in the state of ``snapshot``."""
        ...


class _Mean:
    """A metric that is a function of the mean of per-example values."""

    name: ClassVar[str]
    higher_is_better: ClassVar[bool]

    def __init__(self, *, window: int | None = None) -> None:
        self._window = _check_window(window)
        self._columns = _Columns(1, self._window)
        self._sum = 0.0  # cumulative only
        self._n = 0

    @property
    def window(self) -> int | None:
        return self._window

    @property
    def count(self) -> int:
        return self._n if self._window is None else len(self._columns)

    def _per_example(self, y: F64, scores: F64) -> F64:
        raise NotImplementedError

    def _finish(self, mean: float) -> float:
        return mean

    def update(self, y: npt.ArrayLike, scores: npt.ArrayLike) -> None:
        labels, values = _arrays(y, scores)
        if not len(labels):
            return
        per = self._per_example(labels, values)
        if self._window is None:
            self._sum += math.fsum(per)
            self._n += len(per)
        else:
            self._columns.push(per[:, None])

    @property
    def value(self) -> float:
        if self._window is None:
            return self._finish(self._sum / self._n) if self._n else math.nan
        rows = self._columns.rows()
        return self._finish(math.fsum(rows[:, 0]) / len(rows)) if len(rows) else math.nan

    def _settings(self) -> dict[str, Any]:
        return {}

    def clone(self) -> Self:
        return type(self)(window=self._window, **self._settings())

    def snapshot(self) -> dict[str, Any]:
        return {"metric": self.name, "window": self._window, "settings": self._settings(),
                "sum": self._sum, "n": self._n, "rows": self._columns.rows().tolist()}

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> Self:
        metric = cls(window=snapshot["window"], **snapshot["settings"])
        metric._sum, metric._n = float(snapshot["sum"]), int(snapshot["n"])
        metric._columns.load(snapshot["rows"])
        return metric

    def __repr__(self) -> str:
        return f"{type(self).__name__}(window={self._window}, value={self.value:.6g})"


class Accuracy(_Mean):
    """The share of examples whose ``score > threshold`` is the label."""

    name: ClassVar[str] = "accuracy"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, *, window: int | None = None, threshold: float = 0.5) -> None:
        super().__init__(window=window)
        self.threshold = threshold

    def _per_example(self, y: F64, scores: F64) -> F64:
        hits: F64 = ((scores > self.threshold) == y.astype(bool)).astype(np.float64)
        return hits

    def _settings(self) -> dict[str, Any]:
        return {"threshold": self.threshold}


class LogLoss(_Mean):
    """The mean negative log-likelihood, scores clipped to ``[1e-15, 1 - 1e-15]``."""

    name: ClassVar[str] = "log_loss"
    higher_is_better: ClassVar[bool] = False

    def _per_example(self, y: F64, scores: F64) -> F64:
        return log_losses(y, scores)


class MAE(_Mean):
    """The mean absolute error."""

    name: ClassVar[str] = "mae"
    higher_is_better: ClassVar[bool] = False

    def _per_example(self, y: F64, scores: F64) -> F64:
        return np.abs(y - scores)


class RMSE(_Mean):
    """The root mean squared error."""

    name: ClassVar[str] = "rmse"
    higher_is_better: ClassVar[bool] = False

    def _per_example(self, y: F64, scores: F64) -> F64:
        return (y - scores) ** 2

    def _finish(self, mean: float) -> float:
        return math.sqrt(mean)


class KappaTemporal:
    """Kappa-temporal: accuracy against the no-change classifier (see the module)."""

    name: ClassVar[str] = "kappa_t"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, *, window: int | None = None, threshold: float = 0.5) -> None:
        self._window = _check_window(window)
        self.threshold = threshold
        self._columns = _Columns(2, self._window)
        self._hits = [0, 0]  # cumulative: the model's and the no-change classifier's
        self._n = 0
        self._previous: bool | None = None

    @property
    def window(self) -> int | None:
        return self._window

    @property
    def count(self) -> int:
        return self._n if self._window is None else len(self._columns)

    def update(self, y: npt.ArrayLike, scores: npt.ArrayLike) -> None:
        labels, values = _arrays(y, scores)
        if not len(labels):
            return
        truth = labels.astype(bool)
        before = np.empty(len(truth), bool)
        before[1:] = truth[:-1]
        before[0] = self._previous if self._previous is not None else not truth[0]
        self._previous = bool(truth[-1])
        model = (values > self.threshold) == truth
        no_change = before == truth
        if self._window is None:
            self._hits[0] += int(model.sum())
            self._hits[1] += int(no_change.sum())
            self._n += len(truth)
        else:
            self._columns.push(np.stack([model, no_change], axis=1).astype(np.float64))

    @property
    def value(self) -> float:
        if self._window is None:
            if not self._n:
                return math.nan
            return _kappa(self._hits[0] / self._n, self._hits[1] / self._n)
        rows = self._columns.rows()
        if not len(rows):
            return math.nan
        return _kappa(float(rows[:, 0].sum()) / len(rows), float(rows[:, 1].sum()) / len(rows))

    def clone(self) -> Self:
        return type(self)(window=self._window, threshold=self.threshold)

    def snapshot(self) -> dict[str, Any]:
        return {"metric": self.name, "window": self._window,
                "settings": {"threshold": self.threshold}, "hits": list(self._hits),
                "n": self._n, "previous": self._previous, "rows": self._columns.rows().tolist()}

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> Self:
        metric = cls(window=snapshot["window"], **snapshot["settings"])
        metric._hits = [int(h) for h in snapshot["hits"]]
        metric._n = int(snapshot["n"])
        previous = snapshot["previous"]
        metric._previous = None if previous is None else bool(previous)
        metric._columns.load(snapshot["rows"])
        return metric

    def __repr__(self) -> str:
        return f"KappaTemporal(window={self._window}, value={self.value:.6g})"


class ROCAUC:
    """The exact area under the ROC curve over the examples held (ties count one half)."""

    name: ClassVar[str] = "roc_auc"
    higher_is_better: ClassVar[bool] = True

    def __init__(self, *, window: int | None = None) -> None:
        self._window = _check_window(window)
        self._columns = _Columns(2, self._window)
        self._cached: float | None = None

    @property
    def window(self) -> int | None:
        return self._window

    @property
    def count(self) -> int:
        return len(self._columns)

    def update(self, y: npt.ArrayLike, scores: npt.ArrayLike) -> None:
        labels, values = _arrays(y, scores)
        if len(labels):
            self._columns.push(np.stack([labels, values], axis=1))
            self._cached = None

    @property
    def value(self) -> float:
        if self._cached is None:
            rows = self._columns.rows()
            self._cached = roc_auc(rows[:, 0], rows[:, 1]) if len(rows) else math.nan
        return self._cached

    def clone(self) -> Self:
        return type(self)(window=self._window)

    def snapshot(self) -> dict[str, Any]:
        return {"metric": self.name, "window": self._window, "settings": {},
                "rows": self._columns.rows().tolist()}

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> Self:
        metric = cls(window=snapshot["window"])
        metric._columns.load(snapshot["rows"])
        return metric

    def __repr__(self) -> str:
        return f"ROCAUC(window={self._window}, value={self.value:.6g})"


#: Every streaming metric by name.
METRICS: Final[dict[str, type[StreamingMetric]]] = {
    m.name: m for m in (Accuracy, LogLoss, ROCAUC, KappaTemporal, MAE, RMSE)
}


def make_metric(name: str, *, window: int | None = None) -> StreamingMetric:
    """A new metric by name (``accuracy``, ``log_loss``, ``roc_auc``, ``kappa_t``, ``mae``,
    ``rmse``), cumulative or over the last ``window`` examples."""
    kind = METRICS.get(name)
    if kind is None:
        raise ValidationError("metric", f"expected one of {', '.join(METRICS)}, got {name!r}")
    return kind(window=window)  # type: ignore[call-arg]


#: The metrics whose value is the mean of per-example values (:func:`per_example`).
PER_EXAMPLE: Final = ("log_loss", "accuracy", "mae")


def per_example(name: str, y: npt.ArrayLike, scores: npt.ArrayLike) -> F64:
    """Each example's value of metric ``name`` (one of :data:`PER_EXAMPLE`): its log
    loss, 1 for a hit (accuracy), its absolute error; the metric is their mean.

    >>> per_example("accuracy", [1, 0, 1], [0.8, 0.7, 0.2]).tolist()
    [1.0, 0.0, 0.0]
    """
    if name not in PER_EXAMPLE:
        raise ValidationError("metric", f"{name!r} is not a mean of per-example values: "
                              f"expected one of {', '.join(PER_EXAMPLE)}")
    metric = make_metric(name)
    assert isinstance(metric, _Mean)
    return metric._per_example(*_arrays(y, scores))


def restore_metric(snapshot: dict[str, Any]) -> StreamingMetric:
    """The metric a :meth:`~StreamingMetric.snapshot` was taken of, in the same state."""
    if not isinstance(snapshot, dict) or "metric" not in snapshot:
        raise ValidationError("snapshot", "expected a metric snapshot (a dict with 'metric')")
    kind = METRICS.get(snapshot["metric"])
    if kind is None:
        raise ValidationError("snapshot.metric", f"unknown metric {snapshot['metric']!r}")
    return kind.restore(snapshot)


def higher_is_better(name: str) -> bool:
    """Whether a larger value of metric ``name`` is better."""
    kind = METRICS.get(name)
    if kind is None:
        raise ValidationError("metric", f"expected one of {', '.join(METRICS)}, got {name!r}")
    return kind.higher_is_better
