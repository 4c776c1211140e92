"""Searches over one partition's messages, for what Kafka does not index.

- **Append time**: append times never decrease within a partition, so the first
  offset appended at or after a time is found by a binary search of single-message
  reads (Kafka's own time index, in milliseconds, narrows the range first when the
  broker has one).
- **Retention cut points**: the appends' trailers (see :mod:`~headwater.log.kafka.codec`)
  say where each append ends, so retention drops whole appends: the newest run of
  appends within a byte budget is found walking back from the end, and the newest
  append is found from the last message alone.
- **Producer tables**: a backend that starts afresh rebuilds each partition's
  :class:`~headwater.log.frames.ProducerTable` from the trailers at its end.
"""

from __future__ import annotations

from typing import Final

from confluent_kafka import Message

from headwater.log.frames import ProducerTable
from headwater.log.kafka.codec import Trailer, append_time_of
from headwater.log.kafka.reader import Reader, offset_of
from headwater.log.records import PartitionAppend

__all__ = ["CHUNK", "append_time_at", "bytes_cut", "first_appended_at", "newest_append_start",
           "producer_table"]

#: The most messages one scan step reads.
CHUNK: Final = 50_000


def append_time_at(reader: Reader, topic: str, partition: int, offset: int) -> int:
    """The append time (µs) of the event at ``offset``."""
    return append_time_of(reader.fetch(topic, partition, offset, 1)[0].value())


def first_appended_at(reader: Reader, topic: str, partition: int, time_us: int,
                      low: int, high: int) -> int:
    """The first offset in ``[low, high)`` appended at or after ``time_us`` (else ``high``)."""
    while low < high:
        middle = (low + high) // 2
        if append_time_at(reader, topic, partition, middle) >= time_us:
            high = middle
        else:
            low = middle + 1
    return low


def newest_append_start(reader: Reader, topic: str, partition: int, start: int, end: int
                        ) -> int:
    """Where the newest append of a non-empty partition begins."""
    trailer = Trailer.of(reader.fetch(topic, partition, end - 1, 1)[0].headers())
    return max(start, end - trailer.count) if trailer else end - 1


def bytes_cut(reader: Reader, topic: str, partition: int, start: int, end: int,
              max_bytes: int) -> int:
    """The start of the longest run of whole newest appends within ``max_bytes`` (keys
    and values), or ``end`` when even the newest append is larger."""
    keep, total, upto = end, 0, end
    while upto > start:
        first = max(start, upto - CHUNK)
        for message in reversed(reader.fetch(topic, partition, first, upto - first)):
            offset = offset_of(message)
            if offset < end - 1 and Trailer.of(message.headers()) is not None:
                # ``message`` ends an older append: [offset + 1, end) is whole appends.
                if total > max_bytes:
                    return keep
                keep = offset + 1
            total += len(message.value() or b"") + len(message.key() or b"")
        upto = first
    return start if total <= max_bytes else keep


def producer_table(reader: Reader, topic: str, partition: int, start: int, end: int,
                   events: int) -> ProducerTable:
    """The producers' last batches among the last ``events`` events before ``end``."""
    table = ProducerTable()
    offset = max(start, end - events)
    while offset < end:
        count = min(CHUNK, end - offset)
        for message in reader.fetch(topic, partition, offset, count):
            _record(table, message)
        offset += count
    return table


def _record(table: ProducerTable, message: Message) -> None:
    trailer = Trailer.of(message.headers())
    if trailer is not None and trailer.producer is not None:
        last = offset_of(message)
        table.record(trailer.producer, PartitionAppend(
            last - trailer.count + 1, trailer.count, append_time_of(message.value())
        ))
