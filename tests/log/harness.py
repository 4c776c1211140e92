"""One harness per log backend, so every contract test runs against all of them.

A harness opens :class:`~headwater.log.Log` handles onto one storage; opening a second
handle after closing the first is how tests simulate a process restart. Server backends
skip when their server is absent, unless ``HEADWATER_REQUIRE_SERVICES=1`` (set by CI),
which turns the skip into a failure.

Kafka tests run on librdkafka's mock cluster in the test process, or on a real cluster
when ``HEADWATER_TEST_KAFKA_BOOTSTRAP`` names its bootstrap servers (``host:9092``): each
test then keeps its topics and groups under a prefix of its own and deletes them after
(:class:`KafkaTarget`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from headwater.log import Log
from headwater.log.backend import LogBackend
from headwater.testing import ManualClock, MemoryBackend
from tests.extras import require_extra

START_US = 1_700_000_000_000_000
REDIS_URL = os.environ.get("HEADWATER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
KAFKA_BOOTSTRAP = os.environ.get("HEADWATER_TEST_KAFKA_BOOTSTRAP", "")


def require_services() -> bool:
    return os.environ.get("HEADWATER_REQUIRE_SERVICES", "") not in ("", "0", "false")


def unavailable(reason: str) -> None:
    """Skip (on a laptop without the server) or fail (in CI, where it must be there)."""
    if require_services():
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


@dataclass
class Harness:
    """Opens logs over one storage; ``reopen`` simulates a restart."""

    name: str
    clock: ManualClock
    make_backend: Callable[[], LogBackend]
    opened: list[Log] = field(default_factory=list)

    def open(self) -> Log:
        log = Log(self.make_backend(), clock=self.clock)
        self.opened.append(log)
        return log

    def reopen(self, log: Log) -> Log:
        log.close()
        return self.open()

    def close(self) -> None:
        for log in self.opened:
            log.close()


@contextmanager
def memory_harness(tmp_path: Path) -> Iterator[Harness]:
    clock = ManualClock(START_US)
    backend = MemoryBackend(clock=clock)
    harness = Harness("memory", clock, lambda: backend)
    yield harness


@contextmanager
def embedded_harness(tmp_path: Path) -> Iterator[Harness]:
    from headwater.log.embedded import EmbeddedBackend

    clock = ManualClock(START_US)
    root = tmp_path / "log"
    harness = Harness(
        "embedded", clock, lambda: EmbeddedBackend(root, clock=clock, fsync="never")
    )
    try:
        yield harness
    finally:
        harness.close()


@contextmanager
def redis_harness(tmp_path: Path) -> Iterator[Harness]:
    require_extra("redis", "redis")
    from headwater.log.redis import RedisBackend

    prefix = f"hwtest-{uuid.uuid4().hex[:12]}"
    clock = ManualClock(START_US)
    try:
        probe = RedisBackend(REDIS_URL, prefix=prefix, clock=clock)
        probe.ping()
    except Exception as exc:
        unavailable(f"Redis at {REDIS_URL}: {exc}")
    harness = Harness("redis", clock, lambda: RedisBackend(REDIS_URL, prefix=prefix, clock=clock))
    try:
        yield harness
    finally:
        harness.close()
        probe.destroy()
        probe.close()


class KafkaTarget:
    """The cluster a Kafka test runs on: the one at ``HEADWATER_TEST_KAFKA_BOOTSTRAP``, or
    else a mock cluster started in this process. On a real cluster the test's topics and
    groups live under a prefix of their own (``?prefix=``), so tests and runs never meet,
    and :meth:`close` deletes them; on the mock, ``prefixed=False`` keeps plain names."""

    def __init__(self, clock: ManualClock, *, prefixed: bool = True) -> None:
        from headwater.log.kafka import KafkaBackend

        self.real = bool(KAFKA_BOOTSTRAP)
        self.prefix = f"hwtest-{uuid.uuid4().hex[:12]}" if self.real or prefixed else ""
        self.owner: KafkaBackend | None = None
        if self.real:
            self.bootstrap = KAFKA_BOOTSTRAP
        else:
            self.owner = KafkaBackend("kafka+mock://", clock=clock)  # owns the mock
            self.bootstrap = self.owner.bootstrap_servers

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}" + (f"?prefix={self.prefix}" if self.prefix else "")

    def name(self, topic_or_group: str) -> str:
        """The name in Kafka of a topic or group of the log."""
        return f"{self.prefix}.{topic_or_group}" if self.prefix else topic_or_group

    def close(self) -> None:
        if self.owner is not None:
            self.owner.close()
            return
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        mine = [t for t in admin.list_topics(timeout=10).topics
                if t.startswith(f"{self.prefix}.")]
        if mine:
            for future in admin.delete_topics(mine, operation_timeout=30).values():
                future.result()
        groups = [g.group_id for g in admin.list_consumer_groups().result(timeout=10).valid
                  if g.group_id.startswith(f"{self.prefix}.")]
        if groups:
            for future in admin.delete_consumer_groups(groups).values():
                future.result()


@contextmanager
def kafka_harness(tmp_path: Path) -> Iterator[Harness]:
    require_extra("confluent_kafka", "kafka")
    from headwater.log.kafka import KafkaBackend

    clock = ManualClock(START_US)
    target = KafkaTarget(clock)
    harness = Harness("kafka", clock,
                      lambda: KafkaBackend(target.url, clock=clock, timeout_s=10))
    try:
        yield harness
    finally:
        harness.close()
        target.close()


HARNESSES = {
    "memory": memory_harness,
    "embedded": embedded_harness,
    "redis": redis_harness,
    "kafka": kafka_harness,
}
