"""Integer entity keys, from a CSV to ``/predict``, on the embedded store and on Redis.

The rule: an entity key is text, and an integer key is its decimal text. A carrier
``42`` produced from a CSV into an ``int64`` key column is stored by the engine as
``"42"``, so ``/predict`` finds it whether the request says ``42`` or ``"42"``.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from headwater.config import Settings
from headwater.features.online import FeatureReader
from headwater.features.project import load_project
from headwater.log import open_log
from headwater.models import LogisticRegression
from headwater.registry import open_registry
from headwater.serving import ChampionOnly, Deployment, Predictor
from headwater.serving.app import ServingApp
from headwater.serving.server import BackgroundServer
from headwater.store.online import open_online_store
from tests.extras import require_extra
from tests.log.harness import REDIS_URL, unavailable

CSV = """carrier,delay,ts
42,12.5,2024-03-01T08:00:00Z
7,3,2024-03-01T09:00:00Z
42,4.5,2024-03-01T10:00:00Z
42,1.0,2024-03-02T10:00:00Z
"""
PROJECT = """
from headwater.features import Entity, Feature, FeatureSet, StreamSource

carrier = Entity("carrier", key="carrier")
flights = StreamSource.of("flights")
delays = FeatureSet("delays", (
    Feature.of("total_delay", carrier, flights, "sum", column="delay"),
    Feature.of("flights", carrier, flights, "count"),
))
"""


@pytest.fixture(params=["embedded", "redis"])
def online_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "embedded":
        yield str(tmp_path / "home" / "online")
        return
    require_extra("redis", "redis")
    from headwater.store.online.redis import RedisOnlineStore

    prefix = f"hwtest-{uuid.uuid4().hex[:12]}"
    probe = RedisOnlineStore(REDIS_URL, prefix=prefix)
    try:
        probe.ping()
    except Exception as exc:
        probe.close()
        unavailable(f"Redis at {REDIS_URL}: {exc}")
    try:
        yield f"{REDIS_URL}?prefix={prefix}"
    finally:
        probe.destroy()
        probe.close()


def _headwater(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "headwater", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done


def _post(port: int, body: dict[str, Any]) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/predict", body=json.dumps(body),
                           headers={"content-type": "application/json"})
        response = connection.getresponse()
        answer: dict[str, Any] = json.loads(response.read())
        assert response.status == 200, answer
        return answer
    finally:
        connection.close()


def test_an_integer_key_from_a_csv_is_found_as_42_and_as_text(tmp_path: Path,
                                                              online_url: str) -> None:
    home = tmp_path / "home"
    (tmp_path / "flights.csv").write_text(CSV)
    project = tmp_path / "features.py"
    project.write_text(PROJECT)
    env = {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never",
           "HEADWATER_ONLINE_URL": online_url, "HEADWATER_PROJECT": str(project)}
    _headwater(env, "produce", "flights", str(tmp_path / "flights.csv"), "--create",
               "--key", "carrier", "--event-time", "ts")
    settings = Settings(home=str(home), online_url=online_url, fsync="never")
    with open_log(settings.log_location, settings=settings) as log:
        assert log.topic("flights").schema.field("carrier").type == "int64"
    _headwater(env, "features", "apply")
    _headwater(env, "features", "run", "--idle-timeout", "1")

    # The CLI reads the entity by its text.
    got = _headwater(env, "features", "get", "42", "--at", "2024-03-03T00:00:00Z")
    assert "18.0" in got.stdout

    feature_set = load_project(project).feature_set("delays")
    with closing(open_online_store(online_url, settings=settings, read_only=True)) as online:
        reader = FeatureReader(online, feature_set)
        now = 1_709_424_000_000_000  # 2024-03-03T00:00Z
        expected = {"total_delay": 12.5 + 4.5 + 1.0, "flights": 3.0}  # counted by hand
        assert reader.read({"carrier": 42}, now) == expected
        assert reader.read({"carrier": "42"}, now) == expected
        assert reader.read({"carrier": 7}, now) == {"total_delay": 3.0, "flights": 1.0}

        model = LogisticRegression(hash_bits=6)
        model.learn({"total_delay": np.array([1.0, 20.0]), "flights": np.array([1.0, 5.0])},
                    np.array([0, 1]))
        model.save(tmp_path / "model")
        with open_registry("memory://", artifacts=tmp_path / "artifacts",
                           settings=settings) as registry:
            registry.register("late", tmp_path / "model")
            registry.promote("late", 1, actor="test", reason="first")
            deployment = Deployment(registry, "late", ChampionOnly())
            deployment.reload()
            app = ServingApp(Predictor(reader, deployment), deployment)
            with BackgroundServer(app, "127.0.0.1", 0) as server:
                as_int = _post(server.port, {"entities": {"carrier": 42}})
                as_text = _post(server.port, {"entities": {"carrier": "42"}})
                unknown = _post(server.port, {"entities": {"carrier": 43}})
                batch = _post(server.port, {"requests": [{"entities": {"carrier": 42}},
                                                         {"entities": {"carrier": "7"}}]})
    assert as_int["unknown_entity"] is False
    assert as_text["unknown_entity"] is False
    assert as_int["score"] == as_text["score"]
    assert as_int["missing"] == []
    assert unknown["unknown_entity"] is True
    assert [p["unknown_entity"] for p in batch["predictions"]] == [False, False]
    assert batch["predictions"][0]["score"] == as_int["score"]
