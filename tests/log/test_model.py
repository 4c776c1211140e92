"""Random sequences of append, read, commit and restart agree with a plain list model."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from headwater.log import Log, Schema, partition_of
from tests.log.harness import HARNESSES, START_US, Harness

SCHEMA = Schema.of({"key": "string", "value": "int64", "ts": "timestamp"},
                   key="key", event_time="ts")
PARTITIONS = 3
KEYS = [f"k{i}" for i in range(6)]

rows = st.lists(
    st.fixed_dictionaries({
        "key": st.sampled_from(KEYS),
        "value": st.one_of(st.integers(-(2**40), 2**40), st.just("bad")),
        "ts": st.integers(START_US - 10**9, START_US + 10**9),
    }),
    min_size=0,
    max_size=25,
)


@settings(stateful_step_count=30)
class LogModel(RuleBasedStateMachine):
    """The log as lists: one list of values per partition, committed offsets per group."""

    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._stack = ExitStack()
        self._tmp = Path(tempfile.mkdtemp())
        self.harness: Harness = self._stack.enter_context(HARNESSES[self.backend](self._tmp))
        self.log: Log = self.harness.open()
        self.log.create_topic("t", SCHEMA, partitions=PARTITIONS)
        self.model: list[list[int]] = [[] for _ in range(PARTITIONS)]
        self.rejected = 0
        self.committed: dict[int, int] = {}
        self.last_sequence: dict[tuple[str, int], int] = {}
        self.sequence = 0
        self.sent: dict[str, tuple[list[dict[str, Any]], int]] = {}

    def teardown(self) -> None:
        self._stack.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _apply(self, batch: list[dict[str, Any]], producer: str | None, sequence: int) -> None:
        good = [r for r in batch if r["value"] != "bad"]
        self.rejected += len(batch) - len(good)
        if not good:
            return
        parts = partition_of(pa.array([r["key"] for r in good]), PARTITIONS).tolist()
        for p in range(PARTITIONS):
            if producer is not None:
                last = self.last_sequence.get((producer, p))
                if p in parts and last is not None and sequence <= last:
                    continue  # a duplicate for this partition
                if p in parts:
                    self.last_sequence[(producer, p)] = sequence
            self.model[p].extend(r["value"] for r, q in zip(good, parts, strict=True) if q == p)

    @rule(batch=rows)
    def append(self, batch: list[dict[str, Any]]) -> None:
        result = self.log.append("t", batch)
        assert result.accepted + len(result.rejected) == len(batch)
        self._apply(batch, None, 0)

    @rule(batch=rows, producer=st.sampled_from(["p1", "p2"]))
    def append_idempotent(self, batch: list[dict[str, Any]], producer: str) -> None:
        self.sequence += 1
        self.log.append("t", batch, producer_id=producer, sequence=self.sequence)
        self._apply(batch, producer, self.sequence)
        self.sent[producer] = (batch, self.sequence)

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        """A producer that lost the acknowledgement sends its last batch again."""
        producer = data.draw(st.sampled_from(sorted(self.sent)))
        batch, sequence = self.sent[producer]
        result = self.log.append("t", batch, producer_id=producer, sequence=sequence)
        assert result.duplicate or result.accepted == 0

    @rule(partition=st.integers(0, PARTITIONS - 1), data=st.data())
    def read(self, partition: int, data: st.DataObject) -> None:
        expected = self.model[partition]
        offset = data.draw(st.integers(0, len(expected)))
        limit = data.draw(st.integers(1, 40))
        got = self.log.read("t", partition, offset, limit).batch.column("value").to_pylist()
        if offset < len(expected):
            assert 1 <= len(got) <= limit
        assert got == expected[offset: offset + len(got)]

    @rule(limit=st.integers(1, 60), commit=st.booleans())
    def poll(self, limit: int, commit: bool) -> None:
        with self.log.consumer("g", "t") as consumer:
            for fetched in consumer.poll(max_events=limit):
                start = self.committed.get(fetched.partition, 0)
                values = fetched.batch.column("value").to_pylist()
                assert fetched.first_offset == start
                assert values == self.model[fetched.partition][start: start + len(values)]
                if commit:
                    self.committed[fetched.partition] = start + len(values)
            if commit:
                consumer.commit()

    @precondition(lambda self: self.committed)
    @rule()
    def check_lag(self) -> None:
        lag = self.log.lag("g", "t")
        assert lag == {p: len(self.model[p]) - self.committed.get(p, 0) for p in range(PARTITIONS)}

    @rule()
    def restart(self) -> None:
        self.log = self.harness.reopen(self.log)

    @invariant()
    def ends_match(self) -> None:
        assert self.log.end_offsets("t") == [len(m) for m in self.model]
        assert self.log.end_offsets("t.dlq") == [self.rejected]


class MemoryModel(LogModel):
    backend = "memory"


class EmbeddedModel(LogModel):
    backend = "embedded"


class RedisModel(LogModel):
    backend = "redis"


TestMemoryModel = MemoryModel.TestCase
TestEmbeddedModel = EmbeddedModel.TestCase
TestRedisModel = RedisModel.TestCase
