"""The log contract: every backend passes every test here (see ``harness.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from headwater.errors import (
    OffsetOutOfRangeError,
    PayloadTooLargeError,
    TopicExistsError,
    UnknownConsumerGroupError,
    UnknownPartitionError,
    UnknownTopicError,
    ValidationError,
)
from headwater.log import APPEND_TIME, OFFSET, Log, Retention, Schema, partition_of
from headwater.log.schema import TIMESTAMP
from tests.log.harness import START_US, Harness

SCHEMA = Schema.of(
    {"user": "string", "amount": "float64", "n": "int64", "note": "string", "ts": "timestamp"},
    key="user",
    event_time="ts",
    nullable=("note",),
)
SECOND = 1_000_000


def events(count: int, *, start: int = 0, users: int = 7, t0: int = START_US) -> pa.RecordBatch:
    i = np.arange(start, start + count)
    return pa.record_batch(
        {
            "user": pa.array([f"u{k % users}" for k in i]),
            "amount": pa.array(i * 0.5),
            "n": pa.array(i, pa.int64()),
            "note": pa.array([None if k % 3 else f"note {k}" for k in i], pa.string()),
            "ts": pa.array(t0 + i * SECOND, pa.int64()).cast(TIMESTAMP),
        }
    )


def read_all(log: Log, topic: str, partition: int) -> pa.Table:
    return log.read_table(topic, [partition])


@pytest.fixture
def log(harness: Harness) -> Log:
    return harness.open()


# -- topics ------------------------------------------------------------------------


def test_create_describe_and_list_topics(log: Log) -> None:
    info = log.create_topic("orders", SCHEMA, partitions=3)
    assert info.partitions == 3
    assert log.topic("orders").schema == SCHEMA
    names = [t.name for t in log.topics()]
    assert "orders" in names
    assert "orders.dlq" in names
    assert log.end_offsets("orders") == [0, 0, 0]
    assert log.start_offsets("orders") == [0, 0, 0]


def test_create_is_idempotent_but_not_silently_redefined(log: Log) -> None:
    log.create_topic("orders", SCHEMA, partitions=2)
    assert log.create_topic("orders", SCHEMA, partitions=2).partitions == 2
    with pytest.raises(TopicExistsError):
        log.create_topic("orders", SCHEMA, partitions=3)


def test_ensure_topic_creates_once_and_checks_the_schema(log: Log) -> None:
    assert log.ensure_topic("orders", SCHEMA, partitions=2).partitions == 2
    assert log.ensure_topic("orders", SCHEMA).partitions == 2  # kept as it is
    other = Schema.of({"k": "string", "ts": "timestamp"}, key="k", event_time="ts")
    with pytest.raises(TopicExistsError, match="orders"):
        log.ensure_topic("orders", other)


def test_unknown_topic_and_partition(log: Log) -> None:
    with pytest.raises(UnknownTopicError, match="nope"):
        log.append("nope", events(1))
    with pytest.raises(UnknownTopicError):
        log.topic("nope")
    log.create_topic("orders", SCHEMA, partitions=2)
    with pytest.raises(UnknownPartitionError):
        log.read("orders", 2, 0)


@pytest.mark.parametrize("name", ["", "a/b", "-x", "x" * 201, "sp ace"])
def test_bad_topic_names(log: Log, name: str) -> None:
    with pytest.raises(ValidationError, match="topic"):
        log.create_topic(name, SCHEMA)


def test_delete_topic(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    log.append("orders", events(3))
    log.delete_topic("orders")
    assert "orders" not in [t.name for t in log.topics()]
    assert "orders.dlq" not in [t.name for t in log.topics()]


# -- append and read -------------------------------------------------------------------


def test_append_assigns_dense_offsets_by_key_hash(log: Log) -> None:
    log.create_topic("orders", SCHEMA, partitions=3)
    batch = events(50)
    result = log.append("orders", batch)
    assert result.accepted == 50
    assert not result.rejected
    expected = partition_of(batch.column("user"), 3)
    assert result.partitions.tolist() == expected.tolist()
    for p in range(3):
        offsets = result.offsets[result.partitions == p]
        assert offsets.tolist() == list(range(len(offsets)))
    assert sum(log.end_offsets("orders")) == 50


def test_read_back_equals_what_was_appended(log: Log) -> None:
    log.create_topic("orders", SCHEMA, partitions=1)
    first, second = events(10), events(15, start=10)
    log.append("orders", first)
    log.append("orders", pa.Table.from_batches([second]))
    table = read_all(log, "orders", 0)
    assert table.num_rows == 25
    expected = pa.Table.from_batches([first, second]).cast(SCHEMA.arrow_schema())
    assert table.select(SCHEMA.names).equals(expected)
    assert table.column(OFFSET).to_pylist() == list(range(25))


def test_read_table_of_an_empty_topic_has_the_stored_schema(log: Log) -> None:
    log.create_topic("orders", SCHEMA, partitions=3)
    table = log.read_table("orders")
    assert table.num_rows == 0
    assert table.schema == SCHEMA.stored_schema()
    assert log.read_table("orders", [1], start=5, stop=9).num_rows == 0


def test_read_table_is_every_replayed_event_partition_after_partition(log: Log) -> None:
    log.create_topic("orders", SCHEMA, partitions=3)
    log.append("orders", events(40))
    log.append("orders", events(20, start=40))
    replayed = [f.batch for f in log.replay("orders", max_events=7)]
    table = log.read_table("orders")
    assert table.schema == SCHEMA.stored_schema()
    assert table.num_rows == 60
    assert table.equals(pa.Table.from_batches(replayed, schema=SCHEMA.stored_schema()))
    ranged = log.read_table("orders", [2, 0], start=1, stop=4)
    expected = [read_all(log, "orders", p).slice(1, 3) for p in (2, 0)]
    assert ranged.equals(pa.concat_tables(expected))


def test_read_from_an_offset_and_up_to_a_maximum(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    for k in range(4):
        log.append("orders", events(10, start=10 * k))
    fetched = log.read("orders", 0, 7, max_events=12)
    assert fetched.batch.num_rows == 12
    assert fetched.batch.column(OFFSET).to_pylist() == list(range(7, 19))
    assert fetched.batch.column("n").to_pylist() == list(range(7, 19))
    assert fetched.next_offset == 19
    assert log.read("orders", 0, 40).batch.num_rows == 0
    with pytest.raises(OffsetOutOfRangeError):
        log.read("orders", 0, 41)


def test_list_of_dicts_with_aware_datetimes(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    when = datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    result = log.append("orders", [
        {"user": "ada", "amount": 1.0, "n": 1, "ts": when},
        {"user": "bob", "amount": 2, "n": 2, "note": "x", "ts": "2024-03-01T10:00:00Z"},
        {"user": "cy", "amount": 3.0, "n": 3, "ts": 1_709_287_200_000_000},
    ])
    assert result.accepted == 3
    batch = log.read("orders", 0).batch
    assert batch.column("ts").cast(pa.int64()).to_pylist() == [1_709_287_200_000_000] * 3
    assert batch.column("note").to_pylist() == [None, "x", None]
    assert batch.column("amount").to_pylist() == [1.0, 2.0, 3.0]


def test_the_log_assigns_monotonic_append_times(harness: Harness, log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    log.append("orders", events(5))
    harness.clock.advance(10 * SECOND)
    log.append("orders", events(5, start=5))
    harness.clock.set(START_US - 100 * SECOND)  # the wall clock jumps back
    result = log.append("orders", events(5, start=10))
    assert result.append_time == START_US + 10 * SECOND
    times = log.read("orders", 0, 0, 100).batch.column(APPEND_TIME).cast(pa.int64()).to_pylist()
    assert times == [START_US] * 5 + [START_US + 10 * SECOND] * 10
    assert log.seek("orders", 0, append_time=START_US + 1) == 5
    assert log.seek("orders", 0, append_time=START_US) == 0
    assert log.seek("orders", 0, append_time=START_US + 11 * SECOND) == 15


def test_seek_by_event_time_with_out_of_order_events(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    order = [5, 1, 9, 3, 7, 7, 2]
    log.append("orders", [
        {"user": "a", "amount": 0.0, "n": i, "ts": START_US + t * SECOND}
        for i, t in enumerate(order)
    ])
    log.append("orders", [{"user": "a", "amount": 0.0, "n": 9, "ts": START_US + 20 * SECOND}])
    assert log.seek("orders", 0, event_time=START_US) == 0
    assert log.seek("orders", 0, event_time=START_US + 6 * SECOND) == 2
    assert log.seek("orders", 0, event_time=START_US + 7 * SECOND) == 2
    assert log.seek("orders", 0, event_time=START_US + 10 * SECOND) == 7
    assert log.seek("orders", 0, event_time=START_US + 21 * SECOND) == 8
    with pytest.raises(ValidationError):
        log.seek("orders", 0)


# -- idempotence ---------------------------------------------------------------------


def test_a_retried_batch_is_not_duplicated(log: Log) -> None:
    log.create_topic("orders", SCHEMA, partitions=2)
    first = log.append("orders", events(20), producer_id="loader", sequence=1)
    again = log.append("orders", events(20), producer_id="loader", sequence=1)
    assert again.duplicate
    assert again.offsets.tolist() == first.offsets.tolist()
    assert sum(log.end_offsets("orders")) == 20
    older = log.append("orders", events(5), producer_id="loader", sequence=0)
    assert older.duplicate
    assert sum(log.end_offsets("orders")) == 20
    log.append("orders", events(20, start=20), producer_id="loader", sequence=7)
    log.append("orders", events(3), producer_id="other", sequence=1)
    assert sum(log.end_offsets("orders")) == 43


def test_idempotence_survives_a_restart(harness: Harness, log: Log) -> None:
    log.create_topic("orders", SCHEMA, partitions=2)
    first = log.append("orders", events(10), producer_id="loader", sequence=4)
    log = harness.reopen(log)
    again = log.append("orders", events(10), producer_id="loader", sequence=4)
    assert again.duplicate
    assert again.offsets.tolist() == first.offsets.tolist()
    assert sum(log.end_offsets("orders")) == 10


def test_producer_arguments_are_checked(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    with pytest.raises(ValidationError, match="producer_id"):
        log.append("orders", events(1), producer_id="p")
    with pytest.raises(ValidationError, match="sequence"):
        log.append("orders", events(1), producer_id="p", sequence=-1)


# -- bad input -----------------------------------------------------------------------


def test_bad_rows_go_to_the_dead_letter_topic(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    rows: list[Any] = [
        {"user": "ok", "amount": 1.0, "n": 1, "ts": START_US},
        {"user": "a", "amount": "many", "n": 1, "ts": START_US},
        {"user": "b", "amount": 1.0, "ts": START_US},
        {"user": "c", "amount": 1.0, "n": 1, "ts": START_US, "colour": "red"},
        {"user": "d", "amount": 1.0, "n": 1, "ts": datetime(2024, 1, 1)},  # noqa: DTZ001
        {"user": "e", "amount": 1.0, "n": 1, "ts": 10**18},
        {"user": "f", "amount": 1.0, "n": True, "ts": START_US},
        {"user": None, "amount": 1.0, "n": 1, "ts": START_US},
        "not an object",
    ]
    result = log.append("orders", rows)
    assert result.accepted == 1
    got = {r.index: (r.field, r.reason) for r in result.rejected}
    assert got[1][0] == "amount"
    assert got[2] == ("n", "Object missing required field `n`")
    assert got[3][0] == "colour"
    assert got[4][0] == "ts"
    assert "timezone" in got[4][1]
    assert got[5][0] == "ts"
    assert "range" in got[5][1]
    assert got[6][0] == "n"
    assert got[7][0] == "user"
    assert got[8][0] == "$"
    assert result.offsets.tolist() == [0] + [-1] * 8
    dlq = log.read("orders.dlq", 0, 0, 100).batch
    assert dlq.num_rows == 8
    assert dlq.column("index").to_pylist() == list(range(1, 9))
    assert dlq.column("topic").to_pylist() == ["orders"] * 8
    assert b'"many"' in dlq.column("payload")[0].as_py()


def test_bad_arrow_columns_are_rejected_row_by_row(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    batch = pa.record_batch({
        "user": pa.array(["a", "b", None]),
        "amount": pa.array(["1.5", "x", "2"]),
        "n": pa.array([1, 2, 3]),
        "ts": pa.array([START_US] * 3, pa.int64()).cast(TIMESTAMP),
    })
    result = log.append("orders", batch)
    assert result.accepted == 1
    assert [(r.index, r.field) for r in result.rejected] == [(1, "amount"), (2, "user")]
    assert log.read("orders", 0).batch.column("amount").to_pylist() == [1.5]


@pytest.mark.parametrize("form", ["rows", "arrow"])
def test_non_finite_floats_are_refused_unless_the_schema_allows_them(
        harness: Harness, log: Log, form: str) -> None:
    allowing = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"}, key="user",
                         event_time="ts", allow_non_finite=("x",))
    strict = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"}, key="user",
                       event_time="ts")
    log.create_topic("strict", strict)
    log.create_topic("loose", allowing)
    values = [5.0, float("nan"), float("inf"), float("-inf"), 7.0]
    rows = [{"user": "a", "x": v, "ts": START_US + i} for i, v in enumerate(values)]
    given: Any = rows if form == "rows" else pa.RecordBatch.from_pylist(rows)
    result = log.append("strict", given, numbers=[10, 11, 12, 13, 14])
    assert result.accepted == 2
    assert [(r.index, r.field) for r in result.rejected] == [(1, "x"), (2, "x"), (3, "x")]
    assert [r.reason for r in result.rejected] == [
        f"not a finite number ({v}); the field does not allow_non_finite"
        for v in ("nan", "inf", "-inf")]
    dlq = log.read("strict.dlq", 0).batch
    assert dlq.column("index").to_pylist() == [11, 12, 13]  # numbered as the caller said
    assert log.read("strict", 0).batch.column("x").to_pylist() == [5.0, 7.0]
    assert log.append("loose", given).accepted == 5
    log = harness.reopen(log)  # the option is kept with the topic
    assert log.topic("loose").schema.field("x").allow_non_finite
    assert not log.topic("strict").schema.field("x").allow_non_finite
    stored = log.read("loose", 0).batch.column("x").to_pylist()
    assert stored[0] == 5.0
    assert np.isnan(stored[1])
    assert stored[2:] == values[2:]


def test_naive_arrow_timestamps_are_rejected(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    batch = events(3).set_column(4, "ts", pa.array([0, 1, 2], pa.timestamp("us")))
    result = log.append("orders", batch)
    assert result.accepted == 0
    assert {r.field for r in result.rejected} == {"ts"}
    assert all("timezone" in r.reason for r in result.rejected)
    assert log.end_offsets("orders.dlq") == [3]


def test_missing_column_rejects_every_row(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    result = log.append("orders", events(4).drop_columns(["n"]))
    assert result.accepted == 0
    assert [r.reason for r in result.rejected] == ["missing required field"] * 4


def test_oversized_events_and_batches(harness: Harness) -> None:
    log = harness.open()
    log.max_event_bytes = 1000
    log.create_topic("orders", SCHEMA)
    result = log.append("orders", [
        {"user": "a", "amount": 1.0, "n": 1, "note": "x" * 5000, "ts": START_US},
        {"user": "b", "amount": 1.0, "n": 1, "note": "fine", "ts": START_US},
    ])
    assert result.accepted == 1
    assert result.rejected[0].field == "$"
    assert "1000 bytes" in result.rejected[0].reason
    assert len(result.rejected[0].payload) <= 1000
    log.max_batch_bytes = 100
    with pytest.raises(PayloadTooLargeError, match="events"):
        log.append("orders", events(50))


def test_not_a_batch(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    with pytest.raises(ValidationError, match="events"):
        log.append("orders", "user=a")


# -- consumer groups -------------------------------------------------------------------


def test_consumer_polls_commits_and_resumes_after_restart(harness: Harness, log: Log) -> None:
    log.create_topic("orders", SCHEMA, partitions=3)
    log.append("orders", events(60))
    with log.consumer("billing", "orders") as consumer:
        seen = sum(f.batch.num_rows for f in consumer.poll(max_events=25))
        assert seen == 25
        consumer.commit()
        assert sum(log.committed("billing", "orders").values()) == 25
        assert sum(log.lag("billing", "orders").values()) == 35
    log = harness.reopen(log)
    log.append("orders", events(10, start=60))
    got: list[int] = []
    with log.consumer("billing", "orders") as consumer:
        while batches := consumer.poll(max_events=7):
            for f in batches:
                got.extend(f.batch.column("n").to_pylist())
        consumer.commit()
        assert sum(consumer.lag().values()) == 0
    assert len(got) == 45
    assert sum(log.lag("billing", "orders").values()) == 0


def test_members_of_a_group_split_the_partitions(log: Log) -> None:
    log.create_topic("orders", SCHEMA, partitions=4)
    log.append("orders", events(40))
    a = log.consumer("g", "orders", member="a")
    b = log.consumer("g", "orders", member="b")
    try:
        mine, theirs = set(a.assignment()), set(b.assignment())
        assert not mine & theirs
        assert mine | theirs == {("orders", p) for p in range(4)}
        assert mine
        assert theirs
    finally:
        b.close()
    assert set(a.assignment()) == {("orders", p) for p in range(4)}
    a.close()


def test_reset_latest_reads_only_new_events(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    log.append("orders", events(5))
    with log.consumer("late", "orders", reset="latest") as consumer:
        assert consumer.poll() == []
        log.append("orders", events(2, start=5))
        fetched = consumer.poll()
        assert [f.batch.column("n").to_pylist() for f in fetched] == [[5, 6]]


def test_unknown_consumer_group(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    with pytest.raises(UnknownConsumerGroupError, match="ghost"):
        log.committed("ghost", "orders")
    with pytest.raises(UnknownConsumerGroupError):
        log.lag("ghost", "orders")


def test_poll_waits_for_new_events(log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    with log.consumer("g", "orders") as consumer:
        assert consumer.poll(timeout_s=0.05) == []


# -- retention and restart -------------------------------------------------------------


def test_retention_by_time_drops_whole_old_batches(harness: Harness, log: Log) -> None:
    log = Log(log.backend, clock=harness.clock, retention_every_s=1e9)  # by hand only
    log.create_topic("orders", SCHEMA, retention=Retention(max_age_us=60 * SECOND))
    log.append("orders", events(10))
    harness.clock.advance(30 * SECOND)
    log.append("orders", events(10, start=10))
    harness.clock.advance(45 * SECOND)
    log.append("orders", events(10, start=20))
    dropped = log.enforce_retention("orders")
    assert dropped == 10
    assert log.start_offsets("orders") == [10]
    assert log.end_offsets("orders") == [30]
    with pytest.raises(OffsetOutOfRangeError):
        log.read("orders", 0, 0)
    assert log.read("orders", 0, 10, 5).batch.column("n").to_pylist() == [10, 11, 12, 13, 14]
    with log.consumer("new", "orders") as consumer:
        assert consumer.position("orders", 0) == 10


def test_retention_by_size_keeps_the_newest(log: Log) -> None:
    log.create_topic("orders", SCHEMA, retention=Retention(max_bytes=1))
    for k in range(3):
        log.append("orders", events(10, start=10 * k))
    log.enforce_retention("orders")
    start, end = log.start_offsets("orders")[0], log.end_offsets("orders")[0]
    assert end == 30
    assert 0 < start < 30
    assert log.read("orders", 0, start).batch.num_rows > 0


def test_a_long_running_writer_keeps_its_topic_bounded(harness: Harness, log: Log) -> None:
    log = Log(log.backend, clock=harness.clock, retention_every_s=60)
    log.create_topic("orders", SCHEMA, partitions=2,
                     retention=Retention(max_age_us=3600 * SECOND))
    kept = []
    for k in range(6 * 60):  # six hours of a batch a minute, nobody enforcing by hand
        log.append("orders", events(20, start=20 * k, t0=harness.clock.now_us()))
        harness.clock.advance(60 * SECOND)
        kept.append(sum(log.end_offsets("orders")) - sum(log.start_offsets("orders")))
    assert sum(log.end_offsets("orders")) == 6 * 60 * 20
    assert max(kept[120:]) <= 62 * 20  # an hour and the last interval's batch, per topic
    assert min(kept[120:]) >= 60 * 20  # and nothing younger than the retention went
    oldest = min(int(log.read("orders", p, log.start_offsets("orders")[p], 1).batch.column(
        APPEND_TIME).cast(pa.int64())[0].as_py()) for p in range(2))
    assert harness.clock.now_us() - oldest <= 3600 * SECOND + 2 * 60 * SECOND


def test_a_retention_changed_by_one_process_is_applied_by_every_writer(
        harness: Harness, log: Log) -> None:
    log.create_topic("orders", SCHEMA)
    writer = Log(harness.make_backend(), clock=harness.clock, retention_every_s=10)
    harness.opened.append(writer)
    for k in range(5):
        writer.append("orders", events(10, start=10 * k))
        harness.clock.advance(60 * SECOND)
    assert writer.start_offsets("orders") == [0]
    info = log.set_retention("orders", Retention(max_age_us=150 * SECOND))
    assert info.retention == Retention(max_age_us=150 * SECOND)
    assert info.schema == SCHEMA
    assert log.topic("orders").retention == info.retention
    assert log.start_offsets("orders") == [30]  # set_retention applies it at once
    for k in range(5, 10):
        writer.append("orders", events(10, start=10 * k))
        harness.clock.advance(60 * SECOND)
    assert writer.start_offsets("orders")[0] >= 70  # the writer applied the new retention
    assert writer.topic("orders").retention == info.retention
    log.set_retention("orders", Retention())
    with pytest.raises(UnknownTopicError):
        log.set_retention("nowhere", Retention(max_bytes=10))
    with pytest.raises(ValidationError, match="max_age_us"):
        log.set_retention("orders", Retention(max_age_us=0))


def test_system_topics_and_dead_letters_get_the_system_retention(harness: Harness,
                                                                 log: Log) -> None:
    week = Retention(max_age_us=7 * 86_400 * SECOND)
    system = Log(log.backend, clock=harness.clock, system_retention=week)
    assert system.ensure_topic("predictions", SCHEMA).retention == week
    assert system.topic("predictions.dlq").retention == week
    assert system.create_topic("orders", SCHEMA).retention == Retention()  # asked for: none
    assert system.topic("orders.dlq").retention == week
    log.set_retention("predictions", Retention(max_bytes=1 << 20))
    # an existing topic keeps its own retention, and creating it again works
    assert system.ensure_topic("predictions", SCHEMA).retention == Retention(max_bytes=1 << 20)
    other = Log(log.backend, clock=harness.clock)  # another setting, the same topics
    assert other.create_topic("orders", SCHEMA).name == "orders"
    assert other.topic("orders.dlq").retention == week


def test_data_survives_a_restart_and_appends_continue(harness: Harness, log: Log) -> None:
    log.create_topic("orders", SCHEMA, partitions=2)
    log.append("orders", events(30))
    before = [read_all(log, "orders", p) for p in range(2)]
    log = harness.reopen(log)
    assert [read_all(log, "orders", p) for p in range(2)] == before
    result = log.append("orders", events(30, start=30))
    for p in range(2):
        offsets = result.offsets[result.partitions == p]
        first = before[p].num_rows
        assert offsets.tolist() == list(range(first, first + len(offsets)))
