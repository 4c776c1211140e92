"""The protocol a log backend implements: storage primitives, one partition at a time.

:class:`~headwater.log.log.Log` does everything that is the same for every backend
(validation, key-hash partitioning, dead letters, consumer positions) and calls a
backend only for what touches storage. A new backend implements :class:`LogBackend`
and :class:`Membership` and passes ``tests/log/test_contract.py``.

Conventions every backend keeps:

- Offsets in a partition are dense: ``0, 1, 2, …``; retention moves the start offset.
- ``append`` stores a batch atomically (all of it or none of it) and assigns its
  append time, never earlier than the partition's previous append time.
- ``read`` returns the stored columns plus ``_offset`` and ``_append_time``; an empty
  batch at the end; :class:`~headwater.errors.OffsetOutOfRangeError` before the start
  or past the end.
- An append with ``producer=(id, sequence)`` whose sequence is not greater than the last
  one stored for that producer in that partition is a duplicate: nothing is stored and
  the original placement is returned when the backend still knows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

import pyarrow as pa

from headwater.log.records import PartitionAppend, Retention, TopicInfo

__all__ = ["LogBackend", "Membership", "Producer"]


class Producer(NamedTuple):
    """An idempotent producer's identity and the sequence number of one batch."""

    id: str
    sequence: int


class Membership(Protocol):
    """One consumer's membership of a group: which partitions it owns now.

    Ownership is exclusive within a group and moves when members join or leave; a join
    or a leave is visible to every other member at its next ``assigned()`` call.
    """

    def assigned(self, topic: str, partitions: int) -> list[int]:
        """The partitions of ``topic`` this member owns now (checked at every poll)."""
        ...

    def close(self) -> None:
        """Leave the group, handing the partitions to the other members."""
        ...


class LogBackend(Protocol):
    """Storage for topics, partitions and consumer-group offsets."""

    def create_topic(self, info: TopicInfo) -> TopicInfo:
        """Create a topic; creating the same definition again is a no-op.

        Raises :class:`~headwater.errors.TopicExistsError` for a different definition.
        """
        ...

    def delete_topic(self, name: str) -> None: ...

    def topic(self, name: str) -> TopicInfo:
        """Raises :class:`~headwater.errors.UnknownTopicError`."""
        ...

    def append_target(self, name: str) -> TopicInfo:
        """The definition to validate and split an append by. A backend may answer from
        the definition it last saw, without a round trip, if its ``append`` then refuses
        a batch whose topic was deleted (:class:`~headwater.errors.UnknownTopicError`)
        or redefined with another schema or partition count
        (:class:`~headwater.errors.TopicExistsError`) since, rather than store it."""
        ...

    def topics(self) -> list[TopicInfo]: ...

    def append(
        self, topic: str, partition: int, batch: pa.RecordBatch, producer: Producer | None
    ) -> PartitionAppend:
        """Store ``batch`` (validated, without system columns) at the partition's end."""
        ...

    def read(self, topic: str, partition: int, offset: int, max_events: int) -> pa.RecordBatch:
        """Up to ``max_events`` events from ``offset``, with the system columns.

        A backend may return fewer (whole stored batches rather than copies of big
        ones); an empty batch means ``offset`` is the end.
        """
        ...

    def offsets(self, topic: str, partition: int) -> tuple[int, int]:
        """The partition's start offset (first kept) and end offset (next to be written)."""
        ...

    def seek_event_time(self, topic: str, partition: int, time_us: int) -> int:
        """The first offset whose event time is at or after ``time_us`` (end if none)."""
        ...

    def seek_append_time(self, topic: str, partition: int, time_us: int) -> int:
        """The first offset whose append time is at or after ``time_us`` (end if none)."""
        ...

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        """Record the group's next offset to read for each partition, durably."""
        ...

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offsets for the topic (partitions never committed are
        absent). Raises :class:`~headwater.errors.UnknownConsumerGroupError` for a group
        that never committed anything."""
        ...

    def groups(self) -> list[str]: ...

    def join(self, group: str, member: str) -> Membership:
        """Join ``group`` as ``member``."""
        ...

    def set_retention(self, topic: str, retention: Retention) -> TopicInfo:
        """Change how long the topic keeps events (the rest of its definition stays);
        every process sees the change by its next :meth:`enforce_retention`. Raises
        :class:`~headwater.errors.UnknownTopicError`."""
        ...

    def enforce_retention(self, topic: str) -> int:
        """Drop what the topic's retention no longer keeps; return the events dropped.
        Reads the retention as stored now (another process may have changed it)."""
        ...

    def close(self) -> None: ...
