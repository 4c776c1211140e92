"""Labelled examples in stream order: features, label, when predicted, when the label was known.

Every evaluation reads :class:`Examples`: the feature columns a model reads (a
:data:`~headwater.models.features.Features` batch), the label, the *prediction time*
(when a model scored the example) and the *label time* (when its label became known,
never before the prediction). Build them from arrays, from an Arrow table
(:meth:`Examples.from_table`) or from the ``training_examples`` topic, whose features
are the JSON object served (:meth:`Examples.from_training_examples`).

>>> import numpy as np
>>> ex = Examples({"x": np.array([0.1, 0.9, 0.4])}, np.array([0, 1, 0]),
...               prediction_time=np.array([10, 20, 30]), label_time=np.array([15, 40, 30]))
>>> len(ex), ex.take(np.array([2, 0])).label_time.tolist()
(3, [30, 15])
>>> Examples({"x": np.array([1.0])}, np.array([1]), prediction_time=np.array([5]),
...          label_time=np.array([4]))  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
headwater.errors.LeakageError: label_time[0]: the label is known at
1970-01-01T00:00:00.000004+00:00, before its prediction at 1970-01-01T00:00:00.000005+00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import LeakageError, ValidationError
from headwater.labels.served import decode_features
from headwater.models.features import Features, batch_length
from headwater.time import describe_instant

__all__ = ["Examples", "int64_column"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def int64_column(table: pa.Table, name: str) -> I64:
    """A column of ``table`` as int64 (timestamps as µs since the epoch)."""
    if name not in table.column_names:
        raise ValidationError(name, f"no such column; the columns are {table.column_names}")
    column = table.column(name)
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us", "UTC")).cast(pa.int64())
    if column.null_count:
        raise ValidationError(name, f"{column.null_count} null values")
    return np.asarray(column, dtype=np.int64)


def _labels(table: pa.Table, name: str) -> F64:
    if name not in table.column_names:
        raise ValidationError(name, f"no such column; the columns are {table.column_names}")
    column = table.column(name)
    if column.null_count:
        raise ValidationError(name, f"{column.null_count} null labels")
    return np.asarray(column.cast(pa.float64()), dtype=np.float64)


@dataclass(frozen=True)
class Examples:
    """Labelled examples; every array has one row per example."""

    features: Features
    y: F64
    prediction_time: I64
    label_time: I64

    def __init__(self, features: Features, y: npt.ArrayLike, *, prediction_time: npt.ArrayLike,
                 label_time: npt.ArrayLike | None = None) -> None:
        n = batch_length(features)
        labels = np.asarray(y, dtype=np.float64)
        predicted = np.asarray(prediction_time, dtype=np.int64)
        known = predicted if label_time is None else np.asarray(label_time, dtype=np.int64)
        for name, array in (("y", labels), ("prediction_time", predicted),
                            ("label_time", known)):
            if array.shape != (n,):
                raise ValidationError(name, f"expected {n} values (one per row), got shape "
                                      f"{array.shape}")
        if not np.isfinite(labels).all():
            raise ValidationError(f"y[{int(np.argmin(np.isfinite(labels)))}]",
                                  "NaN or infinite label")
        early = np.flatnonzero(known < predicted)
        if len(early):
            i = int(early[0])
            raise LeakageError(f"label_time[{i}]", "the label is known at "
                               f"{describe_instant(int(known[i]))}, before its prediction at "
                               f"{describe_instant(int(predicted[i]))}")
        object.__setattr__(self, "features", dict(features))
        object.__setattr__(self, "y", labels)
        object.__setattr__(self, "prediction_time", predicted)
        object.__setattr__(self, "label_time", known)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: npt.ArrayLike) -> Examples:
        """The examples at ``rows`` (indices or a boolean mask), in that order."""
        index = np.asarray(rows)
        return Examples({k: v[index] for k, v in self.features.items()}, self.y[index],
                        prediction_time=self.prediction_time[index],
                        label_time=self.label_time[index])

    def sorted(self) -> Examples:
        """The examples by prediction time (ties keep their order)."""
        order = np.argsort(self.prediction_time, kind="stable")
        return self if (order == np.arange(len(order))).all() else self.take(order)

    def between(self, start: int, stop: int) -> Examples:
        """The examples predicted in ``[start, stop)`` (µs)."""
        return self.take((self.prediction_time >= start) & (self.prediction_time < stop))

    @classmethod
    def from_table(cls, table: pa.Table, *, features: Sequence[str] | None = None,
                   label: str = "label", prediction_time: str = "prediction_time",
                   label_time: str | None = "label_time") -> Examples:
        """Examples from the columns of ``table``; ``features`` default to every other
        column. ``label_time=None``: labels known when predicted."""
        reserved = {label, prediction_time, label_time}
        names = list(features) if features is not None else [
            n for n in table.column_names if n not in reserved and not n.startswith("_")]
        columns: dict[str, npt.NDArray[Any]] = {}
        for name in names:
            if name not in table.column_names:
                raise ValidationError(name, "no such column")
            column = table.column(name)
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                columns[name] = np.asarray(column.to_pylist(), dtype=np.str_)
            else:
                columns[name] = np.asarray(column.cast(pa.float64()), dtype=np.float64)
        return cls(columns, _labels(table, label),
                   prediction_time=int64_column(table, prediction_time),
                   label_time=None if label_time is None else int64_column(table, label_time))

    @classmethod
    def from_training_examples(cls, table: pa.Table) -> Examples:
        """Examples from rows of the ``training_examples`` topic (features decoded from
        the JSON object as served); the caller picks the rows (one version's, or the
        served ones)."""
        columns = decode_features(table.column("features").to_pylist())
        if not columns:
            columns = {"_": np.zeros(table.num_rows)}
        return cls(columns, _labels(table, "label"),
                   prediction_time=int64_column(table, "prediction_time"),
                   label_time=int64_column(table, "label_time"))


