"""The background appender: batches, a bounded queue that drops and counts, failures
counted, everything queued flushed at close."""

from __future__ import annotations

import pyarrow as pa

from headwater.log import Log, Schema
from headwater.log.appender import BatchAppender
from headwater.log.schema import TIMESTAMP
from headwater.testing import MemoryBackend

SCHEMA = Schema.of({"k": "string", "ts": "timestamp"}, key="k", event_time="ts")


class Appender(BatchAppender[tuple[str, int]]):
    def encode(self, events: list[tuple[str, int]]) -> pa.RecordBatch:
        keys, times = zip(*events, strict=True)
        return pa.record_batch({"k": list(keys), "ts": pa.array(times, pa.int64()).cast(
            TIMESTAMP)}, schema=SCHEMA.arrow_schema())

    def record(self, key: str, ts: int) -> None:
        self._put((key, ts))


def test_events_arrive_in_batches_and_a_full_queue_drops_and_counts() -> None:
    log = Log(MemoryBackend())
    log.create_topic("t", SCHEMA)
    appender = Appender(log, "t", capacity=10, batch_events=4, flush_ms=60_000)
    for i in range(12):
        appender.record(f"k{i}", i)
    assert appender.dropped == 2
    appender.close()
    assert appender.logged == 10
    assert sum(f.batch.num_rows for f in log.replay("t")) == 10
    appender.record("late", 1)
    assert appender.dropped == 3  # closed: nothing is queued any more


def test_a_failed_append_is_counted() -> None:
    log = Log(MemoryBackend())  # no topic: every append fails
    appender = Appender(log, "missing", flush_ms=60_000)
    appender.record("a", 1)
    assert appender.flush() == 0
    assert appender.failed == 1
    appender.close()


class LostReply(Log):
    """A log whose first append is applied, then fails as a reply lost on the way would."""

    lost = False

    def append(self, topic: str, events: object, **options: object) -> object:  # type: ignore[override]
        done = super().append(topic, events, **options)  # type: ignore[arg-type]
        if not self.lost:
            self.lost = True
            raise ConnectionError("the reply was lost")
        return done


def test_an_append_retried_after_a_lost_reply_lands_once() -> None:
    log = LostReply(MemoryBackend())
    log.create_topic("t", SCHEMA)
    appender = Appender(log, "t", flush_ms=60_000)
    other = Appender(log, "t", flush_ms=60_000)  # another process's appender, say
    assert appender.producer_id != other.producer_id
    appender.record("a", 1)
    appender.record("b", 2)
    assert appender.flush() == 2
    other.record("c", 3)
    assert other.flush() == 1
    appender.close()
    other.close()
    keys = [k for f in log.replay("t") for k in f.batch.column("k").to_pylist()]
    assert sorted(keys) == ["a", "b", "c"]
    assert (appender.failed, appender.logged) == (0, 2)
