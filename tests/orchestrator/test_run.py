"""``headwater run`` end to end: four real processes; predictions become training examples
and versions; a trainer killed with SIGKILL is restarted while the server keeps answering."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest

from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC
from headwater.log import Log, Schema
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.models import LogisticRegression
from headwater.registry import open_registry

PROJECT = textwrap.dedent(
    """
    from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
    user = Entity("user", key="user")
    events = StreamSource.of("events")
    total = Feature.of("total", user, events, "sum", column="x", window=Lifetime())
    fs = FeatureSet("fs", (total,))
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: object | None = None) -> tuple[int, dict[str, object]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except OSError:
        return 0, {}


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_headwater_run_keeps_the_loop_going_through_a_crash(tmp_path: Path) -> None:
    home = tmp_path / "home"
    project = tmp_path / "features.py"
    project.write_text(PROJECT)
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    log.create_topic("events", Schema.of({"user": "string", "x": "float64",
                                          "ts": "timestamp"}, key="user", event_time="ts"))
    log.ensure_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA)
    LogisticRegression().save(tmp_path / "initial")
    with open_registry(home / "registry") as registry:
        registry.register("m", tmp_path / "initial")
        registry.promote("m", 1, actor="test", reason="the first version")
    port = free_port()
    env = {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never"}
    run = subprocess.Popen(
        [sys.executable, "-m", "headwater", "run", "--model", "m", "--project", str(project),
         "--feature-set", "fs", "--port", str(port), "--window", "2s", "--timeout-label", "0",
         "--every", "1s", "--volume", "5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []  # what the supervisor says, read as it comes
    stderr = run.stderr
    assert stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(stderr.readline, "")),
                              daemon=True)
    reader.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: http("GET", f"{base}/ready")[0] == 200, 60, "the server")
        now = int(time.time() * 1_000_000)
        log.append("events", pa.record_batch({
            "user": ["a", "b"], "x": [1.0, -1.0],
            "ts": pa.array([now, now], pa.int64()).cast(TIMESTAMP)}))
        ids = []
        for i in range(20):
            status, answer = http("POST", f"{base}/predict",
                                  {"entities": {"user": "ab"[i % 2]}, "request_id": f"r{i}"})
            assert status == 200, answer
            ids.append(str(answer["request_id"]))
        clicked = ids[::2]  # user a clicks, b never does
        stamp = int(time.time() * 1_000_000)
        log.append(OUTCOMES_TOPIC, pa.record_batch({
            "request_id": clicked, "entity": ["a"] * len(clicked),
            "label": pa.array([None] * len(clicked), pa.float64()),
            "ts": pa.array([stamp] * len(clicked), pa.int64()).cast(TIMESTAMP)},
            schema=OUTCOMES_SCHEMA.arrow_schema()))

        def examples() -> int:
            try:
                return sum(log.end_offsets("training_examples"))
            except Exception:
                return 0

        wait_for(lambda: examples() >= 20, 60, "the training examples")

        def versions() -> int:
            with open_registry(home / "registry") as registry:
                return len(registry.versions("m"))

        wait_for(lambda: versions() >= 2, 60, "a version from the trainer")
        assert (home / "run" / "trainer.log").exists()
        # the supervisor said which pid the trainer has; kill it
        def trainer_pid() -> int | None:
            found = re.findall(r"trainer: started \(pid (\d+)\)", "".join(lines))
            return int(found[-1]) if found else None

        wait_for(lambda: trainer_pid() is not None, 10, "the trainer's pid")
        first = trainer_pid()
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: trainer_pid() not in (None, first), 30, "the trainer's restart")
        assert http("POST", f"{base}/predict", {"entities": {"user": "a"}})[0] == 200
    finally:
        run.send_signal(signal.SIGINT)
        try:
            run.wait(30)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
    assert run.returncode == 0
