"""What the Redis backend does beyond the contract: its extra, its errors, its sharing.

The contract itself runs in ``test_contract.py``; tests here that need the server skip
without it (and fail in CI, see ``harness.unavailable``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from headwater.errors import (
    BackendError,
    OffsetOutOfRangeError,
    TopicExistsError,
    UnknownTopicError,
)
from headwater.log import OFFSET, Log, Retention, Schema
from headwater.testing import ManualClock
from tests.extras import import_without, require_extra
from tests.log.harness import REDIS_URL, START_US, unavailable
from tests.log.test_contract import SCHEMA, SECOND, events

if TYPE_CHECKING:
    from headwater.log.redis import RedisBackend

Connect = Callable[..., "RedisBackend"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_US)


@pytest.fixture
def connect(clock: ManualClock) -> Iterator[Connect]:
    """Opens backends on one fresh prefix (or another given one); cleans up after."""
    require_extra("redis", "redis")
    from headwater.log.redis import RedisBackend

    prefix = f"hwtest-{uuid.uuid4().hex[:12]}"
    opened: list[RedisBackend] = []

    def make(**options: Any) -> RedisBackend:
        options.setdefault("prefix", prefix)
        options.setdefault("clock", clock)
        backend = RedisBackend(REDIS_URL, **options)
        opened.append(backend)
        return backend

    probe = make()
    try:
        probe.ping()
    except BackendError as exc:
        probe.close()
        unavailable(str(exc))
    yield make
    for backend in opened:
        backend.destroy()
        backend.close()


# -- without a server -----------------------------------------------------------------


def test_missing_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    error = import_without(monkeypatch, "headwater.log.redis", "redis")
    assert str(error) == (
        "The Redis log backend needs the 'redis' package: pip install 'headwater[redis]'"
    )
    assert error.extra == "redis"
    assert isinstance(error, ImportError)


def test_an_unreachable_server_raises_backend_error() -> None:
    require_extra("redis", "redis")
    from headwater.log.redis import RedisBackend

    backend = RedisBackend("redis://user:secret@127.0.0.1:1/0")
    try:
        with pytest.raises(BackendError, match=r"127\.0\.0\.1:1.*ping") as raised:
            backend.ping()
        assert "secret" not in str(raised.value)
        assert raised.value.__cause__ is not None
        with pytest.raises(BackendError, match="listing topics"):
            Log(backend).topics()
    finally:
        backend.close()


# -- with the server ------------------------------------------------------------------


def test_an_error_reply_raises_backend_error(connect: Connect) -> None:
    backend = connect()
    backend._client.set(f"{backend.prefix}:topics", "not a hash")
    with pytest.raises(BackendError, match="WRONGTYPE"):
        backend.topics()


def test_a_second_backend_on_the_prefix_sees_the_same_log(connect: Connect) -> None:
    first, second = Log(connect()), Log(connect())
    first.create_topic("orders", SCHEMA, partitions=2)
    placed = first.append("orders", events(30), producer_id="loader", sequence=1)
    assert [t.name for t in second.topics()] == ["orders", "orders.dlq"]
    assert second.end_offsets("orders") == first.end_offsets("orders")
    for p in range(2):
        assert second.read("orders", p).batch.equals(first.read("orders", p).batch)
    again = second.append("orders", events(30), producer_id="loader", sequence=1)
    assert again.duplicate
    assert again.offsets.tolist() == placed.offsets.tolist()
    with first.consumer("g", "orders") as consumer:
        consumer.poll(max_events=100)
        consumer.commit()
    assert second.committed("g", "orders") == dict(enumerate(first.end_offsets("orders")))
    assert Log(connect(prefix=f"other-{uuid.uuid4().hex}")).topics() == []


def test_concurrent_appends_get_dense_unique_offsets(connect: Connect) -> None:
    logs = [Log(connect()), Log(connect())]
    logs[0].create_topic("orders", SCHEMA)
    batches = 40
    placed: list[list[int]] = []

    def write(log: Log, writer: int) -> None:
        for k in range(batches):
            result = log.append("orders", events(5, start=1000 * writer + 5 * k))
            placed.append(result.offsets.tolist())

    threads = [threading.Thread(target=write, args=(log, w)) for w, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o for offsets in placed for o in offsets) == list(range(2 * batches * 5))
    assert all(offsets == list(range(offsets[0], offsets[0] + 5)) for offsets in placed)
    table = pa.Table.from_batches([f.batch for f in logs[1].replay("orders")])
    assert table.column(OFFSET).to_pylist() == list(range(2 * batches * 5))
    assert sorted(table.column("n").to_pylist()) == sorted(
        1000 * w + i for w in range(2) for i in range(5 * batches)
    )


def test_append_times_never_go_back_across_writers(connect: Connect) -> None:
    ahead, behind = ManualClock(START_US + 60 * SECOND), ManualClock(START_US)
    first, second = Log(connect(clock=ahead)), Log(connect(clock=behind))
    first.create_topic("orders", SCHEMA)
    assert first.append("orders", events(2)).append_time == START_US + 60 * SECOND
    assert second.append("orders", events(2)).append_time == START_US + 60 * SECOND
    assert second.seek("orders", 0, append_time=START_US + 60 * SECOND) == 0


def test_producer_sequences_compare_exactly_and_old_placements_are_forgotten(
    connect: Connect,
) -> None:
    log = Log(connect())
    log.create_topic("orders", SCHEMA)
    big = 2**62  # beyond what a double holds exactly
    log.append("orders", events(1), producer_id="p", sequence=big)
    assert not log.append("orders", events(1), producer_id="p", sequence=big + 1).duplicate
    assert log.append("orders", events(1), producer_id="p", sequence=big).offsets.tolist() == [0]
    for k in range(2, 12):
        log.append("orders", events(1), producer_id="p", sequence=big + k)
    forgotten = log.append("orders", events(1), producer_id="p", sequence=big)
    assert forgotten.duplicate
    assert forgotten.offsets.tolist() == [-1]
    assert log.end_offsets("orders") == [12]


def test_each_append_is_one_stream_entry(connect: Connect) -> None:
    backend = connect()
    log = Log(backend)
    log.create_topic("orders", SCHEMA)
    for k in range(3):
        log.append("orders", events(100, start=100 * k))
    assert backend._client.xlen(f"{backend.prefix}:p:orders:0:log") == 3
    assert log.read("orders", 0, 50, max_events=120).batch.column("n").to_pylist() == list(
        range(50, 170)
    )


def test_a_partly_read_frame_is_not_served_after_the_topic_is_redefined(
    connect: Connect,
) -> None:
    reader, writer = Log(connect()), Log(connect())
    writer.create_topic("orders", SCHEMA)
    writer.append("orders", events(10))
    assert reader.read("orders", 0, 0, 4).batch.column("n").to_pylist() == [0, 1, 2, 3]
    writer.delete_topic("orders")
    writer.create_topic("orders", SCHEMA)
    writer.append("orders", events(10, start=500))
    assert reader.read("orders", 0, 4, 3).batch.column("n").to_pylist() == [504, 505, 506]


def test_seek_by_event_time_scans_the_index_in_chunks(
    connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headwater.log.redis import backend as module

    monkeypatch.setattr(module, "_SCAN_FRAMES", 2)
    log = Log(connect())
    log.create_topic("orders", SCHEMA)
    for k in range(7):
        log.append("orders", events(3, start=3 * k))
    assert log.seek("orders", 0, event_time=START_US + 13 * SECOND) == 13
    assert log.seek("orders", 0, event_time=START_US + 99 * SECOND) == 21
    log.backend.enforce_retention("orders")  # no retention configured: nothing goes
    assert log.seek("orders", 0, event_time=START_US) == 0


def test_retention_by_size_counts_the_stored_bytes(connect: Connect, clock: ManualClock) -> None:
    log = Log(connect())
    log.create_topic("orders", SCHEMA, partitions=2, retention=Retention(max_bytes=1))
    for k in range(4):
        log.append("orders", events(20, start=20 * k))
        clock.advance(SECOND)
    before = log.end_offsets("orders")
    dropped = log.enforce_retention("orders")
    starts = log.start_offsets("orders")
    assert dropped == sum(starts)
    assert log.end_offsets("orders") == before
    assert log.enforce_retention("orders") == 0  # only the newest frame of each is left
    with pytest.raises(OffsetOutOfRangeError):
        log.read("orders", 0, starts[0] - 1)
    assert log.seek("orders", 0, append_time=START_US) == starts[0]


def test_a_silent_member_leaves_its_group(connect: Connect) -> None:
    backend = connect(session_timeout_s=0.2)
    quiet = backend.join("g", "a")
    talker = backend.join("g", "b")
    assert talker.assigned("orders", 4) == [1, 3]
    time.sleep(0.3)  # "a" sends no heartbeat
    assert talker.assigned("orders", 4) == [0, 1, 2, 3]
    assert quiet.assigned("orders", 4) == [0, 2]  # back after its next heartbeat
    quiet.close()
    talker.close()


def test_destroy_deletes_only_its_own_prefix(connect: Connect) -> None:
    name = f"hwtest-{uuid.uuid4().hex[:12]}"
    tricky = connect(prefix=f"{name}*")  # unescaped, its pattern would match `plain`'s keys
    plain = connect(prefix=f"{name}-plain")
    for backend in (tricky, plain):
        Log(backend).create_topic("orders", SCHEMA)
    tricky.destroy()
    assert Log(tricky).topics() == []
    assert [t.name for t in Log(plain).topics()] == ["orders", "orders.dlq"]


def test_open_log_takes_the_prefix_from_the_url() -> None:
    from headwater.log import open_backend
    from headwater.log.redis import RedisBackend

    backend = open_backend("redis://127.0.0.1:6379/15?prefix=hw-url-test")
    assert isinstance(backend, RedisBackend)
    assert backend.prefix == "hw-url-test"
    backend.close()


def test_an_append_against_a_definition_changed_elsewhere_is_refused_or_redone(
    connect: Connect,
) -> None:
    """Appends validate against the definition this backend last saw; the append's guard
    catches a change made by another process since, so that no batch is stored under a
    definition it was not checked against."""
    writer, other = Log(connect()), Log(connect())
    writer.create_topic("orders", SCHEMA)
    assert writer.append("orders", events(3)).offsets.tolist() == [0, 1, 2]
    other.set_retention("orders", Retention(max_age_us=3600 * SECOND))  # schema unchanged
    assert writer.append("orders", events(2)).offsets.tolist() == [3, 4]
    other.delete_topic("orders")
    with pytest.raises(UnknownTopicError):
        writer.append("orders", events(2))
    writer.create_topic("orders", SCHEMA)  # the definition is read again
    other.delete_topic("orders")
    wider = Schema.of({**{f.name: f.type for f in SCHEMA.fields}, "extra": "float64"},
                      key=SCHEMA.key, event_time=SCHEMA.event_time, nullable=("note", "extra"))
    other.create_topic("orders", wider)
    with pytest.raises(TopicExistsError, match="redefined"):
        writer.append("orders", events(2))
    assert other.end_offsets("orders") == [0]
    again = writer.append("orders", events(2))
    assert again.rejected == ()
    assert again.offsets.tolist() == [0, 1]
    assert other.read("orders", 0).batch.schema.names[-3] == "extra"
