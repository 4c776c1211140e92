"""One harness per log backend, so every contract test runs against all of them.

A harness opens :class:`~headwater.log.Log` handles onto one storage; opening a second
handle after closing the first is how tests simulate a process restart. Server backends
skip when their server is absent, unless ``HEADWATER_REQUIRE_SERVICES=1`` (set by CI),
which turns the skip into a failure.
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

START_US = 1_700_000_000_000_000
REDIS_URL = os.environ.get("HEADWATER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


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
    pytest.importorskip("redis", reason="pip install 'headwater[redis]'")
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


@contextmanager
def kafka_harness(tmp_path: Path) -> Iterator[Harness]:
    pytest.importorskip("confluent_kafka", reason="pip install 'headwater[kafka]'")
    from headwater.log.kafka import KafkaBackend

    clock = ManualClock(START_US)
    cluster = KafkaBackend("kafka+mock://", clock=clock)  # owns the mock cluster
    url = f"kafka://{cluster.bootstrap_servers}"
    harness = Harness("kafka", clock, lambda: KafkaBackend(url, clock=clock, timeout_s=10))
    try:
        yield harness
    finally:
        harness.close()
        cluster.close()


HARNESSES = {
    "memory": memory_harness,
    "embedded": embedded_harness,
    "redis": redis_harness,
    "kafka": kafka_harness,
}
