"""Following a topic without a consumer group: read what is new, from kept positions.

A component that only watches a topic — a reward feed, a canary watch, a service
learning from outcomes — needs neither a group nor commits: it starts at the end (or the
start) of every partition and reads on. :class:`TopicFollower` keeps those positions and
returns each read as one table of every partition's new events (partition after
partition), or ``None`` when nothing is new.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa

from headwater.log.log import Log

__all__ = ["TopicFollower"]


class TopicFollower:
    """Reads the new events of ``topic`` on every :meth:`read` (see the module)."""

    def __init__(self, log: Log, topic: str, *, start: Literal["end", "start"] = "end") -> None:
        self.log = log
        self.topic = topic
        offsets = log.end_offsets(topic) if start == "end" else log.start_offsets(topic)
        self.positions: dict[int, int] = dict(enumerate(offsets))

    def skip(self) -> None:
        """Move to the end of every partition without reading what lies between."""
        self.positions = dict(enumerate(self.log.end_offsets(self.topic)))

    def read(self, max_events: int = 100_000) -> pa.Table | None:
        """The events appended since the last read (at most ``max_events`` a partition)."""
        batches = []
        for p in range(self.log.topic(self.topic).partitions):
            fetched = self.log.read(self.topic, p, self.positions.get(p, 0), max_events)
            if fetched.batch.num_rows:
                batches.append(fetched.batch)
                self.positions[p] = fetched.next_offset
        return pa.Table.from_batches(batches) if batches else None
