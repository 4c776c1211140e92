"""``headwater serve --workers N`` as a user runs it: N processes answer on one port, each
logs its predictions as a producer of its own (every answer logged exactly once), and
SIGTERM to the command stops every worker."""

from __future__ import annotations

import json
import re
import signal
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from headwater.log import Log
from headwater.log.embedded import EmbeddedBackend
from headwater.serving.prediction_log import PREDICTIONS_TOPIC
from tests.orchestrator.test_run import free_port, wait_for
from tests.orchestrator.test_signals import Started, append_events, home_with_a_model
from tests.orchestrator.test_supervisor import alive
from tests.processes import headwater


def predict(port: int, user: str) -> dict[str, object] | None:
    """One request on a connection of its own (the kernel picks a worker per connection)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", method="POST",
        data=json.dumps({"entities": {"user": user}}).encode(),
        headers={"content-type": "application/json", "connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, object] = json.loads(response.read())
            return answer
    except OSError:
        return None


def worker_pids(said: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"worker-\d+: started \(pid (\d+)\)", said)]


def predictions(home: Path) -> list[str]:
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    ids: list[str] = []
    for partition in range(log.topic(PREDICTIONS_TOPIC).partitions):
        offset = 0
        while True:
            fetched = log.read(PREDICTIONS_TOPIC, partition, offset)
            if not fetched.batch.num_rows:
                break
            ids += fetched.batch.column("request_id").to_pylist()
            offset = fetched.next_offset
    return ids


@pytest.mark.slow
def test_two_workers_share_a_port_log_each_prediction_once_and_stop_together(
        tmp_path: Path) -> None:
    home, features, log = home_with_a_model(tmp_path)
    append_events(log, ["a", "b", "c"])
    engine = headwater(home, "features", "run", "--project", str(features), "--idle-timeout",
                       "0")
    assert engine.returncode == 0, engine.stderr
    port = free_port()
    server = Started(home, "serve", "--model", "m", "--project", str(features),
                     "--feature-set", "fs", "--port", str(port), "--workers", "2")
    try:
        wait_for(lambda: server.said.count("serving m (champion)") == 2, 90, "two workers")
        pids = worker_pids(server.said)
        assert len(pids) == 2, server.said
        assert all(alive(pid) for pid in pids)
        wait_for(lambda: predict(port, "a") is not None, 60, "a prediction")
        answers = [predict(port, user) for user in ["a", "b", "c", "nobody"] * 20]
        assert all(answer is not None for answer in answers)
        ids = [str(answer["request_id"]) for answer in answers if answer is not None]
        # Each worker names its request ids with a prefix of its own: both answer. A worker
        # says it serves before its socket listens, so on a loaded machine the first
        # requests may all reach the other one: ask until both have answered.
        def both_answered() -> bool:
            answer = predict(port, "a")
            assert answer is not None
            ids.append(str(answer["request_id"]))
            return len({rid.rsplit("-", 1)[0] for rid in ids}) == 2

        wait_for(both_answered, 60, "an answer from each worker")
        first = predict(port, "a")
        assert first is not None
        ids.append(str(first["request_id"]))
        server.process.send_signal(signal.SIGTERM)
        assert server.finish() == 0, server.said
        assert not any(alive(pid) for pid in pids)
    finally:
        server.kill()
    logged = Counter(predictions(home))
    # Every answer of the run is logged (the warm-up requests too), and each once.
    assert set(ids) <= set(logged)
    assert max(logged.values()) == 1
