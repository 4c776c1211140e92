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
