"""The demo's round trip through the log: append a stream, read it back, check it.

The steps take a :class:`~headwater.log.Log` and plain callbacks (``advance`` for
progress, ``timer`` for elapsed seconds), print nothing, and return figures, so the
command can show them as a table or as JSON and later demos can reuse them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa

from headwater.log import Log, dead_letter_topic

__all__ = [
    "Appended",
    "Consumed",
    "Seeked",
    "append_stream",
    "consume_all",
    "dead_letters",
    "seek_day",
]

Advance = Callable[[int], None]
Timer = Callable[[], float]

_DAY_US: Final = 86_400_000_000
_POLL_EVENTS: Final = 10_000


@dataclass(frozen=True, slots=True)
class Appended:
    """What appending a stream did."""

    offered: int
    appended: int
    duplicates: int
    rejected: int
    seconds: float


@dataclass(frozen=True, slots=True)
class Consumed:
    """What reading a topic back through a consumer group found."""

    events: int
    exactly_once: bool
    seconds: float
    committed: dict[int, int]
    lag: int


@dataclass(frozen=True, slots=True)
class Seeked:
    """Where seeking each partition to an event time landed."""

    event_time: int
    offsets: list[int]
    found: int | None
    """The event time of the first event at the offsets (``None`` if all are at the end)."""


def append_stream(log: Log, topic: str, table: pa.Table, *, batch_size: int,
                  producer_id: str, advance: Advance, timer: Timer = time.perf_counter
                  ) -> Appended:
    """Append ``table`` in batches, idempotently: batch ``k`` has sequence ``k``."""
    appended = duplicates = rejected = 0
    started = timer()
    for k, batch in enumerate(table.to_batches(max_chunksize=batch_size)):
        result = log.append(topic, batch, producer_id=producer_id, sequence=k)
        rejected += len(result.rejected)
        if result.duplicate:
            duplicates += result.accepted
        else:
            appended += result.accepted
        advance(batch.num_rows)
    return Appended(table.num_rows, appended, duplicates, rejected, timer() - started)


def consume_all(log: Log, topic: str, group: str, *, id_column: str, advance: Advance,
                timer: Timer = time.perf_counter) -> Consumed:
    """Read every event of ``topic`` as ``group``, commit, and check that each id in
    ``id_column`` (``0..n-1``) came back exactly once."""
    ids: list[np.ndarray] = []
    started = timer()
    with log.consumer(group, topic, reset="earliest") as consumer:
        while fetched := consumer.poll(max_events=_POLL_EVENTS):
            for part in fetched:
                ids.append(part.batch.column(id_column).to_numpy())
                advance(part.batch.num_rows)
        consumer.commit()
    seconds = timer() - started
    seen = np.sort(np.concatenate(ids)) if ids else np.zeros(0, np.int64)
    expected = sum(log.end_offsets(topic)) - sum(log.start_offsets(topic))
    exactly_once = len(seen) == expected and bool(np.array_equal(seen, np.arange(expected)))
    return Consumed(len(seen), exactly_once, seconds, log.committed(group, topic),
                    sum(log.lag(group, topic).values()))


def seek_day(log: Log, topic: str, when_us: int) -> Seeked:
    """Seek every partition to the midnight (UTC) at or before ``when_us``."""
    day = when_us - when_us % _DAY_US
    info = log.topic(topic)
    offsets = [log.seek(topic, p, event_time=day) for p in range(info.partitions)]
    found: int | None = None
    ends = log.end_offsets(topic)
    for p, offset in enumerate(offsets):
        if offset < ends[p]:
            column = log.read(topic, p, offset, 1).batch.column(info.schema.event_time)
            at = int(column.view(pa.int64())[0].as_py())
            found = at if found is None else min(found, at)
    return Seeked(day, offsets, found)


def dead_letters(log: Log, topic: str) -> int:
    """The number of events in the topic's dead-letter topic."""
    dlq = dead_letter_topic(topic)
    return sum(log.end_offsets(dlq)) - sum(log.start_offsets(dlq))
