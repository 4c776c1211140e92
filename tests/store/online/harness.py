"""One harness per online store backend, so every contract test runs against all of them.

A harness opens stores onto one storage; opening a second after closing the first is
how tests simulate a process restart. The Redis harnesses skip without their servers
(Redis on ``HEADWATER_TEST_REDIS_URL``; a Redis Cluster on
``HEADWATER_TEST_REDIS_CLUSTER_URL``, three primaries on 127.0.0.1:7001-7003 that
``.ci/run`` starts), unless ``HEADWATER_REQUIRE_SERVICES=1`` (set by CI) turns the skip
into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from headwater.store.online import EmbeddedOnlineStore, MemoryOnlineStore, OnlineStore
from tests.extras import require_extra
from tests.log.harness import REDIS_URL, unavailable

__all__ = ["HARNESSES", "REDIS_CLUSTER_URL", "REDIS_URL", "Harness", "unavailable"]

REDIS_CLUSTER_URL = os.environ.get("HEADWATER_TEST_REDIS_CLUSTER_URL",
                                   "redis+cluster://127.0.0.1:7001")


@dataclass
class Harness:
    """Opens stores over one storage; ``reopen`` simulates a restart."""

    name: str
    make: Callable[[], OnlineStore]
    opened: list[OnlineStore] = field(default_factory=list)

    def open(self) -> OnlineStore:
        store = self.make()
        self.opened.append(store)
        return store

    def reopen(self, store: OnlineStore) -> OnlineStore:
        store.close()
        return self.open()

    def close(self) -> None:
        for store in self.opened:
            store.close()


@contextmanager
def memory_harness(tmp_path: Path) -> Iterator[Harness]:
    store = MemoryOnlineStore()  # close() keeps the data: "reopening" goes on using it
    yield Harness("memory", lambda: store)


@contextmanager
def embedded_harness(tmp_path: Path) -> Iterator[Harness]:
    root = tmp_path / "online"
    harness = Harness("embedded", lambda: EmbeddedOnlineStore(root, fsync="never"))
    try:
        yield harness
    finally:
        harness.close()


@contextmanager
def redis_harness(tmp_path: Path) -> Iterator[Harness]:
    require_extra("redis", "redis")
    from headwater.store.online.redis import RedisOnlineStore

    prefix = f"hwtest-{uuid.uuid4().hex[:12]}"
    probe = RedisOnlineStore(REDIS_URL, prefix=prefix)
    try:
        probe.ping()
    except Exception as exc:
        probe.close()
        unavailable(f"Redis at {REDIS_URL}: {exc}")
    harness = Harness("redis", lambda: RedisOnlineStore(REDIS_URL, prefix=prefix))
    try:
        yield harness
    finally:
        harness.close()
        probe.destroy()
        probe.close()


@contextmanager
def redis_cluster_harness(tmp_path: Path) -> Iterator[Harness]:
    require_extra("redis", "redis")
    from headwater.store.online.cluster import RedisClusterOnlineStore

    prefix = f"hwtest-{uuid.uuid4().hex[:12]}"
    try:
        probe = RedisClusterOnlineStore(REDIS_CLUSTER_URL, prefix=prefix)
        probe.ping()
    except Exception as exc:
        unavailable(f"Redis Cluster at {REDIS_CLUSTER_URL}: {exc}")
    harness = Harness("redis-cluster",
                      lambda: RedisClusterOnlineStore(REDIS_CLUSTER_URL, prefix=prefix))
    try:
        yield harness
    finally:
        harness.close()
        probe.destroy()
        probe.close()


HARNESSES = {
    "memory": memory_harness,
    "embedded": embedded_harness,
    "redis": redis_harness,
    "redis-cluster": redis_cluster_harness,
}
