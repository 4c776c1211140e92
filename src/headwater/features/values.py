"""What a feature reads of its source column: the numbers its aggregation folds.

Aggregations fold float64 arrays (:mod:`headwater.features.aggregations`). Every path —
the live engine, a backfill, the point-in-time join — turns a source column into those
numbers here, so they cannot disagree:

- a number or bool column is read as float64; a null is ``NaN``;
- a text (or binary) column is read, for ``approx_distinct``, as the 32-bit murmur2 of
  each value's bytes (exact in float64), and for ``last``, as a code in a
  :class:`TextCodes` dictionary that turns back into the text when the value is read.
  Only these two (and ``count``, which reads no column) work over text.

A *missing* value — null, ``NaN``, or ``±infinity`` where a schema allows non-finite
floats — is skipped by every aggregation of a column: it moves no sum, mean, minimum,
maximum, variance, last value or distinct count (the event still counts for ``count``,
for the entity's latest event time and for the TTL). See ``docs/design/features.md``.

:func:`check_feature` checks a definition against its topic's schema, once, before any
event is read: a column that does not exist, or whose type the aggregation cannot fold
(``sum`` over text), is refused naming the feature, the column and the type.

>>> codes = TextCodes()
>>> values = codes.encode(pa.array(["ord", None, "lax", "ord"]))
>>> values.tolist()[0], bool(np.isnan(values[1])), codes.decode(values)
(0.0, True, ['ord', None, 'lax', 'ord'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ValidationError
from headwater.features.definitions import key_column
from headwater.log.partitioner import murmur2

if TYPE_CHECKING:
    from headwater.features.definitions import Feature
    from headwater.log.schema import Schema

__all__ = ["TEXT_AGGREGATIONS", "TextCodes", "check_feature", "column_values", "is_text",
           "present"]

F64 = npt.NDArray[np.float64]

#: The aggregations that work over a text or binary column (``last`` over text only).
TEXT_AGGREGATIONS: Final = ("count", "approx_distinct", "last")
_NUMBER_TYPES: Final = ("bool", "int32", "int64", "float32", "float64")
_ORDERING: Final = ("count", "min", "max", "last", "last_n", "approx_distinct")


def present(values: F64) -> npt.NDArray[np.bool_]:
    """Which values are there to aggregate: not null, ``NaN`` or infinite."""
    return np.isfinite(values)


def is_text(column_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(column_type) or pa.types.is_large_string(column_type)
                or pa.types.is_binary(column_type) or pa.types.is_large_binary(column_type)
                or pa.types.is_dictionary(column_type))


def check_feature(feature: Feature, schema: Schema) -> None:
    """Refuse a feature whose columns its source's schema does not have, or whose
    aggregation cannot fold the column's type (:class:`~headwater.errors.ValidationError`
    naming the feature, the column and the type)."""
    names = {f.name: f for f in schema.fields}
    key = key_column(feature)
    if key not in names:
        where = "source.entity_key" if feature.source.entity_key else "entity.key"
        raise ValidationError(f"{feature.name}.{where}",
                              f"{feature.source.topic} has no field {key!r} to key entity "
                              f"{feature.entity.name!r} by")
    if feature.where is not None and feature.where.column not in names:
        raise ValidationError(f"{feature.name}.where",
                              f"{feature.source.topic} has no field {feature.where.column!r}")
    if feature.column is None:
        return
    field = names.get(feature.column)
    if field is None:
        raise ValidationError(f"{feature.name}.column",
                              f"{feature.source.topic} has no field {feature.column!r}")
    kind = feature.aggregation
    if field.type in _NUMBER_TYPES:
        return
    if field.type == "string" and kind == "last" and feature.default_value is not None:
        raise ValidationError(f"{feature.name}.default",
                              f"last over {feature.column!r}, a string field, is text: it "
                              "takes no number as its default")
    allowed: tuple[str, ...] = ()
    if field.type == "string":
        allowed = TEXT_AGGREGATIONS
    elif field.type == "binary":
        allowed = ("count", "approx_distinct")
    elif field.type == "timestamp":
        allowed = _ORDERING
    if kind not in allowed:
        can = ", ".join(allowed) or "none"
        raise ValidationError(
            f"{feature.name}.column",
            f"{kind} cannot aggregate {feature.column!r}, a {field.type} field of "
            f"{feature.source.topic} (over {field.type}: {can})")


def column_values(kind: str, column: pa.Array | pa.ChunkedArray | None, size: int,
                  codes: TextCodes | None = None) -> F64:
    """The numbers an aggregation of ``kind`` folds from ``column`` (zeros when it reads
    no column); a text column needs ``codes`` for ``last``."""
    if column is None:
        return np.zeros(size)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not is_text(column.type):
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        return np.asarray(pc.cast(column, pa.float64()).fill_null(np.nan), np.float64)
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if kind == "approx_distinct":
        hashes = murmur2(column).astype(np.float64)
        return np.where(np.asarray(column.is_valid()), hashes, np.nan)
    if kind == "last":
        if codes is None:
            raise ValidationError("codes", "last over text needs a dictionary of codes")
        return codes.encode(column)
    raise ValidationError("aggregation", f"{kind} cannot aggregate text")


class TextCodes:
    """A growing dictionary of texts: each new text gets the next code (0, 1, …).

    Codes are exact in float64, so ``last`` folds them like numbers; the texts are
    kept as UTF-8 bytes with offsets, saved and restored with the engine's state.
    """

    def __init__(self) -> None:
        self._known = pa.array([], pa.string())
        self._texts: list[str] = []

    def __len__(self) -> int:
        return len(self._texts)

    def encode(self, column: pa.Array) -> F64:
        """The codes of ``column``'s values (``NaN`` for null); new texts are added."""
        if not pa.types.is_string(column.type):
            column = pc.cast(column, pa.string())
        found = pc.index_in(column, value_set=self._known)
        unknown = pc.and_(pc.is_null(found), column.is_valid())
        if pc.any(unknown).as_py():
            new = pc.unique(column.filter(unknown))
            self._texts.extend(new.to_pylist())
            self._known = pa.concat_arrays([self._known, new])
            found = pc.index_in(column, value_set=self._known)
        return np.asarray(pc.cast(found, pa.float64()).fill_null(np.nan), np.float64)

    def decode(self, codes: npt.NDArray[Any]) -> list[str | None]:
        """The texts of ``codes`` (``None`` for ``NaN``)."""
        texts = self._texts
        return [texts[int(c)] if c == c else None for c in np.asarray(codes).ravel().tolist()]

    def snapshot(self) -> dict[str, npt.NDArray[Any]]:
        """The texts as two plain arrays (UTF-8 bytes and offsets), for ``np.savez``."""
        column = self._known
        if column.offset or not len(column):
            column = pa.concat_arrays([column])
        _, offsets, data = column.buffers()
        ends = np.frombuffer(offsets, np.int32)[: len(column) + 1].astype(np.int64) \
            if offsets is not None else np.zeros(1, np.int64)
        size = int(ends[-1]) if len(ends) else 0
        raw = np.frombuffer(data, np.uint8)[:size].copy() if data is not None else \
            np.zeros(0, np.uint8)
        return {"offsets": ends, "data": raw}

    def restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        offsets = arrays["offsets"].astype(np.int64)
        data = arrays["data"].astype(np.uint8).tobytes()
        self._texts = [data[a:b].decode() for a, b in zip(offsets[:-1].tolist(),
                                                         offsets[1:].tolist(), strict=True)]
        self._known = pa.array(self._texts, pa.string())
