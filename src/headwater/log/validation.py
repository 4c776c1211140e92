"""Schema validation at append: split a batch into valid events and rejections.

Input is an Arrow record batch or table, or a list of dicts. The fast path (an Arrow
batch whose columns already have the schema's types, no nulls where none are allowed,
event times in range, events under the size limit) does no per-row Python work. Every
other path names, for each rejected row, the field and the reason, and keeps the row's
raw payload for the dead-letter topic. Nothing is dropped silently.

>>> from headwater.log.schema import Schema
>>> schema = Schema.of({"user": "string", "n": "int64", "ts": "timestamp"},
...                    key="user", event_time="ts")
>>> v = validate(schema, [{"user": "a", "n": 1, "ts": 0}, {"user": "b", "n": "x", "ts": 0}])
>>> v.batch.num_rows, [(r.index, r.field, r.reason) for r in v.rejections]
(1, [(1, 'n', 'Expected `int`, got `str`')])
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, TypeAlias

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import TimestampError, ValidationError
from headwater.log.records import Rejection, row_numbers
from headwater.log.schema import APPEND_TIME, OFFSET, SYSTEM_COLUMNS, TIMESTAMP, Field, Schema
from headwater.time import MAX_MICROS, MIN_MICROS, parse_timestamp, to_micros

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "Events", "Validated", "non_finite_reason", "validate"]

#: Events larger than this (summed value sizes) are rejected unless configured otherwise.
DEFAULT_MAX_EVENT_BYTES: Final = 1 << 20

Events: TypeAlias = pa.RecordBatch | pa.Table | Sequence[Mapping[str, Any]]
"""What ``append`` accepts."""

_FLOATS: Final = ("float32", "float64")
_FIXED_WIDTH: Final = {"bool": 1, "int32": 4, "int64": 8, "float32": 4, "float64": 8,
                       "timestamp": 8}
_PATH: Final = re.compile(r"^(.*?)(?: - at `\$(?:\.|\[\d+\]\.?)?(.*)`)?$", re.DOTALL)
_BACKTICK: Final = re.compile(r"`([^`]*)`")


@dataclass(frozen=True, slots=True)
class Validated:
    """The valid events (``batch``, in the schema's Arrow types) and the rejections.

    ``index[i]`` is the input row of ``batch`` row ``i`` (read-only: it may be shared).
    """

    batch: pa.RecordBatch
    index: npt.NDArray[np.int64]
    rejections: tuple[Rejection, ...]


def validate(schema: Schema, events: Events, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
             ) -> Validated:
    """Check ``events`` against ``schema``."""
    if isinstance(events, pa.Table):
        events = _table_to_batch(events)
    if isinstance(events, pa.RecordBatch):
        return _validate_arrow(schema, events, max_event_bytes)
    if isinstance(events, (str, bytes)) or not isinstance(events, Sequence):
        raise ValidationError(
            "events", f"expected an Arrow batch or table or a list of dicts, got "
            f"{type(events).__name__}"
        )
    return _validate_rows(schema, events, max_event_bytes)


def _table_to_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.to_batches()
    if len(batches) == 1:
        return batches[0]
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=table.schema)
    return pa.concat_batches(batches)


class _Rejects:
    """The first reason found for each rejected row."""

    def __init__(self, n: int) -> None:
        self.mask = np.zeros(n, dtype=bool)
        self.reasons: dict[int, tuple[str, str]] = {}

    def add(self, rows: npt.NDArray[np.bool_] | npt.NDArray[np.intp], field: str,
            reason: str) -> None:
        idx = np.flatnonzero(rows) if rows.dtype == np.bool_ else rows
        for i in idx.tolist():
            if not self.mask[i]:
                self.mask[i] = True
                self.reasons[i] = (field, reason)

    def add_one(self, i: int, field: str, reason: str) -> None:
        if not self.mask[i]:
            self.mask[i] = True
            self.reasons[i] = (field, reason)


# ---------------------------------------------------------------- Arrow batches


@dataclass(frozen=True, slots=True)
class _Plan:
    """What checking a batch already in a schema's Arrow types takes, worked out once."""

    target: pa.Schema
    loose: pa.Schema  # the target with every field nullable, as Arrow builds batches
    event_time: int
    not_null: tuple[int, ...]
    strict_floats: tuple[int, ...]


@functools.lru_cache(maxsize=256)
def _plan(schema: Schema) -> _Plan:
    target = schema.arrow_schema()
    loose = pa.schema([f.with_nullable(True) for f in target])
    fields = schema.fields
    return _Plan(
        target, loose, schema.names.index(schema.event_time),
        tuple(i for i, f in enumerate(fields) if not f.nullable),
        tuple(i for i, f in enumerate(fields) if f.type in _FLOATS and not f.allow_non_finite),
    )


def _validate_exact(schema: Schema, batch: pa.RecordBatch, limit: int) -> Validated | None:
    """The fast path: a batch whose columns have the schema's names, order and types
    (nullable or not) is checked column by column in bulk, with no per-row Python work.
    ``None`` when it is not such a batch or some event fails, for the full path to name
    each rejection."""
    plan = _plan(schema)
    if batch.schema.equals(plan.target):
        out = batch
    elif batch.schema.equals(plan.loose):
        out = pa.RecordBatch.from_arrays(batch.columns, schema=plan.target)
    else:
        return None
    n = batch.num_rows
    if not n:
        return Validated(out, row_numbers(0), ())
    columns = batch.columns
    for i in plan.not_null:
        if columns[i].null_count:
            return None
    times = np.asarray(columns[plan.event_time].view(pa.int64()))
    if times.min() < MIN_MICROS or times.max() >= MAX_MICROS:
        return None
    for i in plan.strict_floats:
        # A sum is finite only if every value is (NaN and infinity propagate): one pass,
        # no temporary array. A sum that overflows only sends the batch down the full path.
        values = columns[i]
        if values.null_count:
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.add.reduce(values.to_numpy(zero_copy_only=True))
        if not math.isfinite(total):
            return None
    if _size_plan(schema)[1]:
        rejects = _Rejects(n)
        _check_sizes(schema, columns, limit, rejects)
        if rejects.reasons:
            return None
    return Validated(out, row_numbers(n), ())


def _validate_arrow(schema: Schema, batch: pa.RecordBatch, limit: int) -> Validated:
    fast = _validate_exact(schema, batch, limit)
    if fast is not None:
        return fast
    n = batch.num_rows
    rejects = _Rejects(n)
    columns: list[pa.Array] = []
    for f in schema.fields:
        pos = batch.schema.get_field_index(f.name)
        if pos < 0:
            if not f.nullable:
                rejects.add(np.ones(n, dtype=bool), f.name, "missing required field")
            columns.append(pa.nulls(n, f.arrow_type))
            continue
        col = batch.column(pos)
        if f.name == schema.event_time:
            col = _event_time_column(col, f.name, rejects)
        elif col.type != f.arrow_type:
            col = _cast_column(col, f, rejects)
        if f.type in _FLOATS and not f.allow_non_finite:
            _check_finite(col, f.name, rejects)
        if not f.nullable and col.null_count:
            rejects.add(np.asarray(col.is_null()), f.name, "null in a non-nullable field")
        columns.append(col)
    known = _known_names(schema)
    for name in batch.schema.names:
        if name not in known:
            col = batch.column(name)
            if col.null_count < n:
                rejects.add(np.asarray(col.is_valid()), name, "unknown field")
    _check_sizes(schema, columns, limit, rejects)
    target = schema.arrow_schema()
    if batch.schema.equals(target) and all(
        c is o for c, o in zip(columns, batch.columns, strict=True)
    ):
        out = batch
    else:
        out = pa.RecordBatch.from_arrays(columns, schema=target)
    if not rejects.reasons:
        return Validated(out, np.arange(n, dtype=np.int64), ())
    keep = ~rejects.mask
    rejections = tuple(
        Rejection(i, field, reason, _payload(_row(batch, i), limit))
        for i, (field, reason) in sorted(rejects.reasons.items())
    )
    return Validated(out.filter(pa.array(keep)), np.flatnonzero(keep).astype(np.int64),
                     rejections)


def _row(batch: pa.RecordBatch, i: int) -> dict[str, Any]:
    """Row ``i`` as Python values for a dead letter; a timestamp Python cannot hold
    (before year 1 or after 9999) is kept as its integer microseconds."""
    row = batch.slice(i, 1)
    try:
        values: dict[str, Any] = row.to_pylist()[0]
        return values
    except (OverflowError, ValueError):
        return {name: (column.view(pa.int64()) if pa.types.is_timestamp(column.type)
                       else column)[0].as_py()
                for name, column in zip(row.schema.names, row.columns, strict=True)}


def _event_time_column(col: pa.Array, name: str, rejects: _Rejects) -> pa.Array:
    n = len(col)
    t = col.type
    if pa.types.is_timestamp(t):
        if t.tz is None:
            rejects.add(np.ones(n, dtype=bool), name,
                        "naive timestamp: the event time needs a timezone")
            return pa.nulls(n, TIMESTAMP)
        out = col if t == TIMESTAMP else pc.cast(col, TIMESTAMP, safe=False)
    elif pa.types.is_integer(t):
        out = pc.cast(col, pa.int64()).view(TIMESTAMP)
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            out = pc.cast(col, TIMESTAMP)
        except pa.ArrowInvalid:
            values: list[int | None] = []
            for i, v in enumerate(col.to_pylist()):
                if v is None:
                    values.append(None)
                    continue
                try:
                    values.append(parse_timestamp(v, field=name))
                except TimestampError as exc:
                    rejects.add_one(i, name, exc.reason)
                    values.append(None)
            out = pa.array(values, pa.int64()).view(TIMESTAMP)
    else:
        rejects.add(np.ones(n, dtype=bool), name, f"expected a timestamp, got {t}")
        return pa.nulls(n, TIMESTAMP)
    if out.null_count == 0 and len(out):
        us_view = np.asarray(out.view(pa.int64()))
        low, high = int(us_view.min()), int(us_view.max())
    else:
        bounds = pc.min_max(out.view(pa.int64())).as_py()
        low, high = bounds["min"], bounds["max"]
    if low is not None and (low < MIN_MICROS or high >= MAX_MICROS):
        us = np.asarray(pc.fill_null(out.view(pa.int64()), 0))
        rejects.add((us < MIN_MICROS) | (us >= MAX_MICROS), name,
                    "outside the accepted range 1900..2200")
    return out


def _cast_column(col: pa.Array, f: Field, rejects: _Rejects) -> pa.Array:
    target = f.arrow_type
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
        if col.type == target:
            return col
    try:
        return pc.cast(col, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values: list[Any] = []
    for i, scalar in enumerate(col):
        try:
            values.append(pc.cast(scalar, target, safe=True).as_py())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            rejects.add_one(i, f.name, f"expected {f.type}, got {scalar.as_py()!r}")
            values.append(None)
    return pa.array(values, target)


def _check_finite(col: pa.Array, name: str, rejects: _Rejects) -> None:
    """Reject NaN and ±infinity in a float field that does not allow them."""
    if not col.null_count:  # the common case: one pass over the values, no copy
        finite = np.isfinite(col.to_numpy(zero_copy_only=True))
        if finite.all():
            return
        bad = np.flatnonzero(~finite)
    else:
        checked = pc.is_finite(col)
        if checked.null_count == len(col) or pc.all(checked).as_py() is not False:
            return
        bad = np.flatnonzero(~np.asarray(pc.fill_null(checked, True)))
    values = np.asarray(col.take(pa.array(bad)).fill_null(0.0), np.float64)
    for i, value in zip(bad.tolist(), values.tolist(), strict=True):
        rejects.add_one(i, name, non_finite_reason(value))


def non_finite_reason(value: float) -> str:
    """Why a NaN or infinite value is refused (the same words at every edge).

    >>> non_finite_reason(float("inf"))
    'not a finite number (inf); the field does not allow_non_finite'
    """
    return f"not a finite number ({value!r}); the field does not allow_non_finite"


@functools.lru_cache(maxsize=256)
def _known_names(schema: Schema) -> frozenset[str]:
    return frozenset(schema.names) | frozenset(SYSTEM_COLUMNS)


@functools.lru_cache(maxsize=256)
def _size_plan(schema: Schema) -> tuple[int, tuple[int, ...]]:
    """The fixed bytes of an event and the positions of the variable-width fields."""
    fixed = sum(_FIXED_WIDTH.get(f.type, 0) for f in schema.fields)
    return fixed, tuple(i for i, f in enumerate(schema.fields) if f.type not in _FIXED_WIDTH)


def _check_sizes(schema: Schema, columns: list[pa.Array], limit: int, rejects: _Rejects) -> None:
    fixed, positions = _size_plan(schema)
    var = [columns[i] for i in positions]
    if not var or not len(columns[0]):
        return
    if fixed + sum(_data_bytes(c) for c in var) <= limit:
        return  # not even all the values of the batch together are over the limit
    longest = [pc.max(pc.binary_length(c)).as_py() or 0 for c in var]
    if fixed + sum(longest) <= limit:
        return
    lengths = [np.asarray(pc.fill_null(pc.binary_length(c), 0), dtype=np.int64) for c in var]
    total = fixed + np.sum(lengths, axis=0)
    rejects.add(total > limit, "$", f"event of more than {limit} bytes")


def _data_bytes(column: pa.Array) -> int:
    """An upper bound of the bytes of a string or binary column's values."""
    buffers = column.buffers()
    return buffers[2].size if len(buffers) > 2 and buffers[2] is not None else 0


# ---------------------------------------------------------------- rows (dicts)


_EventTime = int | Annotated[datetime, msgspec.Meta(tz=True)]
_PY_TYPES: Final[dict[str, Any]] = {
    "bool": bool,
    "int32": Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)],
    "int64": Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)],
    "float32": float,
    "float64": float,
    "string": str,
    "binary": bytes,
    "timestamp": _EventTime,
}


@functools.lru_cache(maxsize=256)
def _row_type(schema: Schema) -> type[msgspec.Struct]:
    required: list[Any] = [(f.name, _PY_TYPES[f.type]) for f in schema.fields if not f.nullable]
    optional: list[Any] = [(f.name, _PY_TYPES[f.type] | None, None)
                           for f in schema.fields if f.nullable]
    return msgspec.defstruct("Event", required + optional, forbid_unknown_fields=True)


def _validate_rows(schema: Schema, rows: Sequence[Mapping[str, Any]], limit: int) -> Validated:
    row_type = _row_type(schema)
    n = len(rows)
    rejects = _Rejects(n)
    good: list[msgspec.Struct] = []
    index: list[int] = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            rejects.add_one(i, "$", f"expected an object, got {type(row).__name__}")
            continue
        if OFFSET in row or APPEND_TIME in row:  # read back from a log: the log assigns these
            row = {k: v for k, v in row.items() if k not in SYSTEM_COLUMNS}
        try:
            event = msgspec.convert(row, row_type, str_keys=True)
        except msgspec.ValidationError as exc:
            field, reason = _split_msgspec_error(str(exc))
            rejects.add_one(i, field, reason)
            continue
        good.append(event)
        index.append(i)
    strict = _strict_floats(schema)
    if strict and good:
        good, index = _finite_rows(good, index, strict, rejects)
    columns: dict[str, list[Any]] = {f.name: [getattr(e, f.name) for e in good]
                                     for f in schema.fields}
    keep: list[int] = []
    times: list[int] = []
    et = schema.event_time
    sizes = _row_sizes(schema, columns)
    for j, i in enumerate(index):
        try:
            value = columns[et][j]
            us = to_micros(value, field=et) if isinstance(value, datetime) else value
            parse_timestamp(us, field=et)
        except TimestampError as exc:
            rejects.add_one(i, et, exc.reason)
            continue
        if sizes[j] > limit:
            rejects.add_one(i, "$", f"event of more than {limit} bytes")
            continue
        keep.append(j)
        times.append(us)
    arrays = []
    for f in schema.fields:
        if f.name == et:
            arrays.append(pa.array(times, pa.int64()).view(TIMESTAMP))
        else:
            values = columns[f.name]
            arrays.append(pa.array([values[j] for j in keep], f.arrow_type))
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema.arrow_schema())
    rejections = tuple(
        Rejection(i, field, reason, _payload(rows[i], limit))
        for i, (field, reason) in sorted(rejects.reasons.items())
    )
    return Validated(batch, np.asarray([index[j] for j in keep], dtype=np.int64), rejections)


@functools.lru_cache(maxsize=256)
def _strict_floats(schema: Schema) -> tuple[str, ...]:
    """The float fields that refuse NaN and infinity."""
    return tuple(f.name for f in schema.fields if f.type in _FLOATS and not f.allow_non_finite)


def _finite_rows(good: list[msgspec.Struct], index: list[int], names: tuple[str, ...],
                 rejects: _Rejects) -> tuple[list[msgspec.Struct], list[int]]:
    kept: list[msgspec.Struct] = []
    kept_index: list[int] = []
    for event, i in zip(good, index, strict=True):
        for name in names:
            value = getattr(event, name)
            if value is not None and not math.isfinite(value):
                rejects.add_one(i, name, non_finite_reason(value))
                break
        else:
            kept.append(event)
            kept_index.append(i)
    return kept, kept_index


def _row_sizes(schema: Schema, columns: dict[str, list[Any]]) -> list[int]:
    fixed = sum(_FIXED_WIDTH.get(f.type, 0) for f in schema.fields)
    var = [columns[f.name] for f in schema.fields if f.type not in _FIXED_WIDTH]
    count = len(next(iter(columns.values()), []))
    sizes = [fixed] * count
    for values in var:
        for j, v in enumerate(values):
            if v is not None:
                sizes[j] += len(v.encode() if isinstance(v, str) else v)
    return sizes


def _split_msgspec_error(message: str) -> tuple[str, str]:
    """``"Expected `int`, got `str` - at `$.n`"`` -> ``("n", "Expected `int`, got `str`")``."""
    match = _PATH.match(message)
    reason, path = (match.group(1), match.group(2)) if match else (message, None)
    if path:
        return path, reason
    named = _BACKTICK.search(message)
    if "field" in message and named:
        return named.group(1), message
    return "$", message


def _payload(row: object, limit: int) -> bytes:
    data = msgspec.json.encode(row, enc_hook=repr)
    return data if len(data) <= limit else data[:limit]
