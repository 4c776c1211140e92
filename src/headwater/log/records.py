"""The values the log hands back: append results, rejections, topic descriptions, fetches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.log.schema import Schema

__all__ = [
    "DEAD_LETTER_SCHEMA",
    "DEAD_LETTER_SUFFIX",
    "AppendResult",
    "Fetched",
    "PartitionAppend",
    "Rejection",
    "Retention",
    "TopicInfo",
    "dead_letter_topic",
    "empty_batch",
    "row_numbers",
    "with_system_columns",
]

#: A topic's dead-letter topic is its name plus this suffix.
DEAD_LETTER_SUFFIX: Final = ".dlq"

#: The schema of every dead-letter topic. ``payload`` is the rejected event as JSON.
DEAD_LETTER_SCHEMA: Final = Schema.of(
    {
        "topic": "string",
        "index": "int64",
        "field": "string",
        "reason": "string",
        "payload": "binary",
        "rejected_at": "timestamp",
    },
    key="topic",
    event_time="rejected_at",
)


def dead_letter_topic(topic: str) -> str:
    return topic + DEAD_LETTER_SUFFIX


class Rejection(msgspec.Struct, frozen=True):
    """An event that failed validation; it was written to the dead-letter topic."""

    index: int
    """Its row number in the appended batch (or, for an event rejected after it was
    stored, such as a late one, its offset)."""
    field: str
    """The path of the offending value (``$`` for the event as a whole)."""
    reason: str
    payload: bytes
    """The event as JSON, cut at the size limit."""


class Retention(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How long a topic keeps events: whole appended batches go, oldest first, never the
    newest. ``max_bytes`` counts bytes the way each backend stores them (embedded: frame
    bytes on disk; Redis: stored payload bytes; memory: Arrow buffer sizes)."""

    max_age_us: int | None = None
    max_bytes: int | None = None


class TopicInfo(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A topic's definition."""

    name: str
    partitions: int
    schema: Schema
    retention: Retention = Retention()


@dataclass(frozen=True, slots=True)
class PartitionAppend:
    """What one partition did with its part of a batch."""

    base_offset: int
    count: int
    append_time: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where each appended event went.

    ``partitions[i]`` and ``offsets[i]`` locate input row ``i``; both are ``-1`` for a
    rejected row (see ``rejected``) and ``offsets`` is ``-1`` for rows of a duplicate
    batch the log no longer remembers the offsets of. ``duplicate`` is true when the
    log recognised the (producer, sequence) of the batch and did not append it again.
    """

    topic: str
    partitions: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.int64]
    append_time: int
    rejected: tuple[Rejection, ...] = ()
    duplicate: bool = False

    @property
    def accepted(self) -> int:
        return int(len(self.offsets) - len(self.rejected))

    def __len__(self) -> int:
        return len(self.offsets)


@dataclass(frozen=True, slots=True)
class Fetched:
    """Events read from one partition: the stored columns plus ``_offset`` and
    ``_append_time``. ``next_offset`` is where the next read starts."""

    topic: str
    partition: int
    batch: pa.RecordBatch
    next_offset: int

    @property
    def first_offset(self) -> int:
        return self.next_offset - int(self.batch.num_rows)


def empty_batch(schema: Schema) -> pa.RecordBatch:
    stored = schema.stored_schema()
    return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in stored], schema=stored)



_ROW_NUMBERS: list[npt.NDArray[np.int64]] = [np.arange(0, dtype=np.int64)]


def row_numbers(n: int) -> npt.NDArray[np.int64]:
    """``0 … n-1`` as a read-only view of one shared array (no allocation per call).

    >>> row_numbers(3).tolist(), row_numbers(3).flags.writeable
    ([0, 1, 2], False)
    """
    rows = _ROW_NUMBERS[0]
    if len(rows) < n:
        rows = np.arange(max(n, 2 * len(rows)), dtype=np.int64)
        rows.flags.writeable = False
        _ROW_NUMBERS[0] = rows
    return rows[:n]


def with_system_columns(events: pa.RecordBatch, base_offset: int, append_time: int,
                        stored: pa.Schema) -> pa.RecordBatch:
    """``events`` of one appended batch plus ``_offset`` (``base_offset`` + the row
    number) and ``_append_time``: what a backend storing neither per event hands back.

    >>> schema = Schema.of({"ts": "timestamp"}, event_time="ts")
    >>> events = pa.record_batch([pa.array([5, 6], pa.timestamp("us", tz="UTC"))], ["ts"])
    >>> with_system_columns(events, 40, 7, schema.stored_schema()).to_pydict()["_offset"]
    [40, 41]
    """
    n = events.num_rows
    # Both columns in one allocation, each filled in one pass.
    values = np.empty(2 * n, dtype=np.int64)
    np.add(row_numbers(n), base_offset, out=values[:n])
    values[n:] = append_time
    data = pa.py_buffer(values)
    return events.append_column(
        stored.field(-2), pa.Array.from_buffers(stored.field(-2).type, n, [None, data])
    ).append_column(
        stored.field(-1), pa.Array.from_buffers(stored.field(-1).type, n, [None, data], offset=n)
    )
