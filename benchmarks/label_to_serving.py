"""Label to serving, live: from a label's append to the first prediction served by a model
that learnt it, with the processes of ``headwater run``.

``headwater run`` starts the feature engine, the server, the label joiner and a continual
trainer as separate processes (with their defaults: the trainer sends an update every
``--update-every-ms``, the server follows the ``model_updates`` topic). For each sample
this script asks ``POST /predict`` for a user (request id ``r<i>``), waits until that
prediction is logged, appends an explicit label for it to the outcomes topic, then polls
``POST /predict`` over HTTP on 127.0.0.1 until the answer names a model update whose
slice holds that label's example (the update's cumulative example count: one example per
label, in order), and times it from just before the append, in wall time. The first
``WARMUP`` labels are not sampled (the processes' first batches).

:func:`label_to_serving` runs one backend: ``embedded`` (log, online store and model
store in a directory) or ``redis`` (log and online store on Redis, the model store in the
directory). ``benchmarks/learning.py`` prints its figures; run alone it prints them too:
``python benchmarks/label_to_serving.py --labels 60``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from headwater.config import Settings
from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC
from headwater.log import Log, Schema, open_log
from headwater.log.schema import TIMESTAMP
from headwater.models import LogisticRegression
from headwater.registry import open_registry
from headwater.registry.updates import MODEL_UPDATES_TOPIC

PROJECT = textwrap.dedent("""
    from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
    user = Entity("user", key="user")
    events = StreamSource.of("events")
    total = Feature.of("total", user, events, "sum", column="x", window=Lifetime())
    fs = FeatureSet("fs", (total,))
""")
#: Labels appended before the samples.
WARMUP = 3
USERS = 20
SCHEMA = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"}, key="user",
                   event_time="ts")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _now() -> int:
    return time.time_ns() // 1000


@contextmanager
def _world(backend: str, redis_url: str) -> Iterator[tuple[dict[str, str], Settings, Path]]:
    tmp = Path(tempfile.mkdtemp(prefix="hw-bench-l2s-"))
    env = {"HEADWATER_HOME": str(tmp / "home"), "HEADWATER_FSYNC": "never"}
    prefix = f"hw-bench-{uuid.uuid4().hex[:10]}"
    if backend == "redis":
        env["HEADWATER_LOG_URL"] = f"{redis_url}?prefix={prefix}-log"
        env["HEADWATER_ONLINE_URL"] = f"{redis_url}?prefix={prefix}-online"
    settings = Settings.from_env(env)
    try:
        with open_log(settings=settings) as log:
            log.create_topic("events", SCHEMA)
            log.ensure_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA)
        (tmp / "features.py").write_text(PROJECT)
        first = LogisticRegression()
        first.learn({"total": np.array([1.0, -1.0] * 50)}, np.array([1, 0] * 50))
        first.save(tmp / "model")
        with open_registry(settings.registry_location) as registry:
            registry.register("m", tmp / "model")
            registry.promote("m", 1, actor="bench", reason="the served model")
        yield env, settings, tmp
    finally:
        if backend == "redis":
            from headwater.log.redis.backend import RedisBackend
            from headwater.store.online.redis import RedisOnlineStore

            for destroyable in (RedisBackend(redis_url, prefix=f"{prefix}-log"),
                                RedisOnlineStore(redis_url, prefix=f"{prefix}-online")):
                destroyable.destroy()
                destroyable.close()
        shutil.rmtree(tmp, ignore_errors=True)


class _Client:
    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def predict(self, user: str, rid: str) -> dict[str, Any]:
        body = json.dumps({"entities": {"user": user}, "request_id": rid})
        self.connection.request("POST", "/predict", body,
                                {"content-type": "application/json"})
        response = self.connection.getresponse()
        answer: dict[str, Any] = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"predict answered {response.status}: {answer}")
        return answer

    def ready(self) -> bool:
        try:
            self.connection.request("GET", "/ready")
            response = self.connection.getresponse()
            response.read()
            return response.status == 200
        except OSError:
            self.connection.close()
            return False


def _examples_of(log: Log, offset: int, cache: dict[int, int]) -> int:
    """The cumulative example count of the update at ``offset``."""
    if offset not in cache:
        batch = log.read(MODEL_UPDATES_TOPIC, 0, offset, 1).batch
        cache[offset] = int(batch.column("examples")[0].as_py())
    return cache[offset]


def _logged(log: Log, rid: str, seen: set[str], position: list[int]) -> bool:
    """Whether the prediction ``rid`` is on the predictions topic (read on from
    ``position``)."""
    if rid in seen:
        return True
    try:
        fetched = log.read("predictions", 0, position[0], 10_000)
    except Exception:
        return False
    seen.update(fetched.batch.column("request_id").to_pylist())
    position[0] = fetched.next_offset
    return rid in seen


def label_to_serving(backend: str, redis_url: str, labels: int) -> dict[str, Any]:
    """``label_to_serving_*_ms_<backend>``: see the module docstring."""
    with _world(backend, redis_url) as (env, settings, tmp):
        port = _free_port()
        run = subprocess.Popen(
            [sys.executable, "-m", "headwater", "run", "--model", "m", "--project",
             str(tmp / "features.py"), "--feature-set", "fs", "--port", str(port),
             "--window", "1h", "--timeout-label", "none", "--every", "24h"],
            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        try:
            with open_log(settings=settings) as log:
                return _measure(log, port, labels, backend, run)
        finally:
            run.send_signal(signal.SIGINT)
            try:
                run.wait(60)
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait()


def _measure(log: Log, port: int, labels: int, backend: str,
             run: subprocess.Popen[str]) -> dict[str, Any]:
    client = _Client(port)
    deadline = time.monotonic() + 120
    while not client.ready():
        if run.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("headwater run did not serve: " + (run.stderr.read()
                                                                   if run.stderr else ""))
        time.sleep(0.2)
    users = [f"u{i}" for i in range(USERS)]
    log.append("events", pa.record_batch({
        "user": users, "x": [float(i % 7 - 3) for i in range(USERS)],
        "ts": pa.array([_now()] * USERS, pa.int64()).cast(TIMESTAMP)}))
    while client.predict(users[-1], f"warm-{time.monotonic_ns()}")["unknown_entity"]:
        time.sleep(0.05)
    seen: set[str] = set()
    position = [0]
    cache: dict[int, int] = {}
    latencies: list[float] = []
    polls = 0
    rng = np.random.default_rng(0)
    for i in range(WARMUP + labels):
        user = users[i % USERS]
        rid = f"r{i}"
        client.predict(user, rid)
        while not _logged(log, rid, seen, position):
            time.sleep(0.005)
        label = float(rng.integers(0, 2))
        started = time.perf_counter()
        log.append(OUTCOMES_TOPIC, pa.record_batch({
            "request_id": [rid], "entity": [user], "label": pa.array([label], pa.float64()),
            "ts": pa.array([_now()], pa.int64()).cast(TIMESTAMP)},
            schema=OUTCOMES_SCHEMA.arrow_schema()))
        give_up = started + 30.0
        while True:
            answer = client.predict(user, f"p{i}-{polls}")
            polls += 1
            update = answer.get("update")
            if update is not None and _examples_of(log, update, cache) >= i + 1:
                elapsed_ms = (time.perf_counter() - started) * 1e3
                break
            if time.perf_counter() > give_up:
                raise RuntimeError(f"label {i} was not served within 30 s ({backend})")
            time.sleep(0.002)
        if i >= WARMUP:
            latencies.append(elapsed_ms)
        if (i + 1) % 10 == 0:
            _log(f"{backend}: {i + 1}/{WARMUP + labels} labels, last {elapsed_ms:.0f} ms")
    values = np.array(latencies)
    return {f"label_to_serving_p50_ms_{backend}": round(float(np.percentile(values, 50)), 1),
            f"label_to_serving_p99_ms_{backend}": round(float(np.percentile(values, 99)), 1),
            f"label_to_serving_max_ms_{backend}": round(float(values.max()), 1),
            f"label_to_serving_samples_{backend}": len(values)}


def figures(backends: list[str], redis_url: str, labels: int) -> dict[str, Any]:
    """Every backend's figures, and ``label_to_serving_p99_ms``: the worst backend's p99
    (the target, <= 1000 ms, holds for each)."""
    out: dict[str, Any] = {}
    for backend in backends:
        _log(f"label to serving on {backend}")
        out.update(label_to_serving(backend, redis_url, labels))
    out["label_to_serving_p99_ms"] = max(out[f"label_to_serving_p99_ms_{b}"] for b in backends)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, default=60)
    parser.add_argument("--backends", default="embedded,redis")
    parser.add_argument("--redis", default=os.environ.get("HEADWATER_TEST_REDIS_URL",
                                                          "redis://127.0.0.1:6379/15"))
    args = parser.parse_args()
    print(json.dumps(figures(args.backends.split(","), args.redis, args.labels), indent=2))


if __name__ == "__main__":
    main()
