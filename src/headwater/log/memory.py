"""An in-memory log backend for fast unit tests.

It keeps everything in process memory; several :class:`~headwater.log.Log` objects over
one :class:`MemoryBackend` see the same topics, which is how tests simulate a restart.
Group membership is in-process: members of one group split the partitions round robin.

>>> from headwater.log import Log, Schema
>>> backend = MemoryBackend()
>>> log = Log(backend)
>>> _ = log.create_topic("t", Schema.of({"ts": "timestamp"}, event_time="ts"))
>>> log.append("t", [{"ts": 1}, {"ts": 2}]).offsets.tolist()
[0, 1]
>>> Log(backend).end_offsets("t")
[2]
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec
import numpy as np
import pyarrow as pa

from headwater.errors import (
    TopicExistsError,
    UnknownConsumerGroupError,
    UnknownPartitionError,
    UnknownTopicError,
)
from headwater.log.backend import Producer
from headwater.log.frames import FrameIndex, ProducerTable, read_frames, seek_event_time
from headwater.log.records import PartitionAppend, Retention, TopicInfo, empty_batch
from headwater.log.schema import APPEND_TIME, OFFSET, TIMESTAMP
from headwater.time import Clock, SystemClock

__all__ = ["MemoryBackend"]


@dataclass
class _Partition:
    index: FrameIndex = field(default_factory=FrameIndex)
    frames: list[pa.RecordBatch] = field(default_factory=list)
    producers: ProducerTable = field(default_factory=ProducerTable)


@dataclass
class _Topic:
    info: TopicInfo
    partitions: list[_Partition]


class MemoryBackend:
    """Topics, partitions and group offsets held in memory."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self._topics: dict[str, _Topic] = {}
        self._offsets: dict[str, dict[str, dict[int, int]]] = {}
        self._members: dict[str, list[str]] = {}
        self._lock = threading.RLock()

    def create_topic(self, info: TopicInfo) -> TopicInfo:
        with self._lock:
            existing = self._topics.get(info.name)
            if existing is not None:
                if existing.info != info:
                    raise TopicExistsError(f"topic {info.name!r} exists with another definition")
                return existing.info
            self._topics[info.name] = _Topic(info, [_Partition() for _ in range(info.partitions)])
            return info

    def delete_topic(self, name: str) -> None:
        with self._lock:
            self._get(name)
            del self._topics[name]
            for groups in self._offsets.values():
                groups.pop(name, None)

    def append_target(self, name: str) -> TopicInfo:
        return self.topic(name)

    def topic(self, name: str) -> TopicInfo:
        return self._get(name).info

    def topics(self) -> list[TopicInfo]:
        return [t.info for t in self._topics.values()]

    def append(self, topic: str, partition: int, batch: pa.RecordBatch,
               producer: Producer | None) -> PartitionAppend:
        with self._lock:
            part = self._partition(topic, partition)
            seen = part.producers.duplicate(producer)
            if seen is not None:
                return seen
            info = self._get(topic).info
            base = part.index.end
            now = max(self.clock.now_us(), part.index.last_append_time)
            n = batch.num_rows
            stored = batch.append_column(
                pa.field(OFFSET, pa.int64(), False), pa.array(np.arange(base, base + n))
            ).append_column(
                pa.field(APPEND_TIME, TIMESTAMP, False),
                pa.array(np.full(n, now, dtype=np.int64)).view(TIMESTAMP),
            )
            times = np.asarray(batch.column(info.schema.event_time).view(pa.int64()))
            part.frames.append(stored)
            part.index.add(base, n, now, int(times.max()))
            placement = PartitionAppend(base, n, now)
            part.producers.record(producer, placement)
            return placement

    def read(self, topic: str, partition: int, offset: int, max_events: int) -> pa.RecordBatch:
        with self._lock:
            part = self._partition(topic, partition)
            schema = self._get(topic).info.schema
            return read_frames(part.index, part.frames.__getitem__, offset, max_events,
                               lambda: empty_batch(schema))

    def offsets(self, topic: str, partition: int) -> tuple[int, int]:
        part = self._partition(topic, partition)
        return part.index.start, part.index.end

    def seek_event_time(self, topic: str, partition: int, time_us: int) -> int:
        with self._lock:
            part = self._partition(topic, partition)
            name = self._get(topic).info.schema.event_time
            return seek_event_time(part.index, part.frames.__getitem__, name, time_us)

    def seek_append_time(self, topic: str, partition: int, time_us: int) -> int:
        return self._partition(topic, partition).index.first_append_at(time_us)

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        with self._lock:
            self._partition(topic, 0)
            self._offsets.setdefault(group, {}).setdefault(topic, {}).update(offsets)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        with self._lock:
            if group not in self._offsets:
                raise UnknownConsumerGroupError(group)
            return dict(self._offsets[group].get(topic, {}))

    def groups(self) -> list[str]:
        return list(self._offsets)

    def join(self, group: str, member: str) -> _Membership:
        with self._lock:
            self._members.setdefault(group, []).append(member)
        return _Membership(self, group, member)

    def set_retention(self, topic: str, retention: Retention) -> TopicInfo:
        with self._lock:
            t = self._get(topic)
            t.info = msgspec.structs.replace(t.info, retention=retention)
            return t.info

    def enforce_retention(self, topic: str) -> int:
        with self._lock:
            t = self._get(topic)
            keep = t.info.retention
            now = self.clock.now_us()
            dropped = 0
            for part in t.partitions:
                drop = 0
                sizes = [f.nbytes for f in part.frames]
                total = sum(sizes)
                while drop < len(part.frames) - 1:
                    too_old = (keep.max_age_us is not None
                               and part.index.append_times[drop] < now - keep.max_age_us)
                    too_big = keep.max_bytes is not None and total > keep.max_bytes
                    if not (too_old or too_big):
                        break
                    total -= sizes[drop]
                    dropped += part.index.counts[drop]
                    drop += 1
                if drop:
                    del part.frames[:drop]
                    part.index.drop_first(drop)
            return dropped

    def close(self) -> None:
        pass

    # -- internals -------------------------------------------------------------

    def _get(self, name: str) -> _Topic:
        try:
            return self._topics[name]
        except KeyError:
            raise UnknownTopicError(name) from None

    def _partition(self, topic: str, partition: int) -> _Partition:
        parts = self._get(topic).partitions
        if not 0 <= partition < len(parts):
            raise UnknownPartitionError(f"{topic!r} has no partition {partition}")
        return parts[partition]

    def _assigned(self, group: str, member: str, partitions: int) -> list[int]:
        with self._lock:
            members = self._members.get(group, [])
            rank = members.index(member)
            return list(range(rank, partitions, len(members)))

    def _leave(self, group: str, member: str) -> None:
        with self._lock:
            members = self._members.get(group, [])
            if member in members:
                members.remove(member)


class _Membership:
    def __init__(self, backend: MemoryBackend, group: str, member: str) -> None:
        self._backend, self._group, self._member = backend, group, member

    def assigned(self, topic: str, partitions: int) -> list[int]:
        return self._backend._assigned(self._group, self._member, partitions)

    def close(self) -> None:
        self._backend._leave(self._group, self._member)
