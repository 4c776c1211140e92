"""What the Redis Cluster online store does beyond the contract (which runs against it in
``test_contract.py``): its location, its extra, its errors, where its keys go, reads
from an event loop, and the feature engine writing to it. Tests needing the cluster
skip without it (and fail in CI, which starts one: ``.ci/run``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import numpy as np
import pyarrow as pa
import pytest

from headwater.errors import BackendError, ConfigError
from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
from headwater.features.engine import FeatureEngine
from headwater.features.online import FeatureReader
from headwater.log import Log, Schema
from headwater.log.schema import TIMESTAMP
from headwater.store.online import MemoryOnlineStore, open_online_store
from headwater.testing import MemoryBackend
from tests.extras import import_without, require_extra
from tests.store.online.harness import REDIS_CLUSTER_URL, unavailable

if TYPE_CHECKING:
    from headwater.store.online.cluster import RedisClusterOnlineStore


@pytest.fixture
def store() -> Iterator[RedisClusterOnlineStore]:
    require_extra("redis", "redis")
    from headwater.store.online.cluster import RedisClusterOnlineStore

    try:
        found = open_online_store(f"{REDIS_CLUSTER_URL}?prefix=hwtest-{uuid.uuid4().hex[:12]}")
        assert isinstance(found, RedisClusterOnlineStore)
        found.ping()
    except BackendError as exc:
        unavailable(f"Redis Cluster at {REDIS_CLUSTER_URL}: {exc}")
    opened = cast("RedisClusterOnlineStore", found)
    try:
        yield opened
    finally:
        opened.destroy()
        opened.close()


def test_missing_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    error = import_without(monkeypatch, "headwater.store.online.cluster", "redis")
    assert str(error) == ("The Redis Cluster online store needs the 'redis' package: "
                          "pip install 'headwater[redis]'")


def test_a_prefix_with_braces_is_refused() -> None:
    require_extra("redis", "redis")
    with pytest.raises(ConfigError, match="without braces"):
        open_online_store("redis+cluster://127.0.0.1:7001?prefix=a{b}")


def test_no_cluster_there_raises_backend_error_without_the_password() -> None:
    require_extra("redis", "redis")
    with pytest.raises(BackendError, match=r"127\.0\.0\.1:1") as raised:
        open_online_store("redis+cluster://user:secret@127.0.0.1:1")
    assert "secret" not in str(raised.value)


def test_namespaces_spread_over_the_primaries_each_in_one_slot(
    store: RedisClusterOnlineStore,
) -> None:
    namespaces = [f"ns{i}" for i in range(24)]
    for ns in namespaces:
        store.write(ns, [(f"e{j}", {"a": f"{ns}-{j}".encode()}) for j in range(20)],
                    version=1)
    client = store._client
    slots = {ns: {client.keyslot(store._entity(ns, f"e{j}")) for j in range(20)}
             | {client.keyslot(store._meta(ns))} for ns in namespaces}
    assert all(len(s) == 1 for s in slots.values()), "a namespace's keys share one slot"
    primaries = {client.get_node_from_key(store._meta(ns)).name for ns in namespaces}
    assert len(primaries) > 1, "the namespaces are spread over the primaries"
    assert store.read_many("ns7", ["e3", "e99"]) == [{"a": b"ns7-3"}, {}]


def test_reads_from_an_event_loop_equal_the_blocking_reads(
    store: RedisClusterOnlineStore,
) -> None:
    store.write("user", [(f"u{i}", {"a": bytes([i]), "b": b"x" * i}) for i in range(50)])
    wanted = [f"u{i}" for i in range(0, 60, 3)]

    async def read() -> list[dict[str, bytes]]:
        try:
            return await store.read_many_async("user", wanted)
        finally:
            await store.close_async()

    assert asyncio.run(read()) == store.read_many("user", wanted)


def test_the_engine_writes_the_same_values_as_to_memory(
    store: RedisClusterOnlineStore,
) -> None:
    user = Entity("user", key="user")
    source = StreamSource.of("events")
    features = [Feature.of("n", user, source, "count", window=Lifetime()),
                Feature.of("top", user, source, "max", column="x")]
    log = Log(MemoryBackend())
    log.create_topic("events", Schema.of({"user": "string", "x": "float64", "ts": "timestamp"},
                                         key="user", event_time="ts"), partitions=3)
    rng = np.random.default_rng(2)
    log.append("events", pa.record_batch({
        "user": [f"u{i}" for i in rng.integers(0, 30, 600)],
        "x": rng.normal(size=600),
        "ts": pa.array(1_700_000_000_000_000 + np.arange(600), pa.int64()).cast(TIMESTAMP)}))
    memory = MemoryOnlineStore()
    for online, where in ((store, f"memory://cluster-{uuid.uuid4().hex}"),
                          (memory, f"memory://memory-{uuid.uuid4().hex}")):
        with FeatureEngine(log, features, online, state_dir=where, group=where) as engine:
            engine.run(idle_timeout_s=0)
    read = [FeatureReader(s, FeatureSet("all", tuple(features))) for s in (store, memory)]
    for i in range(30):
        on_cluster, in_memory = (r.read({"user": f"u{i}"}, 1_800_000_000_000_000) for r in read)
        assert on_cluster == in_memory
        assert on_cluster["n"]
