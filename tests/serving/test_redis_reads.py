"""Serving over the Redis online store: a request's feature reads are awaited on the event
loop, batched with those of the other requests in flight, and answer exactly what the
blocking path answers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from headwater.features import Feature
from headwater.features.engine import FeatureEngine
from headwater.features.online import FeatureReader
from headwater.serving import Predictor
from headwater.serving.app import ServingApp
from headwater.store.online.batched import BatchedReads
from tests.processes import http
from tests.serving.conftest import FEATURES, World, train
from tests.store.online.harness import REDIS_URL, unavailable

pytest.importorskip("redis", reason="pip install 'headwater[redis]'")
from headwater.store.online.redis import RedisOnlineStore

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_store(world: World, tmp_path: Path) -> Iterator[RedisOnlineStore]:
    """The world's features, written by the engine to a Redis store of its own."""
    store = RedisOnlineStore(REDIS_URL, prefix=f"hwtest-{uuid.uuid4().hex[:12]}")
    try:
        store.ping()
    except Exception as exc:
        store.close()
        unavailable(f"Redis at {REDIS_URL}: {exc}")
    with FeatureEngine(world.log, [f for f in FEATURES.features if isinstance(f, Feature)],
                       store, state_dir=tmp_path / "redis-state") as engine:
        engine.run(idle_timeout_s=0)
    try:
        yield store
    finally:
        store.destroy()
        store.close()


def test_concurrent_reads_go_out_together_and_each_gets_its_own_entity(
        redis_store: RedisOnlineStore) -> None:
    reads = BatchedReads(redis_store)
    users = [f"u{i % 5}" for i in range(12)] + ["nobody"]

    async def main() -> list[dict[str, bytes]]:
        try:
            return list(await asyncio.gather(*(reads.read("user", u) for u in users)))
        finally:
            await reads.close()

    found = asyncio.run(main())
    assert found == redis_store.read_many("user", users)
    assert found[-1] == {}
    assert set(found[0]) == {"spend", "txns", "biggest"}
    assert (reads.round_trips, reads.reads) == (1, len(users))


def test_a_script_the_server_does_not_know_is_sent_once_then_called_by_its_digest(
        redis_store: RedisOnlineStore) -> None:
    from headwater.log.redis.client import ScriptConnection
    from headwater.store.online.redis import READ

    script = ScriptConnection(REDIS_URL, f"{READ}-- {uuid.uuid4().hex}\n")  # a new digest
    keys = [redis_store._entity("user", user) for user in ("u1", "nobody")]

    async def main() -> list[object]:
        try:
            return [await script(keys), await script(keys)]
        finally:
            await script.close()

    first, second = asyncio.run(main())
    assert first == second
    assert isinstance(first, list)
    assert first[1] == []
    assert len(first[0]) == 6  # three features: names and blobs


def test_http_answers_over_redis_equal_the_blocking_path(
        world: World, redis_store: RedisOnlineStore) -> None:
    from headwater.serving.server import BackgroundServer

    world.register(train(1), "champion")
    deployment = world.deployment()
    blocking = world.predictor(deployment)  # the memory store the same engine wrote
    predictor = Predictor(FeatureReader(redis_store, FEATURES), deployment, clock=world.clock)
    assert predictor.reads is not None
    app = ServingApp(predictor, deployment)
    bodies: list[dict[str, Any]] = [
        {"entities": {"user": user}, "request": {"price": 10.0 + i, "device": "ios"}}
              for i, user in enumerate(["u0", "u1", "u2", "u3", "u4", "nobody"] * 8)]
    with BackgroundServer(app) as server, ThreadPoolExecutor(16) as pool:
        url = f"http://127.0.0.1:{server.port}/predict"
        answers: list[tuple[int, dict[str, Any]]] = list(
            pool.map(lambda body: http("POST", url, body), bodies))
    for body, (status, answer) in zip(bodies, answers, strict=True):
        assert status == 200, answer
        expected = blocking.predict(body["entities"], body["request"])
        assert answer["score"] == pytest.approx(expected.score, abs=1e-12), body
        assert answer["unknown_entity"] == (body["entities"]["user"] == "nobody")
    assert predictor.reads.reads == len(bodies)
    assert 1 <= predictor.reads.round_trips <= len(bodies)


def test_a_store_that_does_not_answer_is_a_503_naming_it(world: World) -> None:
    from headwater.serving.server import BackgroundServer

    world.register(train(1), "champion")
    deployment = world.deployment()
    away = RedisOnlineStore("redis://127.0.0.1:1/0", prefix="hwtest-away")
    predictor = Predictor(FeatureReader(away, FEATURES), deployment, clock=world.clock)
    with BackgroundServer(ServingApp(predictor, deployment)) as server:
        status, answer = http("POST", f"http://127.0.0.1:{server.port}/predict",
                              {"entities": {"user": "u1"}, "request": {"price": 1.0}})
        health = http("GET", f"http://127.0.0.1:{server.port}/health")[0]
    assert status == 503
    assert answer["error"]["field"] == "service"
    assert "127.0.0.1:1" in json.dumps(answer)
    assert health == 200
