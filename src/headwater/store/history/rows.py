"""The columns of a history row, checked and normalised at the edge.

Every row is one applied event of a source. The feature engine writes five system
columns, named like the log's (a leading ``_`` is never a user field name, so they
cannot clash), and the source columns its features read:

=================  ==============================================================
``_entity``        the entity key: string or int64
``_event_time``    event time, int64 µs (a ``timestamp`` column is converted)
``_append_time``   when the log appended the event, int64 µs
``_partition``     the log partition, int32
``_offset``        the offset in that partition, int64
any other          a source column: integers (stored as int64), floats (float64),
                   bool or string (for filters)
=================  ==============================================================

The history adds ``_task`` and ``_checkpoint`` (which write a row came from), so a
compacted file can still drop the rows of one checkpoint.

>>> import pyarrow as pa
>>> rows = normalize(pa.table({"_entity": ["a"], "_event_time": [5], "_append_time": [6],
...                            "_partition": [0], "_offset": [0],
...                            "amount": pa.array([1], pa.int8())}))
>>> rows.schema.field("amount").type, rows.schema.field("_partition").type
(DataType(int64), DataType(int32))
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa

from headwater.errors import SchemaError, TimestampError, ValidationError
from headwater.features.task import ENTITY, EVENT_TIME, PARTITION
from headwater.log.schema import APPEND_TIME, OFFSET
from headwater.time import MAX_MICROS, MIN_MICROS, describe_instant

__all__ = [
    "APPEND_TIME",
    "CHECKPOINT",
    "ENTITY",
    "EVENT_TIME",
    "OFFSET",
    "PARTITION",
    "PROVENANCE",
    "SYSTEM",
    "TASK",
    "merge_schemas",
    "normalize",
    "with_provenance",
]

TASK: Final = "_task"
CHECKPOINT: Final = "_checkpoint"
#: The columns every row has, in file order (provenance last).
SYSTEM: Final = (ENTITY, EVENT_TIME, APPEND_TIME, PARTITION, OFFSET)
#: The columns the history adds to record which write a row came from.
PROVENANCE: Final = (TASK, CHECKPOINT)


def _entity(column: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.cast(pa.string())
    if pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type):
        return column.cast(pa.string())
    if pa.types.is_integer(kind):
        return column.cast(pa.int64())
    raise ValidationError(ENTITY, f"an entity key is a string or an integer, not {kind}")


def _integer(column: pa.ChunkedArray, name: str, target: pa.DataType) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_timestamp(kind) and target == pa.int64():
        return column.cast(pa.timestamp("us", kind.tz)).cast(pa.int64())
    if not pa.types.is_integer(kind):
        raise ValidationError(name, f"expected integers, got {kind}")
    try:
        return column.cast(target)
    except pa.ArrowInvalid as error:
        raise ValidationError(name, f"a value does not fit in {target}") from error


def _value(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_integer(kind):
        return _integer(column, name, pa.int64())
    if pa.types.is_floating(kind):
        return column.cast(pa.float64())
    if pa.types.is_boolean(kind):
        return column
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or (
            pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type)):
        return column.cast(pa.string())
    raise ValidationError(name, f"a source column is numeric, bool or string, not {kind}")


def normalize(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """The rows of ``batch`` with the system columns first and the stored types, or a
    :class:`~headwater.errors.ValidationError` naming the offending column."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    if not isinstance(table, pa.Table):
        raise ValidationError("batch", f"expected a RecordBatch or Table, got {type(batch)}")
    names = table.schema.names
    if len(set(names)) != len(names):
        raise ValidationError("batch", "column names repeat")
    missing = [name for name in SYSTEM if name not in names]
    if missing:
        raise ValidationError(missing[0], "a history row needs this column")
    columns: dict[str, pa.ChunkedArray] = {
        ENTITY: _entity(table.column(ENTITY)),
        EVENT_TIME: _integer(table.column(EVENT_TIME), EVENT_TIME, pa.int64()),
        APPEND_TIME: _integer(table.column(APPEND_TIME), APPEND_TIME, pa.int64()),
        PARTITION: _integer(table.column(PARTITION), PARTITION, pa.int32()),
        OFFSET: _integer(table.column(OFFSET), OFFSET, pa.int64()),
    }
    for name, column in columns.items():
        if column.null_count:
            raise ValidationError(name, "null in a system column")
    for name in names:
        if name in columns:
            continue
        if name.startswith("_"):
            raise ValidationError(name, "names starting with '_' are reserved for the system")
        columns[name] = _value(table.column(name), name)
    if table.num_rows:
        times = np.asarray(columns[EVENT_TIME], dtype=np.int64)
        low, high = int(times.min()), int(times.max())
        if low < MIN_MICROS or high >= MAX_MICROS:
            bad = low if low < MIN_MICROS else high
            raise TimestampError(EVENT_TIME, f"{describe_instant(bad)} is outside "
                                 "1900-01-01 .. 2200-01-01")
    return pa.table(columns)


def with_provenance(rows: pa.Table, task: str, checkpoint: int) -> pa.Table:
    """``rows`` with the ``_task`` and ``_checkpoint`` columns of one write appended."""
    n = rows.num_rows
    return (rows.append_column(TASK, pa.repeat(pa.scalar(task, pa.string()), n))
            .append_column(CHECKPOINT, pa.repeat(pa.scalar(checkpoint, pa.int64()), n)))


def merge_schemas(known: pa.Schema | None, new: pa.Schema) -> pa.Schema:
    """The union of the columns of ``known`` and ``new``; a column may not change type."""
    if known is None:
        return new
    fields = list(known)
    for field in new:
        index = known.get_field_index(field.name)
        if index < 0:
            fields.append(field.with_nullable(True))
        elif known.field(index).type != field.type:
            raise SchemaError(field.name, f"stored as {known.field(index).type}, "
                              f"now written as {field.type}")
    return pa.schema(fields)
