"""The Kafka log backend: a Headwater topic is a Kafka topic, an offset a Kafka offset.

Every event is one Kafka message (see :mod:`~headwater.log.kafka.codec`), so the
log's offsets are Kafka's, dense from 0, and any Kafka consumer can read a topic.
What Kafka has no place for (schemas, known groups, group members) lives in compacted
topics (:mod:`~headwater.log.kafka.tables`). Group offsets are Kafka group offsets.

>>> from headwater.log import Log, Schema
>>> log = Log(KafkaBackend("kafka+mock://"))  # librdkafka's mock cluster, in process
>>> schema = Schema.of({"user": "string", "ts": "timestamp"}, key="user", event_time="ts")
>>> log.create_topic("clicks", schema, partitions=2).partitions
2
>>> log.append("clicks", [{"user": "ada", "ts": 1}, {"user": "ada", "ts": 2}]).offsets.tolist()
[0, 1]
>>> log.read("clicks", 1).batch.column("ts").cast("int64").to_pylist()
[1, 2]
>>> log.close()
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import ClassVar
from urllib.parse import parse_qsl, urlsplit

import msgspec
import numpy as np
import pyarrow as pa
from confluent_kafka import Message

from headwater.errors import (
    BackendError,
    ConfigError,
    OffsetOutOfRangeError,
    TopicExistsError,
    UnknownConsumerGroupError,
    UnknownPartitionError,
    UnknownTopicError,
)
from headwater.log.backend import Producer
from headwater.log.frames import ProducerTable
from headwater.log.kafka import mock, scans
from headwater.log.kafka.admin import Admin, MockAdmin
from headwater.log.kafka.clients import Connection
from headwater.log.kafka.codec import EventCodec, Trailer
from headwater.log.kafka.membership import DEFAULT_LEASE_US, KafkaMembership
from headwater.log.kafka.reader import Reader, offset_of
from headwater.log.kafka.tables import GROUPS, TABLES, TOPICS, Tables
from headwater.log.kafka.writer import Writer
from headwater.log.records import PartitionAppend, Retention, TopicInfo, empty_batch
from headwater.log.schema import OFFSET
from headwater.time import Clock, SystemClock

__all__ = ["KafkaBackend"]

_NEVER = -(2**63)
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,100}$")


class KafkaBackend:
    """Topics, partitions and group offsets in a Kafka cluster.

    ``url`` is ``kafka://host:port[,host:port]`` (a query string passes librdkafka
    settings: ``?security.protocol=SSL``; ``?prefix=team1`` keeps every topic and group
    of this backend under ``team1.``, so several users or test runs share a cluster
    without meeting) or ``kafka+mock://`` (``?brokers=3``), which
    starts librdkafka's mock cluster in this process; the backend that started it keeps
    it running until :meth:`close`, and ``bootstrap_servers`` says where it listens.
    The mock holds about 5 MiB per partition (:mod:`~headwater.log.kafka.mock`): an
    append that makes it drop older events raises a :class:`BackendError` naming them.
    ``timeout_s`` bounds every wait for the cluster.
    """

    #: Events at the end of a partition read for producer trailers the first time an
    #: idempotent append reaches it; older batches are not recognised as duplicates.
    PRODUCER_SCAN_EVENTS: ClassVar[int] = 100_000

    def __init__(self, url: str, *, clock: Clock | None = None, timeout_s: float = 30.0,
                 member_lease_us: int = DEFAULT_LEASE_US) -> None:
        self.clock: Clock = clock or SystemClock()
        self._lease_us = member_lease_us
        self._closers: list[Callable[[], None]] = []
        self._closed = False
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        prefix = options.pop("prefix", "")
        if prefix and not _PREFIX.match(prefix):
            raise ConfigError(f"Kafka prefix {prefix!r}: letters, digits, '_', '.' or '-', "
                              "starting with a letter or digit")
        self._prefix = f"{prefix}." if prefix else ""
        cluster: mock.MockCluster | None = None
        if parts.scheme == "kafka+mock":
            cluster = mock.MockCluster(int(options.pop("brokers", "1")))
            self._closers.append(cluster.close)
            self.bootstrap_servers = cluster.bootstrap_servers
        elif parts.scheme == "kafka" and parts.netloc:
            self.bootstrap_servers = parts.netloc
            cluster = mock.find(self.bootstrap_servers)
        else:
            raise ConfigError(f"{url!r} is not a Kafka location: use kafka://host:port or "
                              "kafka+mock://")
        self._cluster = cluster
        connection = Connection(self.bootstrap_servers, timeout_s, options, cluster is not None)
        client_id = f"headwater-{uuid.uuid4().hex[:12]}"
        try:
            self._admin = (MockAdmin(connection, client_id, cluster) if cluster
                           else Admin(connection, client_id))
            self._writer = Writer(connection, client_id)
            self._closers.append(self._writer.close)
            self._reader = Reader(connection, client_id)
            self._closers.append(self._reader.close)
            existing = self._reader.topics()
            for name in TABLES:
                if self._prefix + name not in existing:
                    self._admin.create_topic(self._prefix + name, 1, compacted=True)
            self._tables = Tables(connection, self._writer, self._reader, client_id,
                                  prefix=self._prefix)
            self._closers.append(self._tables.close)
        except BaseException:
            with contextlib.suppress(Exception):
                self.close()
            raise
        self._lock = threading.RLock()
        self._topics: dict[str, TopicInfo] = {}
        self._codecs: dict[str, EventCodec] = {}
        self._producers: dict[tuple[str, int], ProducerTable] = {}
        self._last_append: dict[tuple[str, int], int] = {}
        self._groups: set[str] = set()
        self._members: list[KafkaMembership] = []
        self._load_catalog()

    # -- topics ----------------------------------------------------------------

    def create_topic(self, info: TopicInfo) -> TopicInfo:
        with self._lock:
            self._load_catalog()
            existing = self._topics.get(info.name)
            if existing is not None:
                if existing != info:
                    raise TopicExistsError(f"topic {info.name!r} exists with another definition")
                return existing
            name = self._kafka(info.name)
            self._admin.create_topic(name, info.partitions)
            self._writer.learn(name)
            self._reader.learn(name)
            self._tables.put(TOPICS, info.name.encode(), msgspec.json.encode(info))
            self._topics[info.name] = info
            return info

    def delete_topic(self, name: str) -> None:
        with self._lock:
            self.topic(name)
            self._admin.delete_topic(self._kafka(name))
            self._tables.put(TOPICS, name.encode(), None)
            self._reader.forget(self._kafka(name))
            self._topics.pop(name, None)
            self._codecs.pop(name, None)
            for cache in (self._producers, self._last_append):
                for key in [k for k in cache if k[0] == name]:
                    del cache[key]

    def append_target(self, name: str) -> TopicInfo:
        return self.topic(name)

    def topic(self, name: str) -> TopicInfo:
        with self._lock:
            info = self._topics.get(name)
            if info is None:
                self._load_catalog()
                info = self._topics.get(name)
                if info is None:
                    raise UnknownTopicError(name)
            return info

    def topics(self) -> list[TopicInfo]:
        with self._lock:
            self._load_catalog()
            return list(self._topics.values())

    # -- appending and reading -------------------------------------------------

    def append(self, topic: str, partition: int, batch: pa.RecordBatch,
               producer: Producer | None) -> PartitionAppend:
        with self._lock:
            info = self._partition(topic, partition)
            where = (topic, partition)
            if producer is not None:
                seen = self._producer_table(topic, partition).duplicate(producer)
                if seen is not None:
                    return seen
            now = max(self.clock.now_us(), self._last_append_time(topic, partition))
            n = batch.num_rows
            if n == 0:
                return PartitionAppend(self._reader.watermarks(self._kafka(topic), partition)[1],
                                       0, now)
            codec = self._codec(info)
            base = self._writer.append(
                self._kafka(topic), partition, codec.keys(batch), codec.values(batch, now),
                max(0, now // 1000), Trailer(n, producer).headers(),
            )
            placement = PartitionAppend(base, n, now)
            self._last_append[where] = now
            table = self._producers.get(where)
            if table is not None:
                table.record(producer, placement)
            if self._cluster is not None:
                self._check_kept(self._cluster, topic, partition, placement)
            return placement

    def read(self, topic: str, partition: int, offset: int, max_events: int) -> pa.RecordBatch:
        with self._lock:
            info = self._partition(topic, partition)
            start, end = self._reader.watermarks(self._kafka(topic), partition)
            if not start <= offset <= end:
                raise OffsetOutOfRangeError(
                    f"offset {offset} is outside {topic}[{partition}]'s [{start}, {end}]"
                )
            count = min(max_events, end - offset)
            if count <= 0:
                return empty_batch(info.schema)
            messages = self._reader.fetch(self._kafka(topic), partition, offset, count)
            return self._decode(info, partition, messages)

    def offsets(self, topic: str, partition: int) -> tuple[int, int]:
        with self._lock:
            self._partition(topic, partition)
            return self._reader.watermarks(self._kafka(topic), partition)

    def seek_event_time(self, topic: str, partition: int, time_us: int) -> int:
        """Scans from the start: events need not arrive in event-time order."""
        with self._lock:
            info = self._partition(topic, partition)
            name = self._kafka(topic)
            offset, end = self._reader.watermarks(name, partition)
            while offset < end:
                count = min(scans.CHUNK, end - offset)
                batch = self._decode(info, partition,
                                     self._reader.fetch(name, partition, offset, count))
                times = np.asarray(batch.column(info.schema.event_time).cast(pa.int64()))
                hits = np.flatnonzero(times >= time_us)
                if len(hits):
                    return int(batch.column(OFFSET)[int(hits[0])].as_py())
                offset = int(batch.column(OFFSET)[-1].as_py()) + 1
            return end

    def seek_append_time(self, topic: str, partition: int, time_us: int) -> int:
        """Kafka's time index (milliseconds) narrows the range, then a binary search on
        the exact append times (they never decrease within a partition) finishes."""
        with self._lock:
            self._partition(topic, partition)
            name = self._kafka(topic)
            low, high = self._reader.watermarks(name, partition)
            if low < high and self._admin.time_index:
                hint = self._reader.offset_for_time(name, partition, max(0, time_us // 1000))
                if hint < 0:
                    return high
                low = max(low, hint)
            return scans.first_appended_at(self._reader, name, partition, time_us, low, high)

    # -- consumer groups -------------------------------------------------------

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        with self._lock:
            for partition in offsets:
                self._partition(topic, partition)
            if group not in self._groups:
                if group.encode() not in self._tables.rows(GROUPS):
                    now = msgspec.msgpack.encode(self.clock.now_us())
                    self._tables.put(GROUPS, group.encode(), now)
                self._groups.add(group)
            self._admin.commit(self._kafka(group), self._kafka(topic), offsets)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        with self._lock:
            info = self.topic(topic)
            if group not in self._groups:
                if group.encode() not in self._tables.rows(GROUPS):
                    raise UnknownConsumerGroupError(group)
                self._groups.add(group)
            return self._admin.committed(self._kafka(group), self._kafka(topic), info.partitions)

    def groups(self) -> list[str]:
        with self._lock:
            return [key.decode() for key in self._tables.rows(GROUPS)]

    def join(self, group: str, member: str) -> KafkaMembership:
        with self._lock:
            membership = KafkaMembership(self._tables, self.clock, group, member,
                                         self._lease_us)
            self._members = [m for m in self._members if not m.closed] + [membership]
            return membership

    # -- retention -------------------------------------------------------------

    def set_retention(self, topic: str, retention: Retention) -> TopicInfo:
        with self._lock:
            self._load_catalog()
            info = msgspec.structs.replace(self.topic(topic), retention=retention)
            self._tables.put(TOPICS, topic.encode(), msgspec.json.encode(info))
            self._topics[topic] = info
            return info

    def enforce_retention(self, topic: str) -> int:
        """Drops whole appends, oldest first, never the newest, by moving the start."""
        with self._lock:
            self._load_catalog()  # another process may have changed the retention
            info = self.topic(topic)
            keep = info.retention
            if keep.max_age_us is None and keep.max_bytes is None:
                return 0
            dropped, name = 0, self._kafka(topic)
            for partition in range(info.partitions):
                start, end = self._reader.watermarks(name, partition)
                if start == end:
                    continue
                cut = start
                if keep.max_age_us is not None:
                    cutoff = self.clock.now_us() - keep.max_age_us
                    cut = max(cut, self.seek_append_time(topic, partition, cutoff))
                if keep.max_bytes is not None:
                    cut = max(cut, scans.bytes_cut(self._reader, name, partition, start, end,
                                                   keep.max_bytes))
                cut = min(cut, scans.newest_append_start(self._reader, name, partition,
                                                         start, end))
                if cut > start:
                    self._admin.delete_records(name, partition, cut)
                    dropped += cut - start
            return dropped

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        errors: list[BaseException] = []
        for membership in getattr(self, "_members", []):
            try:
                membership.close()
            except BackendError as exc:
                errors.append(exc)
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise BackendError(f"Kafka: closing the backend failed: {errors[0]}") from errors[0]

    # -- internals -------------------------------------------------------------

    def _kafka(self, name: str) -> str:
        """The name in Kafka of this backend's topic or group ``name`` (the prefix's)."""
        return self._prefix + name

    def _load_catalog(self) -> None:
        rows = self._tables.rows(TOPICS)
        self._topics = {key.decode(): msgspec.json.decode(value, type=TopicInfo)
                        for key, value in rows.items()}

    def _partition(self, topic: str, partition: int) -> TopicInfo:
        info = self.topic(topic)
        if not 0 <= partition < info.partitions:
            raise UnknownPartitionError(f"{topic!r} has no partition {partition}")
        return info

    def _codec(self, info: TopicInfo) -> EventCodec:
        codec = self._codecs.get(info.name)
        if codec is None or codec.schema != info.schema:
            codec = self._codecs[info.name] = EventCodec(info.schema)
        return codec

    def _decode(self, info: TopicInfo, partition: int, messages: list[Message]
                ) -> pa.RecordBatch:
        first, last = offset_of(messages[0]), offset_of(messages[-1])
        if last - first + 1 == len(messages):
            offsets = np.arange(first, last + 1, dtype=np.int64)
        else:
            offsets = np.fromiter(map(offset_of, messages), np.int64, len(messages))
        return self._codec(info).decode([m.value() or b"" for m in messages], offsets,
                                        f"{info.name}[{partition}]")

    def _check_kept(self, cluster: mock.MockCluster, topic: str, partition: int,
                    placement: PartitionAppend) -> None:
        """Raise if the mock cluster dropped older events to make room for an append."""
        start = self._reader.watermarks(self._kafka(topic), partition)[0]
        lost = cluster.dropped(self._kafka(topic), partition, start)
        if lost:
            last = placement.base_offset + placement.count - 1
            raise BackendError(
                f"Kafka mock cluster: {topic}[{partition}] outgrew the mock, which keeps "
                f"{mock.PARTITION_MAX_BYTES // 2**20} MiB and {mock.PARTITION_MAX_BATCHES:,} "
                f"record batches per partition: it dropped offsets {lost.start}..{lost.stop - 1} "
                f"({len(lost)} events; the start offset is now {start}). This append is "
                f"stored at {placement.base_offset}..{last}. Spread the events over more "
                "partitions, append fewer, or use a Kafka broker"
            )

    def _last_append_time(self, topic: str, partition: int) -> int:
        known = self._last_append.get((topic, partition))
        if known is None:
            name = self._kafka(topic)
            start, end = self._reader.watermarks(name, partition)
            known = (scans.append_time_at(self._reader, name, partition, end - 1)
                     if end > start else _NEVER)
            self._last_append[(topic, partition)] = known
        return known

    def _producer_table(self, topic: str, partition: int) -> ProducerTable:
        """The partition's producer table, rebuilt from trailers on first use."""
        table = self._producers.get((topic, partition))
        if table is None:
            name = self._kafka(topic)
            start, end = self._reader.watermarks(name, partition)
            table = scans.producer_table(self._reader, name, partition, start, end,
                                         self.PRODUCER_SCAN_EVENTS)
            self._producers[(topic, partition)] = table
        return table
