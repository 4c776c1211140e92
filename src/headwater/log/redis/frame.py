"""One appended batch as stored in a Redis stream: a *frame*.

A frame is one stream entry whose ID is ``<base offset + 1>-0`` and whose fields are
the batch as an Arrow IPC record-batch message (``d``) plus its metadata: event count
(``n``), append time (``at``), greatest event time (``et``), producer id and sequence
(``p``, ``q``, empty without a producer) and a random frame id (``u``). The partition's
index stream repeats the metadata under the same ID, without the payload but with its
size (``z``), so seeks and retention never move payloads.

The system columns are not stored: ``_offset`` and ``_append_time`` are rebuilt from
the base offset and the append time when a frame is read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from headwater.errors import CorruptLogError
from headwater.log.schema import TIMESTAMP, Schema

__all__ = ["Frame", "FrameHead", "decode", "entry_id", "head_of", "payload_of"]


def entry_id(offset: int) -> str:
    """The stream ID of the frame whose base offset is ``offset``."""
    return f"{offset + 1}-0"


@dataclass(frozen=True, slots=True)
class FrameHead:
    """A frame's metadata, from either stream."""

    base: int
    count: int
    append_time: int
    max_event_time: int
    uid: bytes

    @property
    def end(self) -> int:
        return self.base + self.count

    def holds(self, offset: int) -> bool:
        return self.base <= offset < self.end


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame read back: its metadata and its events with the system columns."""

    head: FrameHead
    batch: pa.RecordBatch


def head_of(entry: tuple[bytes, dict[bytes, bytes]]) -> FrameHead:
    """The metadata of a stream entry as redis-py returns it: ``(id, fields)``."""
    ident, fields = entry
    return FrameHead(
        base=int(ident.partition(b"-")[0]) - 1,
        count=int(fields[b"n"]),
        append_time=int(fields[b"at"]),
        max_event_time=int(fields[b"et"]),
        uid=fields[b"u"],
    )


def payload_of(batch: pa.RecordBatch, schema: Schema) -> pa.Buffer:
    """The Arrow IPC message stored for ``batch`` (events as validated by the log)."""
    arrow = schema.arrow_schema()
    if not batch.schema.equals(arrow):
        batch = pa.RecordBatch.from_arrays(batch.columns, schema=arrow)
    return batch.serialize()


def decode(entry: tuple[bytes, dict[bytes, bytes]], schema: Schema) -> Frame:
    """Decode a log-stream entry into its events plus ``_offset`` and ``_append_time``."""
    head = head_of(entry)
    try:
        events = pa.ipc.read_record_batch(pa.py_buffer(entry[1][b"d"]), schema.arrow_schema())
    except (pa.ArrowInvalid, KeyError) as exc:
        raise CorruptLogError(f"the frame at offset {head.base} cannot be read: {exc}") from exc
    n = head.count
    if events.num_rows != n:
        raise CorruptLogError(f"the frame at offset {head.base} holds {events.num_rows} "
                              f"events, not {n}")
    offsets = pa.array(np.arange(head.base, head.base + n, dtype=np.int64))
    times = pa.array(np.full(n, head.append_time, dtype=np.int64)).view(TIMESTAMP)
    batch = pa.RecordBatch.from_arrays(
        [*events.columns, offsets, times], schema=schema.stored_schema()
    )
    return Frame(head, batch)
