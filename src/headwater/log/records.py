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

