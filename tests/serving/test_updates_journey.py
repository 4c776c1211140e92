"""A label appended, the next prediction reflects it: ``headwater run`` as real processes
(server, label joiner, continual trainer, feature engine), HTTP on loopback, on the
embedded default and on Redis + PostgreSQL.

The served score after the label equals the score of the served version that learnt
that label (rebuilt here from the training examples, with the trainers' own loop), and
the prediction log carries the served state (version, update offset); ``headwater models
reproduce --update`` rebuilds that state and finds the scores served with it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC
from headwater.learning import read_examples, score_then_learn
from headwater.log import Schema
from headwater.log.schema import TIMESTAMP
from headwater.models import LogisticRegression
from headwater.registry import open_registry
from headwater.registry.updates import MODEL_UPDATES_TOPIC, decode
from tests.learning.test_trainer import Stream
from tests.processes import (
    Backends,
    Server,
    environment,
    free_port,
    headwater,
    http,
    wait_for,
)

PROJECT = textwrap.dedent(
    """
    from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
    user = Entity("user", key="user")
    events = StreamSource.of("events")
    total = Feature.of("total", user, events, "sum", column="x", window=Lifetime())
    fs = FeatureSet("fs", (total,))
    """
)


def _now() -> int:
    return time.time_ns() // 1000


@pytest.mark.slow
def test_a_label_reaches_the_next_prediction(tmp_path: Path, backends: Backends) -> None:
    home = tmp_path / "home"
    project = tmp_path / "features.py"
    project.write_text(PROJECT)
    log = backends.open_log(home)
    log.create_topic("events", Schema.of({"user": "string", "x": "float64", "ts": "timestamp"},
                                         key="user", event_time="ts"))
    log.ensure_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA)
    first = LogisticRegression()  # a version that has learnt: its updates are deltas
    first.learn({"total": np.array([1.0, -1.0] * 10)}, np.array([1, 0] * 10))
    first.save(tmp_path / "initial")
    settings = backends.settings(home)
    with open_registry(settings=settings) as registry:
        registry.register("m", tmp_path / "initial")
        registry.promote("m", 1, actor="test", reason="the first version")
    port = free_port()
    run = subprocess.Popen(
        [sys.executable, "-m", "headwater", "run", "--model", "m", "--project", str(project),
         "--feature-set", "fs", "--port", str(port), "--window", "1h", "--timeout-label",
         "none", "--every", "1h", "--update-every-ms", "20"],
        env=environment(home, backends.environment(home)), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    stream = run.stderr
    assert stream is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")),
                              daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http("GET", f"{base}/ready")[0] == 200, 120, "the server")
        log.append("events", pa.record_batch({
            "user": ["a"], "x": [2.5], "ts": pa.array([_now()], pa.int64()).cast(TIMESTAMP)}))

        def predict(rid: str) -> dict[str, Any]:
            status, answer = http("POST", f"{base}/predict",
                                  {"entities": {"user": "a"}, "request_id": rid})
            assert status == 200, answer
            return answer

        wait_for(lambda: not predict(f"warm-{time.monotonic_ns()}")["unknown_entity"], 60,
                 "the feature engine")
        asked = predict("asked")
        assert (asked["version"], asked["update"]) == (1, None)
        log.append(OUTCOMES_TOPIC, pa.record_batch({
            "request_id": ["asked"], "entity": ["a"], "label": pa.array([0.0], pa.float64()),
            "ts": pa.array([_now()], pa.int64()).cast(TIMESTAMP)},
            schema=OUTCOMES_SCHEMA.arrow_schema()))
        answers: list[dict[str, Any]] = []

        def updated() -> bool:
            answers.append(predict(f"after-{len(answers)}"))
            return answers[-1]["update"] is not None

        wait_for(updated, 60, "a prediction served with the update")
        after = answers[-1]

        # the model that learnt the label: version 1 plus the one training example
        examples = read_examples(log, {0: 0}, None)
        assert len(examples) == 1
        assert examples.y.tolist() == [0.0]
        learnt = LogisticRegression.load(tmp_path / "initial")
        score_then_learn(learnt, examples.features, examples.y)
        assert after["version"] == 1
        assert after["score"] == learnt.predict_one({"total": 2.5}) < asked["score"]
        updates = decode(log.read(MODEL_UPDATES_TOPIC, 0, after["update"], 1).batch)
        assert updates[0].base == 1
        assert updates[0].training.examples == 1
        (ranges,) = [t.ranges for t in updates[0].training.topics]
        assert [(r.partition, r.start, r.end) for r in ranges] == [(0, 0, 1)]

        # the prediction log carries the state each prediction was served with
        def logged() -> dict[str, tuple[int, int | None]]:
            rows = [r for f in log.replay("predictions") for r in f.batch.to_pylist()]
            return {r["request_id"]: (r["version"], r["update"]) for r in rows}

        wait_for(lambda: after["request_id"] in logged(), 30, "the prediction log")
        states = logged()
        assert states["asked"] == (1, None)
        assert states[after["request_id"]] == (1, after["update"])

        # reproduce rebuilds (version, update) and finds the scores served with it
        done = headwater(home, "models", "reproduce", "m", "1", "--update",
                         str(after["update"]), "--json", env=backends.environment(home))
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        assert found["matches"]
        assert found["predictions"] >= 1
        assert found["max_score_gap"] == 0.0
        assert found["replay_max_gap"] <= 1e-9
    finally:
        run.send_signal(signal.SIGINT)
        try:
            run.wait(60)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait()
        reader.join(5)
        log.close()
    assert run.returncode == 0, "".join(lines)


@pytest.mark.slow
def test_every_worker_serves_the_updates_and_a_checkpoint_on_demand(
        tmp_path: Path, backends: Backends) -> None:
    """``headwater serve --workers 2`` and ``headwater train --strategy continual`` as
    processes: every worker serves the trainer's update (the scores a model that learnt
    the examples gives), and SIGUSR1 makes the trainer record a checkpoint the workers
    then serve as a version."""
    home = tmp_path / "home"
    project = tmp_path / "features.py"
    project.write_text(PROJECT)
    env = backends.environment(home)
    log = backends.open_log(home)
    log.create_topic("events", Schema.of({"user": "string", "x": "float64", "ts": "timestamp"},
                                         key="user", event_time="ts"))
    stream = Stream(log)
    first = LogisticRegression()
    first.learn({"x1": np.array([1.0, -1.0] * 10), "x2": np.array([0.5, -0.5] * 10)},
                np.array([1, 0] * 10))
    first.save(tmp_path / "initial")
    with open_registry(settings=backends.settings(home)) as registry:
        registry.register("m", tmp_path / "initial")
        registry.promote("m", 1, actor="test", reason="the first version")
    trainer = subprocess.Popen(
        [sys.executable, "-m", "headwater", "train", "--model", "m", "--strategy",
         "continual", "--every", "1h", "--update-every-ms", "20", "--margin", "1.0",
         "--gate-min-examples", "1"],
        env=environment(home, env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    said: list[str] = []
    stream_err = trainer.stderr
    assert stream_err is not None
    reader = threading.Thread(target=lambda: said.extend(iter(stream_err.readline, "")),
                              daemon=True)
    reader.start()
    try:
        with Server(home, "--model", "m", "--project", str(project), "--workers", "2",
                    env=env) as server:
            wait_for(lambda: any("running (pid" in line for line in said), 60, "the trainer")
            stream.add(50)

            def served(update: bool) -> list[dict[str, Any]]:
                answers = []
                for i in range(12):  # a new connection each: the kernel spreads them
                    status, answer = server.post("/predict", {
                        "entities": {"user": f"u{i}"}, "request": {"x1": 0.3 * i - 1.5,
                                                                   "x2": 0.2}})
                    assert status == 200, answer
                    answers.append(answer)
                return answers

            wait_for(lambda: all(a["update"] is not None for a in served(True)), 60,
                     "every worker to serve the update")
            newest = max(log.end_offsets(MODEL_UPDATES_TOPIC)) - 1
            wait_for(lambda: all(a["update"] == newest for a in served(True)), 30,
                     "the newest update")
            learnt = LogisticRegression.load(tmp_path / "initial")
            examples = read_examples(log)
            score_then_learn(learnt, examples.features, examples.y)
            for i, answer in enumerate(served(True)):
                assert (answer["version"], answer["update"]) == (1, newest)
                assert answer["score"] == learnt.predict_one({"x1": 0.3 * i - 1.5, "x2": 0.2})

            trainer.send_signal(signal.SIGUSR1)
            wait_for(lambda: all(a["version"] == 2 for a in served(False)), 60,
                     "every worker to serve the checkpoint")
            with open_registry(settings=backends.settings(home)) as registry:
                checkpoint = registry.get("m", "champion")
                assert checkpoint.version == 2
                assert checkpoint.lineage.created_by.reason == "checkpoint on demand (SIGUSR1)"
                assert checkpoint.lineage.training is not None
                assert checkpoint.lineage.training.examples == 50
            for i, answer in enumerate(served(False)):
                assert answer["score"] == learnt.predict_one({"x1": 0.3 * i - 1.5, "x2": 0.2})
    finally:
        trainer.send_signal(signal.SIGINT)
        try:
            trainer.wait(60)
        except subprocess.TimeoutExpired:
            trainer.kill()
            trainer.wait()
        reader.join(5)
        log.close()
    assert trainer.returncode == 0, "".join(said)
