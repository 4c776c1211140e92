"""Batch features from static tables: a table is a bounded stream.

:func:`load_table` appends a CSV or Parquet table to its topic (``table.<name>``), each
row at its ``valid_from`` time, idempotently: loading the same file again adds nothing,
and loading a changed file appends its rows as newer events, so ``last`` features follow
the latest table while point-in-time reads still see the older one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from headwater.errors import ValidationError
from headwater.features.definitions import TableSource
from headwater.log import Log, Schema, TopicInfo

__all__ = ["load_table", "read_table"]


def read_table(source: TableSource) -> pa.Table:
    """The table's rows (``.csv``, ``.parquet`` or ``.pq``)."""
    path = Path(source.path)
    if not path.exists():
        raise ValidationError(f"{source.name}.path", f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pacsv.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pq.read_table(path)
    raise ValidationError(f"{source.name}.path", f"expected a .csv or .parquet file, got {path}")


def load_table(log: Log, source: TableSource, *, batch_size: int = 100_000) -> TopicInfo:
    """Append the table to its topic (created on first load); return the topic."""
    table = read_table(source)
    for column in (source.entity_key, source.valid_from):
        if column not in table.schema.names:
            raise ValidationError(f"{source.name}.{column}", f"no column {column!r} in the table")
    schema = Schema.from_arrow(table.schema, event_time=source.valid_from, key=source.entity_key)
    info = log.create_topic(source.topic, schema)
    digest = hashlib.sha256(Path(source.path).read_bytes()).hexdigest()[:32]
    for sequence, batch in enumerate(table.to_batches(max_chunksize=batch_size)):
        result = log.append(source.topic, batch, producer_id=f"table:{digest}",
                            sequence=sequence)
        if result.rejected:
            first = result.rejected[0]
            raise ValidationError(
                f"{source.name}.{first.field}",
                f"{len(result.rejected)} rows rejected (first: row {first.index}: "
                f"{first.reason}); see {source.topic}.dlq",
            )
    return info
