"""The Redis Streams log backend: one stream per partition, one entry per append.

Each appended batch is one stream entry, a *frame* (see
:mod:`headwater.log.redis.frame`), holding the batch as an Arrow IPC message, so
appends and reads move whole columnar batches, not one entry per event. A frame's ID
is its base offset plus one, so the frame holding any offset is one ``XREVRANGE``;
a read is one round trip (a ``MULTI`` of the topic, the partition's bounds and the
frames it needs). Appends, retention and group heartbeats are Lua scripts
(:mod:`headwater.log.redis.scripts`), atomic however many processes write.

The injected clock stamps append times and drives retention; group liveness uses
the server's clock. Redis 6.2 or newer, standalone or primary/replica (the keys of
one log span hash slots, so Redis Cluster is not supported). Key layout:
:mod:`headwater.log.redis.keys`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import msgspec
import numpy as np
import pyarrow as pa

from headwater.errors import (
    BackendError,
    ConfigError,
    CorruptLogError,
    OffsetOutOfRangeError,
    TopicExistsError,
    UnknownConsumerGroupError,
    UnknownPartitionError,
    UnknownTopicError,
)
from headwater.log.backend import Producer
from headwater.log.frames import COMBINE_BELOW, FrameIndex, read_frames, seek_event_time
from headwater.log.records import PartitionAppend, Retention, TopicInfo, empty_batch
from headwater.log.redis.client import Script, connect, failures, location, raw, text
from headwater.log.redis.frame import Frame, FrameHead, decode, entry_id, head_of, payload_of
from headwater.log.redis.keys import Keys, PartitionKeys
from headwater.log.redis.membership import GroupMembership
from headwater.log.redis.scripts import (
    APPEND,
    SEEK_APPEND_TIME,
    SWAP_DEFINITION,
    TRIM,
    UNPARK,
)
from headwater.time import Clock, SystemClock

__all__ = ["DEFAULT_PREFIX", "RedisBackend"]

#: The key prefix of a log opened without one.
DEFAULT_PREFIX: Final = "headwater"

#: Index entries fetched per round trip when scanning for an event time.
_SCAN_FRAMES: Final = 1024
_ATTEMPTS: Final = 3
#: An append proposes the partition's end as it last saw it; each other writer's
#: append in between costs one more round trip.
_APPEND_ATTEMPTS: Final = 64


class RedisBackend:
    """Topics, partitions and consumer groups in Redis Streams.

    ``url`` is ``redis://[user:password@]host:port/db`` (or ``rediss://`` for TLS);
    every key goes under ``prefix``, so several logs can share a database. Consumers
    silent for ``session_timeout_s`` leave their group. Backends opened on the same
    URL and prefix, in any process, share one log.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock | None = None,
        session_timeout_s: float = 10.0,
    ) -> None:
        if not prefix:
            raise ConfigError("the Redis log backend needs a non-empty key prefix")
        if session_timeout_s <= 0:
            raise ConfigError(f"session_timeout_s must be positive, got {session_timeout_s}")
        self.url = url
        self.prefix = prefix
        self.clock: Clock = clock or SystemClock()
        self.session_timeout_ms = int(session_timeout_s * 1000)
        self._where = location(url)
        self._keys = Keys(prefix)
        self._client = connect(url)
        self._seek_append_time: Script = self._client.register_script(SEEK_APPEND_TIME)
        self._trim: Script = self._client.register_script(TRIM)
        self._swap_definition: Script = self._client.register_script(SWAP_DEFINITION)
        self._definitions: dict[str, bytes] = {}  # topic -> its JSON as last read
        self._decoded: dict[bytes, TopicInfo] = {}  # JSON -> TopicInfo
        self._tails: dict[tuple[str, int], Frame] = {}  # the frame the next read starts in
        self._ends: dict[tuple[str, int], tuple[int, int]] = {}  # end, append time as seen

    def __repr__(self) -> str:
        return f"RedisBackend({self._where!r}, prefix={self.prefix!r})"

    # -- the server ------------------------------------------------------------

    def ping(self) -> None:
        """Check that the server answers; raises :class:`BackendError` if not."""
        with failures(self._where, "ping"):
            self._client.ping()

    def destroy(self) -> None:
        """Delete every key under the prefix: all topics, offsets and groups."""
        with failures(self._where, f"deleting the keys under {self.prefix!r}"):
            doomed: list[bytes] = []
            for key in self._client.scan_iter(match=self._keys.pattern(), count=1000):
                doomed.append(key)
                if len(doomed) >= 1000:
                    self._client.unlink(*doomed)
                    doomed.clear()
            if doomed:
                self._client.unlink(*doomed)
        self._forget()

    def close(self) -> None:
        self._forget()
        with failures(self._where, "closing the connections"):
            self._client.close()

    # -- topics ----------------------------------------------------------------

    def create_topic(self, info: TopicInfo) -> TopicInfo:
        definition = msgspec.json.encode(info)
        for _ in range(_ATTEMPTS):
            with failures(self._where, f"creating topic {info.name!r}"):
                if self._client.hsetnx(self._keys.topics, info.name, definition):
                    return self._remember(info.name, definition)
                found = self._client.hget(self._keys.topics, info.name)
            if found is None:
                continue  # deleted meanwhile: try again
            existing = self._remember(info.name, raw(found))
            if existing != info:
                raise TopicExistsError(f"topic {info.name!r} exists with another definition")
            return existing
        raise BackendError(f"topic {info.name!r} is being created and deleted concurrently")

    def delete_topic(self, name: str) -> None:
        info = self.topic(name)
        with failures(self._where, f"deleting topic {name!r}"):
            groups = self._client.smembers(self._keys.groups)
            doomed = [key for p in range(info.partitions)
                      for key in self._keys.partition(name, p).all()]
            doomed += [self._keys.offsets(text(g), name) for g in groups]
            pipe = self._client.pipeline(transaction=True)
            pipe.hdel(self._keys.topics, name)
            pipe.unlink(*doomed)
            pipe.execute()
        self._forget(name)

    def topic(self, name: str) -> TopicInfo:
        with failures(self._where, f"reading topic {name!r}"):
            found = self._client.hget(self._keys.topics, name)
        return self._info(name, None if found is None else raw(found))

    def append_target(self, name: str) -> TopicInfo:
        """The definition last seen (the append's guard checks it is still the one)."""
        definition = self._definitions.get(name)
        return self.topic(name) if definition is None else self._decode(definition)

    def topics(self) -> list[TopicInfo]:
        with failures(self._where, "listing topics"):
            found = self._client.hgetall(self._keys.topics)
        return [self._remember(text(name), raw(definition)) for name, definition in found.items()]

    # -- appending and reading -------------------------------------------------

    def append(
        self, topic: str, partition: int, batch: pa.RecordBatch, producer: Producer | None
    ) -> PartitionAppend:
        payload: memoryview | None = None
        first: TopicInfo | None = None  # the definition the batch was validated against
        for _ in range(_APPEND_ATTEMPTS):
            definition = self._definitions.get(topic)
            if definition is None:
                self.topic(topic)
                definition = self._definitions[topic]
            info = self._decode(definition)
            if first is None:
                first = info
            elif (info.schema, info.partitions) != (first.schema, first.partitions):
                raise TopicExistsError(
                    f"topic {topic!r} was redefined (schema or partitions) while appending; "
                    "the batch was not stored: validate it against the new definition")
            _check_partition(info, partition)
            if batch.num_rows == 0:
                return PartitionAppend(self.offsets(topic, partition)[1], 0, self.clock.now_us())
            keys = self._keys.partition(topic, partition)
            end = self._ends.get((topic, partition))
            if end is None:
                end = self._end_of(topic, partition, keys)
            if payload is None:
                payload = memoryview(payload_of(batch, info.schema))
            times = np.asarray(batch.column(info.schema.event_time).view(pa.int64()))
            base, at = end[0], max(self.clock.now_us(), end[1])
            head: dict[str, Any] = {"n": batch.num_rows, "at": at, "et": int(times.max()),
                    "p": producer.id if producer else "",
                    "q": producer.sequence if producer else "", "u": os.urandom(8)}
            with failures(self._where, f"appending to {topic}[{partition}]"):
                pipe = self._client.pipeline(transaction=True)
                pipe.eval(APPEND, 6, self._keys.topics, keys.meta, keys.log,
                          keys.index, keys.producers, keys.parked, topic, definition, base,
                          at, head["n"], head["et"], head["u"], head["p"], head["q"],
                          payload.nbytes)
                frame: Any = {**head, "d": payload}
                pipe.xadd(keys.log, frame, id=entry_id(base), nomkstream=True)
                pipe.eval(UNPARK, 2, keys.parked, keys.log)
                (status, *placed), added, _ = pipe.execute()
            if status == b"stored":
                if added != entry_id(base).encode():
                    raise CorruptLogError(f"{topic}[{partition}]: the frame at {base} was "
                                          f"checked but not stored ({added!r})")
                stored, count, at = (int(v) for v in placed)
                self._ends[(topic, partition)] = (stored + count, at)
                return PartitionAppend(stored, count, at)
            if status == b"duplicate":
                stored, count, at = (int(v) for v in placed)
                return PartitionAppend(stored, count, at, duplicate=True)
            if status == b"moved":  # another writer appended: propose its end
                self._ends[(topic, partition)] = (int(placed[0]), int(placed[1]))
                continue
            self._forget(topic)  # redefined or deleted since we read it: read it again
        raise BackendError(f"{topic}[{partition}] keeps changing under other writers; the "
                           f"append was not stored")

    def _end_of(self, topic: str, partition: int, keys: PartitionKeys) -> tuple[int, int]:
        """The partition's end offset and last append time, as stored now."""
        with failures(self._where, f"reading the end of {topic}[{partition}]"):
            end, at = self._client.hmget(keys.meta, ["end", "append_time"])
        return int(end or 0), int(at or 0)

    def read(self, topic: str, partition: int, offset: int, max_events: int) -> pa.RecordBatch:
        keys = self._keys.partition(topic, partition)
        tail = self._tails.get((topic, partition))
        if tail is not None and not tail.head.holds(offset):
            tail = None
        with failures(self._where, f"reading {topic}[{partition}] at {offset}"):
            pipe = self._client.pipeline(transaction=True)
            pipe.hget(self._keys.topics, topic)
            pipe.hmget(keys.meta, ["start", "end"])
            # The frame holding the offset: its metadata only if we hold it already.
            pipe.xrevrange(keys.log if tail is None else keys.index, entry_id(offset), "-",
                           count=1)
            reach = min(max_events, COMBINE_BELOW)  # read_frames uses no frame past this
            if reach > 1:  # the following frames the read may use
                pipe.xrange(keys.log, entry_id(offset + 1), entry_id(offset + reach - 1))
            definition, bounds, first, *rest = pipe.execute()
        info = self._info(topic, definition)
        _check_partition(info, partition)
        start, end = _bounds(bounds)
        if not start <= offset <= end:
            raise OffsetOutOfRangeError(
                f"offset {offset} is outside {topic}[{partition}]'s [{start}, {end}]"
            )
        if offset == end:
            return empty_batch(info.schema)
        if not first:
            raise BackendError(f"{topic}[{partition}]: no frame holds offset {offset}")
        if tail is None:
            frames = [decode(first[0], info.schema)]
        elif head_of(first[0]).uid == tail.head.uid:
            frames = [tail]
        else:  # the topic was deleted and created again since
            self._tails.pop((topic, partition), None)
            return self.read(topic, partition, offset, max_events)
        frames += [decode(entry, info.schema) for entry in (rest[0] if rest else [])]
        index = FrameIndex(start=frames[0].head.base)
        for f in frames:
            index.add(f.head.base, f.head.count, f.head.append_time, f.head.max_event_time)
        batch = read_frames(index, lambda i: frames[i].batch, offset, max_events,
                            lambda: empty_batch(info.schema))
        following = offset + batch.num_rows
        self._tails.pop((topic, partition), None)
        for f in frames:
            if f.head.holds(following):
                self._tails[(topic, partition)] = f
        return batch

    def offsets(self, topic: str, partition: int) -> tuple[int, int]:
        keys = self._keys.partition(topic, partition)
        with failures(self._where, f"reading the offsets of {topic}[{partition}]"):
            pipe = self._client.pipeline(transaction=True)
            pipe.hget(self._keys.topics, topic)
            pipe.hmget(keys.meta, ["start", "end"])
            definition, bounds = pipe.execute()
        _check_partition(self._info(topic, definition), partition)
        return _bounds(bounds)

    # -- seeking ---------------------------------------------------------------

    def seek_event_time(self, topic: str, partition: int, time_us: int) -> int:
        info = self.topic(topic)
        _check_partition(info, partition)
        keys = self._keys.partition(topic, partition)
        cursor = "-"
        while True:  # chunks of the index, so the server is never busy for long
            with failures(self._where, f"seeking {topic}[{partition}] by event time"):
                pipe = self._client.pipeline(transaction=True)
                pipe.xrange(keys.index, cursor, "+", count=_SCAN_FRAMES)
                pipe.hget(keys.meta, "end")
                entries, end = pipe.execute()
            if not entries:
                return int(end or 0)
            found = self._seek_in(keys, info, [head_of(entry) for entry in entries], time_us)
            if found is not None:
                return found
            cursor = "(" + text(entries[-1][0])

    def _seek_in(
        self, keys: PartitionKeys, info: TopicInfo, heads: list[FrameHead], time_us: int
    ) -> int | None:
        """The first offset at or after ``time_us`` in these frames, if any."""
        index = FrameIndex(start=heads[0].base)
        for h in heads:
            index.add(h.base, h.count, h.append_time, h.max_event_time)
        found = seek_event_time(
            index, lambda i: self._load(keys, info, index.bases[i]), info.schema.event_time,
            time_us,
        )
        return found if found < index.end else None

    def seek_append_time(self, topic: str, partition: int, time_us: int) -> int:
        _check_partition(self.topic(topic), partition)
        keys = self._keys.partition(topic, partition)
        with failures(self._where, f"seeking {topic}[{partition}] by append time"):
            return int(self._seek_append_time(keys=[keys.meta, keys.index], args=[time_us]))

    # -- consumer groups -------------------------------------------------------

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        info = self.topic(topic)
        for partition in offsets:
            _check_partition(info, partition)
        with failures(self._where, f"committing offsets of group {group!r}"):
            pipe = self._client.pipeline(transaction=True)
            pipe.sadd(self._keys.groups, group)
            if offsets:
                pipe.hset(self._keys.offsets(group, topic),
                          mapping={str(p): str(o) for p, o in offsets.items()})
            pipe.execute()

    def committed(self, group: str, topic: str) -> dict[int, int]:
        with failures(self._where, f"reading offsets of group {group!r}"):
            pipe = self._client.pipeline(transaction=True)
            pipe.sismember(self._keys.groups, group)
            pipe.hgetall(self._keys.offsets(group, topic))
            known, offsets = pipe.execute()
        if not known:
            raise UnknownConsumerGroupError(group)
        return {int(p): int(o) for p, o in offsets.items()}

    def groups(self) -> list[str]:
        with failures(self._where, "listing consumer groups"):
            return [text(g) for g in self._client.smembers(self._keys.groups)]

    def join(self, group: str, member: str) -> GroupMembership:
        return GroupMembership(self._client, self._keys.members(group), member,
                               timeout_ms=self.session_timeout_ms, where=self._where)

    # -- retention -------------------------------------------------------------

    def set_retention(self, topic: str, retention: Retention) -> TopicInfo:
        for _ in range(_ATTEMPTS):
            with failures(self._where, f"reading topic {topic!r}"):
                found = self._client.hget(self._keys.topics, topic)
            old = raw(found) if found is not None else None
            info = msgspec.structs.replace(self._info(topic, old), retention=retention)
            assert old is not None  # else _info raised
            new = msgspec.json.encode(info)
            with failures(self._where, f"changing the retention of {topic!r}"):
                if self._swap_definition(keys=[self._keys.topics], args=[topic, old, new]):
                    return self._remember(topic, new)
        raise BackendError(f"topic {topic!r} keeps changing; its retention was not changed")

    def enforce_retention(self, topic: str) -> int:
        info = self.topic(topic)
        keep = info.retention
        if keep.max_age_us is None and keep.max_bytes is None:
            return 0
        limits = [self.clock.now_us(), _or_empty(keep.max_age_us), _or_empty(keep.max_bytes)]
        with failures(self._where, f"enforcing the retention of {topic!r}"):
            pipe = self._client.pipeline(transaction=False)
            for p in range(info.partitions):
                keys = self._keys.partition(topic, p)
                self._trim(keys=[keys.meta, keys.log, keys.index], args=limits, client=pipe)
            return sum(int(dropped) for dropped in pipe.execute())

    # -- internals -------------------------------------------------------------

    def _info(self, name: str, definition: bytes | None) -> TopicInfo:
        if definition is None:
            self._forget(name)
            raise UnknownTopicError(name)
        return self._remember(name, definition)

    def _remember(self, name: str, definition: bytes) -> TopicInfo:
        if self._definitions.get(name) != definition:
            self._forget(name)
            self._definitions[name] = definition
        return self._decode(definition)

    def _decode(self, definition: bytes) -> TopicInfo:
        info = self._decoded.get(definition)
        if info is None:
            if len(self._decoded) > 1024:
                self._decoded.clear()
            try:
                info = msgspec.json.decode(definition, type=TopicInfo)
            except msgspec.DecodeError as exc:
                raise CorruptLogError(f"unreadable topic definition {definition!r}: {exc}") from exc
            self._decoded[definition] = info
        return info

    def _forget(self, topic: str | None = None) -> None:
        """Drop what is cached about ``topic`` (or every topic)."""
        if topic is None:
            self._definitions.clear()
            self._tails.clear()
            self._ends.clear()
            return
        self._definitions.pop(topic, None)
        for tp in [tp for tp in self._tails if tp[0] == topic]:
            del self._tails[tp]
        for tp in [tp for tp in self._ends if tp[0] == topic]:
            del self._ends[tp]

    def _load(self, keys: PartitionKeys, info: TopicInfo, base: int) -> pa.RecordBatch:
        """The events of the frame at ``base`` (none if retention just removed it)."""
        with failures(self._where, f"reading the frame at {base}"):
            entries: Any = self._client.xrange(keys.log, entry_id(base), entry_id(base), count=1)
        return decode(entries[0], info.schema).batch if entries else empty_batch(info.schema)


def _check_partition(info: TopicInfo, partition: int) -> None:
    if not 0 <= partition < info.partitions:
        raise UnknownPartitionError(f"{info.name!r} has no partition {partition}")


def _bounds(raw: list[bytes | None]) -> tuple[int, int]:
    start, end = raw
    return int(start or 0), int(end or 0)


def _or_empty(value: int | None) -> int | str:
    return "" if value is None else value
