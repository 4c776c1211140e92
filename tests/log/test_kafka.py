"""What the Kafka backend does beyond the log contract: plain Kafka data, native group
offsets, restarts, leases, and failures. Runs against librdkafka's mock cluster, or the
cluster at ``HEADWATER_TEST_KAFKA_BOOTSTRAP`` (see :mod:`tests.log.harness`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from headwater.errors import BackendError, ConfigError, CorruptLogError, MissingExtraError
from headwater.log import Log, Schema
from headwater.log.schema import TIMESTAMP
from headwater.testing import ManualClock
from tests.extras import import_without, require_extra
from tests.log.harness import START_US, KafkaTarget

if TYPE_CHECKING:
    from headwater.log.kafka import KafkaBackend

SCHEMA = Schema.of({"user": "string", "n": "int64", "ts": "timestamp"}, key="user",
                   event_time="ts")
SECOND = 1_000_000
FLOATS = tuple(f"x{i}" for i in range(5))
WIDE = Schema.of({"key": "string", "ts": "timestamp", **dict.fromkeys(FLOATS, "float64")},
                 key="key", event_time="ts")
"""The log benchmark's events: about 100 bytes each as Kafka messages."""


class Cluster:
    """A cluster (the mock, or a real one: :class:`KafkaTarget`), and logs opened onto it
    as separate processes would. On the mock, names in Kafka are the log's own."""

    def __init__(self) -> None:
        self.clock = ManualClock(START_US)
        self.target = KafkaTarget(self.clock, prefixed=False)
        self.bootstrap = self.target.bootstrap
        self.name = self.target.name
        self.logs: list[Log] = []

    def backend(self, **kwargs: Any) -> KafkaBackend:
        from headwater.log.kafka import KafkaBackend

        kwargs.setdefault("timeout_s", 10)  # a stuck cluster fails the test, not the run
        return KafkaBackend(self.target.url, clock=self.clock, **kwargs)

    def open(self, **kwargs: Any) -> Log:
        log = Log(self.backend(**kwargs), clock=self.clock)
        self.logs.append(log)
        return log

    def consumer(self) -> Any:
        import confluent_kafka

        # The mock answers a fetch waiting for data only when its wait is over.
        return confluent_kafka.Consumer({"bootstrap.servers": self.bootstrap, "group.id": "plain",
                                         "enable.auto.commit": False, "fetch.wait.max.ms": 10})

    def close(self) -> None:
        for log in self.logs:
            log.close()
        self.target.close()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    require_extra("confluent_kafka", "kafka")
    c = Cluster()
    yield c
    c.close()


def events(users: list[str], start: int = 0) -> pa.RecordBatch:
    return pa.record_batch({
        "user": pa.array(users),
        "n": pa.array(range(start, start + len(users)), pa.int64()),
        "ts": pa.array([START_US + i * SECOND for i in range(len(users))], pa.int64()
                       ).cast(TIMESTAMP),
    })


def wide_events(first: int, count: int) -> pa.RecordBatch:
    rng = np.random.default_rng(first)
    return pa.record_batch({
        "key": pa.array([f"user-{i:06d}" for i in rng.integers(0, 1000, count)]),
        "ts": pa.array(START_US + 100 * np.arange(first, first + count)).cast(TIMESTAMP),
        **{name: pa.array(rng.standard_normal(count)) for name in FLOATS},
    })


def drain(log: Log, group: str, topic: str, total: int, max_events: int) -> list[int]:
    """Poll a new group until ``total`` events came or none came for 5 s; the
    ``ts`` values read, in microseconds."""
    seen: list[int] = []
    with log.consumer(group, topic) as consumer:
        quiet_since = time.monotonic()
        while len(seen) < total and time.monotonic() - quiet_since < 5:
            for fetched in consumer.poll(max_events=max_events, timeout_s=0.2):
                seen.extend(fetched.batch.column("ts").cast(pa.int64()).to_pylist())
                quiet_since = time.monotonic()
        assert consumer.lag() == dict.fromkeys(consumer.assignment(), 0)
    return seen


def consume(consumer: Any, topic: str, partition: int, count: int) -> list[Any]:
    from confluent_kafka import TopicPartition

    consumer.list_topics(topic, timeout=5)  # else the first fetch waits a metadata refresh
    consumer.assign([TopicPartition(topic, partition, 0)])
    got: list[Any] = []
    deadline = time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        got.extend(consumer.consume(count - len(got), 0.5))
    return got


def test_a_missing_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    error = import_without(monkeypatch, "headwater.log.kafka", "confluent_kafka")
    assert str(error) == (
        "The Kafka log backend needs the 'confluent-kafka' package: "
        "pip install 'headwater[kafka]'"
    )
    assert error.extra == "kafka"
    from headwater.log import open_backend

    with pytest.raises(MissingExtraError, match=r"headwater\[kafka\]"):
        open_backend("kafka://127.0.0.1:9092")


def test_events_are_plain_kafka_messages(cluster: Cluster) -> None:
    import confluent_kafka

    log = cluster.open()
    log.create_topic("orders", SCHEMA, partitions=3)
    cluster.clock.advance(1234)  # an append time with microseconds
    result = log.append("orders", events([f"u{i % 5}" for i in range(12)]))
    consumer = cluster.consumer()
    try:
        orders = cluster.name("orders")
        assert len(consumer.list_topics(orders, timeout=5).topics[orders].partitions) == 3
        for p in range(3):
            rows = (result.partitions == p).nonzero()[0]
            messages = consume(consumer, orders, p, len(rows))
            assert [m.offset() for m in messages] == result.offsets[rows].tolist()
            for row, message in zip(rows.tolist(), messages, strict=True):
                key = f"u{row % 5}".encode()
                assert message.key() == key
                # Java's default partitioner would put the key in the same partition.
                assert confluent_kafka.murmur2(key, 3) == p
                assert message.timestamp() == (confluent_kafka.TIMESTAMP_CREATE_TIME,
                                               (START_US + 1234) // 1000)
                assert msgspec.msgpack.decode(message.value()) == [
                    START_US + 1234, key.decode(), row, START_US + row * SECOND
                ]
            headers = [m.headers() for m in messages]
            assert headers[:-1] == [None] * (len(messages) - 1)
            assert headers[-1] == [("hw.count", str(len(messages)).encode())]
    finally:
        consumer.close()


def test_integer_keys_are_big_endian_longs(cluster: Cluster) -> None:
    import confluent_kafka

    log = cluster.open()
    schema = Schema.of({"id": "int64", "ts": "timestamp"}, key="id", event_time="ts")
    log.create_topic("items", schema, partitions=4)
    ids = [-1, 0, 7, 2**40]
    result = log.append("items", [{"id": i, "ts": START_US} for i in ids])
    consumer = cluster.consumer()
    try:
        for i, p in zip(ids, result.partitions.tolist(), strict=True):
            key = i.to_bytes(8, "big", signed=True)
            assert confluent_kafka.murmur2(key, 4) == p
            stored = consume(consumer, cluster.name("items"), p,
                             int((result.partitions == p).sum()))
            assert key in [m.key() for m in stored]
    finally:
        consumer.close()


def test_group_offsets_are_the_kafka_groups_offsets(cluster: Cluster) -> None:
    from confluent_kafka import Consumer, TopicPartition

    log = cluster.open()
    log.create_topic("orders", SCHEMA, partitions=2)
    log.append("orders", events([f"u{i}" for i in range(10)]))
    with log.consumer("billing", "orders") as consumer:
        consumer.poll(max_events=100)
        consumer.commit()
    plain = Consumer({"bootstrap.servers": cluster.bootstrap,
                      "group.id": cluster.name("billing")})
    try:
        stored = plain.committed([TopicPartition(cluster.name("orders"), p) for p in range(2)],
                                 timeout=5)
        assert {tp.partition: tp.offset for tp in stored} == log.committed("billing", "orders")
        assert sum(tp.offset for tp in stored) == 10
    finally:
        plain.close()
    assert cluster.open().groups() == ["billing"]


def test_idempotence_across_a_restart_uses_the_trailers(cluster: Cluster) -> None:
    log = cluster.open()
    log.create_topic("orders", SCHEMA)
    placed = [log.append("orders", events(["a", "b"], 2 * s), producer_id="p", sequence=s)
              for s in range(3)]
    log.append("orders", events(["c"]))  # no producer: no producer trailer
    log.close()
    log = cluster.open()
    again = log.append("orders", events(["a", "b"], 2), producer_id="p", sequence=1)
    assert again.duplicate
    assert again.offsets.tolist() == placed[1].offsets.tolist() == [2, 3]
    assert again.append_time == placed[1].append_time
    fresh = log.append("orders", events(["a"]), producer_id="p", sequence=3)
    assert not fresh.duplicate
    assert fresh.offsets.tolist() == [7]


def test_append_time_seeks_are_exact_within_a_millisecond(cluster: Cluster) -> None:
    log = cluster.open()
    log.create_topic("orders", SCHEMA)
    for step in (100, 300, 500):  # three appends in the same millisecond
        cluster.clock.advance(step)
        log.append("orders", events(["a", "b"]))
    times = log.read("orders", 0).batch.column("_append_time").cast(pa.int64()).to_pylist()
    assert times == [START_US + 100] * 2 + [START_US + 400] * 2 + [START_US + 900] * 2
    assert log.seek("orders", 0, append_time=START_US + 101) == 2
    assert log.seek("orders", 0, append_time=START_US + 400) == 2
    assert log.seek("orders", 0, append_time=START_US + 401) == 4
    assert log.seek("orders", 0, append_time=START_US + 901) == 6


def test_retention_moves_the_kafka_start_offset(cluster: Cluster) -> None:
    from confluent_kafka import TopicPartition

    from headwater.log import Retention

    log = cluster.open()
    log.create_topic("orders", SCHEMA, retention=Retention(max_age_us=10 * SECOND))
    log.append("orders", events(["a", "b", "c"]))
    cluster.clock.advance(20 * SECOND)
    log.append("orders", events(["d"]))
    assert log.enforce_retention("orders") == 3
    consumer = cluster.consumer()
    try:
        assert consumer.get_watermark_offsets(TopicPartition(cluster.name("orders"), 0),
                                              timeout=5) == (3, 4)
    finally:
        consumer.close()
    assert log.enforce_retention("orders") == 0  # the newest append always stays
    log.append("orders", events(["e"]))  # a start moved by retention is no loss


def test_a_member_that_stops_checking_loses_its_partitions(cluster: Cluster) -> None:
    log = cluster.open(member_lease_us=10 * SECOND)
    log.create_topic("orders", SCHEMA, partitions=2)
    crashed = cluster.open(member_lease_us=10 * SECOND)
    a = log.consumer("g", "orders", member="a")
    b = crashed.consumer("g", "orders", member="b")
    assert a.assignment() == [("orders", 0)]
    assert b.assignment() == [("orders", 1)]
    cluster.clock.advance(5 * SECOND)
    assert a.assignment() == [("orders", 0)]  # b's lease still runs
    cluster.clock.advance(6 * SECOND)
    assert a.assignment() == [("orders", 0), ("orders", 1)]
    a.close()


def test_a_foreign_message_is_reported_with_its_offset(cluster: Cluster) -> None:
    from confluent_kafka import Producer

    log = cluster.open()
    log.create_topic("orders", SCHEMA)
    log.append("orders", events(["a"]))
    producer = Producer({"bootstrap.servers": cluster.bootstrap})
    producer.produce(cluster.name("orders"), b'{"not": "headwater"}', partition=0)
    producer.flush(5)
    with pytest.raises(CorruptLogError, match=r"orders\[0\]: a message at offset 1"):
        log.read("orders", 0)


def test_an_unreachable_cluster_raises_a_backend_error() -> None:
    require_extra("confluent_kafka", "kafka")
    from headwater.log.kafka import KafkaBackend

    started = time.monotonic()
    with pytest.raises(BackendError, match="Kafka"):
        KafkaBackend("kafka://127.0.0.1:1", timeout_s=0.5)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("max_events", [10_000, 100_000])
def test_a_group_consumes_a_topic_larger_than_one_mock_partition_holds(
        cluster: Cluster, max_events: int) -> None:
    # 64,000 events of ~100 bytes, more than one mock partition keeps (about 50,000:
    # past that the mock dropped the oldest and a group read only what was left),
    # spread so that each of the four partitions stays within the mock's 5 MiB.
    log = cluster.open()
    log.create_topic("wide", WIDE, partitions=4)
    total, size = 64_000, 8_000
    for first in range(0, total, size):
        log.append("wide", wide_events(first, size))
    assert log.start_offsets("wide") == [0] * 4
    assert sum(log.end_offsets("wide")) == total
    assert max(log.end_offsets("wide")) < 45_000
    started = time.monotonic()
    seen = drain(log, "g", "wide", total, max_events)
    assert sorted(seen) == (START_US + 100 * np.arange(total)).tolist()  # each once
    assert time.monotonic() - started < 10


def test_an_append_that_overflows_the_mock_raises_instead_of_losing_events_quietly(
        cluster: Cluster) -> None:
    from headwater.log.kafka.mock import PARTITION_MAX_BYTES

    if cluster.target.real:
        pytest.skip("the mock's capacity: a real cluster keeps what its retention says")

    log = cluster.open()
    log.create_topic("wide", WIDE)
    size, appended, refused = 10_000, 0, None
    while refused is None and appended * 100 < 2 * PARTITION_MAX_BYTES:  # ~100 B an event
        try:
            log.append("wide", wide_events(appended, size))
        except BackendError as exc:
            refused = exc
        appended += size  # an append that raised is stored all the same
    [start] = log.start_offsets("wide")
    assert 0 < start < appended - 40_000
    assert log.end_offsets("wide") == [appended]
    assert str(refused) == (
        f"Kafka mock cluster: wide[0] outgrew the mock, which keeps 5 MiB and 100,000 "
        f"record batches per partition: it dropped offsets 0..{start - 1} ({start} events; "
        f"the start offset is now {start}). This append is stored at "
        f"{appended - size}..{appended - 1}. Spread the events over more partitions, "
        "append fewer, or use a Kafka broker"
    )
    # Readers see the loss as a moved start, never as a wait for events that are gone.
    assert len(drain(log, "g", "wide", appended - start, 100_000)) == appended - start
    with pytest.raises(BackendError, match=r"dropped offsets "
                       rf"{start}\.\.\d+ \(\d+ events; the start offset is now"):
        log.append("wide", wide_events(appended, size))  # each drop is reported once


def test_a_prefix_keeps_each_logs_topics_and_groups_apart(cluster: Cluster) -> None:
    from confluent_kafka import Consumer, TopicPartition

    from headwater.log.kafka import KafkaBackend

    def opened(prefix: str) -> Log:
        log = Log(KafkaBackend(f"kafka://{cluster.bootstrap}?prefix={prefix}",
                               clock=cluster.clock, timeout_s=10), clock=cluster.clock)
        cluster.logs.append(log)
        return log

    team1, team2 = opened(cluster.name("team1")), opened(cluster.name("team2"))
    for log, users in ((team1, ["a", "b"]), (team2, ["c"])):
        log.create_topic("orders", SCHEMA)  # the same name, twice
        log.append("orders", events(users))
        with log.consumer("billing", "orders") as consumer:
            consumer.poll(max_events=100)
            consumer.commit()
    assert team1.read("orders", 0).batch.column("user").to_pylist() == ["a", "b"]
    assert team2.read("orders", 0).batch.column("user").to_pylist() == ["c"]
    assert sorted(t.name for t in team1.topics()) == ["orders", "orders.dlq"]
    topics = cluster.consumer().list_topics(timeout=5).topics
    assert {cluster.name("team1.orders"), cluster.name("team2.orders"),
            cluster.name("team1.__headwater_topics")} <= set(topics)
    plain = Consumer({"bootstrap.servers": cluster.bootstrap,
                      "group.id": cluster.name("team2.billing")})
    try:
        [stored] = plain.committed([TopicPartition(cluster.name("team2.orders"), 0)], timeout=5)
        assert stored.offset == 1
    finally:
        plain.close()
    with pytest.raises(ConfigError, match="prefix"):
        KafkaBackend(f"kafka://{cluster.bootstrap}?prefix=.bad")
