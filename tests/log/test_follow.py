"""Following a topic without a group: from the end or the start, each event once."""

from __future__ import annotations

import pyarrow as pa

from headwater.log import Log, Schema
from headwater.log.follow import TopicFollower
from headwater.log.schema import TIMESTAMP
from headwater.testing import MemoryBackend

SCHEMA = Schema.of({"k": "string", "ts": "timestamp"}, key="k", event_time="ts")


def events(*keys: str) -> pa.RecordBatch:
    return pa.record_batch({"k": list(keys), "ts": pa.array([1] * len(keys), pa.int64()).cast(
        TIMESTAMP)}, schema=SCHEMA.arrow_schema())


def test_a_follower_reads_what_is_new_on_every_partition() -> None:
    log = Log(MemoryBackend())
    log.create_topic("t", SCHEMA, partitions=3)
    log.append("t", events("a", "b"))
    late = TopicFollower(log, "t")
    early = TopicFollower(log, "t", start="start")
    assert late.read() is None
    log.append("t", events("c", "d", "e"))
    new = late.read()
    assert new is not None
    assert sorted(new.column("k").to_pylist()) == ["c", "d", "e"]
    assert late.read() is None
    everything = early.read()
    assert everything is not None
    assert sorted(everything.column("k").to_pylist()) == ["a", "b", "c", "d", "e"]
    assert sum(late.positions.values()) == 5


def test_skip_moves_to_the_end_without_reading() -> None:
    log = Log(MemoryBackend())
    log.create_topic("t", SCHEMA)
    follower = TopicFollower(log, "t", start="start")
    log.append("t", events("a", "b"))
    follower.skip()
    assert follower.read() is None
    log.append("t", events("c"))
    new = follower.read()
    assert new is not None
    assert new.column("k").to_pylist() == ["c"]
