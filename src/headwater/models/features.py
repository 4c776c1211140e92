"""The batch every model reads: named NumPy columns, checked at the edge.

A batch of features is a mapping of column name to a 1-D NumPy array, all of one
length (:data:`Features`) — the columns of an Arrow table or of a training frame,
without copying when they are already float64. A column is *numeric* when its dtype
is bool, integer or float, and *categorical* when it holds strings (``str`` dtype or
``object`` of strings); categorical values are hashed (:mod:`headwater.models.hashing`).

Bad input raises :class:`~headwater.errors.ValidationError` naming the column: a
missing column, columns of different lengths, a string where a number is expected,
and NaN or infinite numbers, which are refused rather than guessed (impute upstream,
where the feature is defined).

>>> import numpy as np
>>> batch = {"price": np.array([1.5, 2.0]), "region": np.array(["NSW", "VIC"])}
>>> schema = FeatureSchema.infer(batch)
>>> schema.numeric, schema.categorical
(('price',), ('region',))
>>> numeric_matrix({"price": np.array([1.0, np.nan])}, ("price",), 2)
Traceback (most recent call last):
...
headwater.errors.ValidationError: price: NaN or infinite value at row 1 (impute upstream)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import ValidationError

__all__ = [
    "FeatureSchema",
    "Features",
    "FloatArray",
    "batch_length",
    "categorical_columns",
    "check_number",
    "column_names",
    "from_arrow",
    "is_binary",
    "labels",
    "numeric_matrix",
    "sample_weights",
]

#: A columnar batch: column name → 1-D NumPy array, all columns of one length.
Features: TypeAlias = Mapping[str, npt.NDArray[Any]]
#: What models return: one float64 per row.
FloatArray: TypeAlias = npt.NDArray[np.float64]

_NUMERIC_KINDS = "biuf"
_STRING_KINDS = "OUT"


@dataclass(frozen=True)
class FeatureSchema:
    """The columns a model reads, by kind, in the order it learned them."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every column, numeric first."""
        return self.numeric + self.categorical

    @classmethod
    def infer(cls, batch: Features) -> FeatureSchema:
        """The schema of a batch, from its dtypes (column order kept within each kind)."""
        batch_length(batch)
        numeric: list[str] = []
        categorical: list[str] = []
        for name, column in batch.items():
            kind = np.asarray(column).dtype.kind
            if kind in _NUMERIC_KINDS:
                numeric.append(name)
            elif kind in _STRING_KINDS:
                categorical.append(name)
            else:
                raise ValidationError(name, f"unsupported dtype {column.dtype}: expected "
                                            "bool, integer, float or string values")
        return cls(tuple(numeric), tuple(categorical))


def batch_length(batch: Features) -> int:
    """The number of rows, checking every column is 1-D and all have one length."""
    if not isinstance(batch, Mapping):
        raise ValidationError("batch", f"expected a mapping of column name to array, got "
                                   f"{type(batch).__name__}")
    if not batch:
        raise ValidationError("batch", "no feature columns")
    n: int | None = None
    first = ""
    for name, column in batch.items():
        if not isinstance(name, str):
            raise ValidationError("batch", f"column names must be str, got {name!r}")
        shape = column.shape if type(column) is np.ndarray else np.shape(column)
        if len(shape) != 1:
            raise ValidationError(name, f"expected a 1-D column, got shape {shape}")
        if n is None:
            n, first = shape[0], name
        elif shape[0] != n:
            raise ValidationError(name, f"has {shape[0]} rows but {first!r} has {n}")
    assert n is not None
    return n


def numeric_matrix(batch: Features, names: Sequence[str], n: int) -> FloatArray:
    """The named numeric columns as an ``(n, len(names))`` float64 matrix."""
    out = np.empty((n, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        column = _column(batch, name)
        if column.dtype.kind not in _NUMERIC_KINDS:
            raise ValidationError(name, f"expected a numeric column, got dtype {column.dtype}")
        out[:, j] = column
    if not np.isfinite(out).all():  # name the first bad value's column and row
        row, j = np.argwhere(~np.isfinite(out))[0]
        raise ValidationError(names[j], f"NaN or infinite value at row {row} (impute upstream)")
    return out


def categorical_columns(batch: Features, names: Sequence[str]) -> list[npt.NDArray[np.str_]]:
    """The named categorical columns as arrays of ``str``."""
    out: list[npt.NDArray[np.str_]] = []
    for name in names:
        column = _column(batch, name)
        if column.dtype.kind not in _STRING_KINDS:
            raise ValidationError(name, f"expected a string (categorical) column, got dtype "
                                        f"{column.dtype}")
        out.append(column.astype(np.str_) if column.dtype.kind != "U" else column)
    return out


def column_names(names: Sequence[str], *, field: str = "features") -> tuple[str, ...]:
    """A list of input columns given by hand, checked: distinct, non-empty strings.

    >>> column_names(["amount", "age"])
    ('amount', 'age')
    >>> column_names(["amount", "amount"])
    Traceback (most recent call last):
    ...
    headwater.errors.ValidationError: features: names a column twice: ['amount', 'amount']
    """
    if isinstance(names, str | bytes) or not all(isinstance(n, str) and n for n in names):
        raise ValidationError(field, f"expected a list of column names, got {names!r}")
    out = tuple(names)
    if not out:
        raise ValidationError(field, "expected at least one column name")
    if len(set(out)) != len(out):
        raise ValidationError(field, f"names a column twice: {list(out)}")
    return out


def check_number(name: str, value: object) -> float:
    """One numeric value of a single-row request, as a float (finite, not a string)."""
    if isinstance(value, str) or not isinstance(value, int | float | np.number):
        raise ValidationError(name, f"expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(name, f"NaN or infinite value {value!r} (impute upstream)")
    return number


def labels(y: npt.ArrayLike, n: int, *, binary: bool) -> FloatArray:
    """The targets as float64: 0/1 (or booleans) when ``binary``, finite numbers otherwise."""
    array = np.asarray(y)
    if array.shape != (n,):
        raise ValidationError("y", f"expected {n} targets (one per row), got shape {array.shape}")
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise ValidationError("y", f"expected numeric targets, got dtype {array.dtype}")
    out = array.astype(np.float64)
    if binary:
        binary_ok = (out == 0.0) | (out == 1.0)
        if binary_ok.all():
            return out  # 0 and 1 are finite
        row = int(np.argmin(binary_ok))
        raise ValidationError("y", f"expected labels 0 or 1, got {array[row]!r} at row {row}")
    if not np.isfinite(out).all():
        row = int(np.argmin(np.isfinite(out)))
        raise ValidationError("y", f"NaN or infinite target at row {row}")
    return out


def is_binary(model: object) -> bool:
    """Whether ``model`` learns 0/1 labels (a classifier: its score is P(y = 1)), as its
    :meth:`learn` checks them with :func:`labels`; a regressor or an unknown model: no."""
    return bool(getattr(model, "_classifier", getattr(model, "_logistic", False)))


def sample_weights(weights: npt.ArrayLike | None, n: int) -> FloatArray | None:
    """Per-row weights as float64 (finite, >= 0), or None for all ones."""
    if weights is None:
        return None
    array = np.asarray(weights)
    if array.shape != (n,) or array.dtype.kind not in _NUMERIC_KINDS:
        raise ValidationError("sample_weight", f"expected {n} numbers, got shape {array.shape} "
                                               f"of dtype {array.dtype}")
    out = array.astype(np.float64)
    bad = ~np.isfinite(out) | (out < 0)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValidationError("sample_weight", f"expected a finite weight >= 0 at row {row}, "
                                               f"got {out[row]}")
    return out


def from_arrow(table: pa.Table | pa.RecordBatch,
               columns: Sequence[str] | None = None) -> dict[str, npt.NDArray[Any]]:
    """Features from an Arrow table's columns (all, or ``columns`` in that order).

    Numeric columns come out as NumPy numbers (zero-copy when they have no nulls), string
    columns as ``str`` arrays. A column with nulls is refused, as NaN is.
    """
    out: dict[str, npt.NDArray[Any]] = {}
    for name in table.column_names if columns is None else columns:
        if name not in table.column_names:
            raise ValidationError(name, "missing feature column")
        column = table.column(name)
        if column.null_count:
            raise ValidationError(name, f"{column.null_count} null values (impute upstream)")
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            out[name] = np.asarray(column.to_pylist(), dtype=np.str_)
        else:
            out[name] = column.to_numpy()
    return out


def _column(batch: Features, name: str) -> npt.NDArray[Any]:
    try:
        column = batch[name]
    except KeyError:
        raise ValidationError(name, "missing feature column") from None
    return np.asarray(column)
