"""The server follows the feature engine: ``headwater features run`` and ``headwater serve``
as separate processes, HTTP on loopback, on the embedded default and on Redis. A value
the engine writes after the server started is the one served and logged; an outcome
sent over HTTP is in the log once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from headwater.config import Settings
from headwater.labels import OUTCOMES_TOPIC
from headwater.log import Schema, open_log
from headwater.models import LinearRegression
from headwater.registry import open_registry
from headwater.serving.prediction_log import PREDICTIONS_TOPIC
from tests.extras import require_extra
from tests.log.harness import REDIS_URL, unavailable

PROJECT = textwrap.dedent("""
    from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
    user = Entity("user", key="user")
    events = StreamSource.of("events")
    total = Feature.of("total", user, events, "sum", column="x", window=Lifetime())
    fs = FeatureSet("fs", (total,))
""")
SCHEMA = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"}, key="user",
                   event_time="ts")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: object) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(params=["embedded", "redis"])
def environment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """``HEADWATER_*`` variables of a fresh home, its log and online store on the backend."""
    env = {"HEADWATER_HOME": str(tmp_path / "home"), "HEADWATER_FSYNC": "never"}
    if request.param == "embedded":
        yield env
        return
    require_extra("redis", "redis")
    from headwater.log.redis.backend import RedisBackend
    from headwater.store.online.redis import RedisOnlineStore

    prefix = f"hwtest-{uuid.uuid4().hex[:12]}"
    log = RedisBackend(REDIS_URL, prefix=f"{prefix}-log")
    online = RedisOnlineStore(REDIS_URL, prefix=f"{prefix}-online")
    try:
        log.ping()
    except Exception as exc:
        online.close()
        log.close()
        unavailable(f"Redis at {REDIS_URL}: {exc}")
    env["HEADWATER_LOG_URL"] = f"{REDIS_URL}?prefix={prefix}-log"
    env["HEADWATER_ONLINE_URL"] = f"{REDIS_URL}?prefix={prefix}-online"
    try:
        yield env
    finally:
        for destroyable in (log, online):
            destroyable.destroy()
            destroyable.close()


@pytest.mark.slow
def test_a_value_written_after_the_server_started_is_served(
        environment: dict[str, str], tmp_path: Path) -> None:
    settings = Settings.from_env(environment)
    project = tmp_path / "features.py"
    project.write_text(PROJECT)
    model = LinearRegression(standardize=False)
    totals = np.arange(0.0, 20.0)
    model.learn({"total": totals}, 0.5 * totals)
    model.save(tmp_path / "model")
    with open_log(settings=settings) as log:
        log.create_topic("events", SCHEMA)
        # a value the engine wrote before the server started
        log.append("events", [{"user": "ada", "x": 2.0, "ts": int(time.time() * 1e6)}])
    with open_registry(settings.registry_location) as registry:
        registry.register("m", tmp_path / "model")
        registry.promote("m", 1, actor="test", reason="the served model")
    env = {**os.environ, **environment}
    command = [sys.executable, "-m", "headwater"]
    engine = subprocess.Popen([*command, "features", "run", "--project", str(project)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    errors = tmp_path / "server.err"
    server = subprocess.Popen([*command, "serve", "--model", "m", "--project", str(project),
                               "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=errors.open("wb"))
    try:
        deadline = time.monotonic() + 60
        while get_status(f"{base}/ready") != 200:
            assert server.poll() is None, "the server stopped"
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)

        def served(user: str, total: float) -> dict[str, Any]:
            """Poll /predict until it answers with the score of ``total`` (at most 20 s)."""
            expected = model.predict_one({"total": total})
            until = time.monotonic() + 20
            while True:
                status, answer = post(f"{base}/predict", {"entities": {"user": user}})
                assert status == 200, answer
                if answer["score"] == expected or time.monotonic() > until:
                    return dict(answer)
                time.sleep(0.02)

        assert served("ada", 2.0)["score"] == model.predict_one({"total": 2.0})
        status, unknown = post(f"{base}/predict", {"entities": {"user": "bob"},
                                                    "request_id": "bob-before"})
        assert status == 200
        assert unknown["unknown_entity"] is True
        with open_log(settings=settings) as log:  # written while the server runs
            now = int(time.time() * 1e6)
            log.append("events", [{"user": "ada", "x": 5.0, "ts": now},
                                  {"user": "bob", "x": 3.0, "ts": now}])
        ada = served("ada", 7.0)
        bob = served("bob", 3.0)
        assert ada["score"] == model.predict_one({"total": 7.0})
        assert bob["score"] == model.predict_one({"total": 3.0})
        assert bob["unknown_entity"] is False
        # and the features logged for training are the ones served
        ids = {ada["request_id"]: {"total": 7.0}, bob["request_id"]: {"total": 3.0}}
        logged: dict[str, dict[str, float]] = {}
        until = time.monotonic() + 20
        while set(logged) != set(ids) and time.monotonic() < until:
            time.sleep(0.1)
            with open_log(settings=settings) as log:
                for fetched in log.replay(PREDICTIONS_TOPIC):
                    for rid, features in zip(fetched.batch.column("request_id").to_pylist(),
                                             fetched.batch.column("features").to_pylist(),
                                             strict=True):
                        if rid in ids:
                            logged[rid] = msgspec.json.decode(features)
        assert logged == ids
        # the outcome of ada's prediction, sent over HTTP, is in the log once
        outcome = {"request_id": ada["request_id"], "entity": "ada", "label": 1.0}
        assert post(f"{base}/outcomes", outcome) == (200, {"appended": 1, "duplicates": 0})
        assert post(f"{base}/outcomes", outcome) == (200, {"appended": 0, "duplicates": 1})
        with open_log(settings=settings) as log:
            sent = [(rid, entity, label) for fetched in log.replay(OUTCOMES_TOPIC)
                    for rid, entity, label in zip(*(fetched.batch.column(c).to_pylist() for c in
                                                    ("request_id", "entity", "label")),
                                                  strict=True)]
        assert sent == [(ada["request_id"], "ada", 1.0)]
    finally:
        stop(server)
        stop(engine)
    assert "Traceback" not in errors.read_text()  # Ctrl-C stops it cleanly (exit 130)
