"""Frames: a partition stored as a sequence of appended batches.

A backend that stores each append as one unit (a *frame*) keeps a :class:`FrameIndex`
(first offset, event count, append time and greatest event time of each frame) to find
the frame holding an offset, the first frame at an append time, and the first frame that
can hold an event time, and a :class:`ProducerTable` to recognise retried batches.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pyarrow as pa

from headwater.errors import OffsetOutOfRangeError
from headwater.log.backend import Producer
from headwater.log.records import PartitionAppend
from headwater.log.schema import OFFSET

__all__ = ["COMBINE_BELOW", "FrameIndex", "ProducerTable", "read_frames", "seek_event_time"]

_REMEMBERED: Final = 8  # placements of recent batches kept per producer
#: A read combines stored batches (a copy) only while it holds fewer events than this;
#: bigger batches are returned whole, zero-copy.
COMBINE_BELOW: Final = 1024


@dataclass
class FrameIndex:
    """Where each frame of a partition starts, how long it is and when it was appended."""

    bases: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    append_times: list[int] = field(default_factory=list)
    max_event_times: list[int] = field(default_factory=list)
    start: int = 0
    """First offset kept (retention moves it)."""

    @property
    def end(self) -> int:
        return self.bases[-1] + self.counts[-1] if self.bases else self.start

    @property
    def last_append_time(self) -> int:
        return self.append_times[-1] if self.append_times else -(2**63)

    def add(self, base: int, count: int, append_time: int, max_event_time: int) -> None:
        self.bases.append(base)
        self.counts.append(count)
        self.append_times.append(append_time)
        self.max_event_times.append(max_event_time)

    def drop_first(self, frames: int) -> None:
        """Forget the first ``frames`` frames (removed by retention)."""
        del self.bases[:frames], self.counts[:frames]
        del self.append_times[:frames], self.max_event_times[:frames]
        self.start = self.bases[0] if self.bases else self.start

    def frame_of(self, offset: int) -> int:
        """The frame holding ``offset`` (``len`` at the end)."""
        if offset < self.start or offset > self.end:
            raise OffsetOutOfRangeError(
                f"offset {offset} is outside the partition's [{self.start}, {self.end}]"
            )
        if offset == self.end:
            return len(self.bases)
        return bisect.bisect_right(self.bases, offset) - 1

    def first_kept_frame(self) -> int:
        """The frame holding the start offset (frames before it await deletion)."""
        return self.frame_of(self.start)

    def first_append_at(self, time_us: int) -> int:
        """The first kept offset appended at or after ``time_us``."""
        i = max(bisect.bisect_left(self.append_times, time_us), self.first_kept_frame())
        return self.bases[i] if i < len(self.bases) else self.end

    def first_frame_reaching(self, time_us: int) -> int:
        """The first kept frame holding an event time at or after ``time_us``."""
        for i in range(self.first_kept_frame(), len(self.bases)):
            if self.max_event_times[i] >= time_us:
                return i
        return len(self.bases)


def read_frames(
    index: FrameIndex,
    load: Callable[[int], pa.RecordBatch],
    offset: int,
    max_events: int,
    empty: Callable[[], pa.RecordBatch],
) -> pa.RecordBatch:
    """Up to ``max_events`` events from ``offset``; ``load(i)`` gives frame ``i`` whole.

    Small frames are combined into one batch; big ones are returned alone rather than
    copied, so a read may return fewer than ``max_events`` events (never none before
    the end).
    """
    i = index.frame_of(offset)
    parts: list[pa.RecordBatch] = []
    need = max_events
    enough = min(max_events, COMBINE_BELOW)
    while need > 0 and i < len(index.bases) and max_events - need < enough:
        frame = load(i)
        skip = offset - index.bases[i] if not parts else 0
        take = min(need, frame.num_rows - skip)
        parts.append(frame if skip == 0 and take == frame.num_rows else frame.slice(skip, take))
        need -= take
        i += 1
    if not parts:
        return empty()
    return parts[0] if len(parts) == 1 else pa.concat_batches(parts)


def seek_event_time(
    index: FrameIndex, load: Callable[[int], pa.RecordBatch], event_time: str, time_us: int
) -> int:
    """The first offset whose event time is at or after ``time_us``."""
    i = index.first_frame_reaching(time_us)
    while i < len(index.bases):
        frame = load(i)
        times = np.asarray(frame.column(event_time).view(pa.int64()))
        hits = np.flatnonzero(times >= time_us)
        if len(hits):
            return int(np.asarray(frame.column(OFFSET))[hits[0]])
        i += 1
    return index.end


class ProducerTable:
    """The last sequence numbers of each idempotent producer in one partition."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._placements: dict[str, OrderedDict[int, PartitionAppend]] = {}

    def duplicate(self, producer: Producer | None) -> PartitionAppend | None:
        """The stored placement if this batch was stored already, else ``None``."""
        if producer is None:
            return None
        last = self._last.get(producer.id)
        if last is None or producer.sequence > last:
            return None
        placed = self._placements.get(producer.id, OrderedDict()).get(producer.sequence)
        if placed is not None:
            return PartitionAppend(placed.base_offset, placed.count, placed.append_time, True)
        return PartitionAppend(-1, 0, 0, True)

    def record(self, producer: Producer | None, placement: PartitionAppend) -> None:
        if producer is None:
            return
        self._last[producer.id] = max(producer.sequence, self._last.get(producer.id, -1))
        recent = self._placements.setdefault(producer.id, OrderedDict())
        recent[producer.sequence] = placement
        while len(recent) > _REMEMBERED:
            recent.popitem(last=False)

    def last(self, producer_id: str) -> int | None:
        return self._last.get(producer_id)
