"""``headwater serve`` as a process, on loopback: a label a binary model cannot learn
from and an outcome for another entity than its request's are refused, naming the field
and the reason; a requested stop says what it flushed and exits 0."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from headwater.serving.prediction_log import PREDICTIONS_TOPIC
from tests import processes
from tests.processes import Backends, Server

PROJECT = """
from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
user = Entity("user", key="user")
payments = StreamSource.of("payments")
spent = Feature.of("spent", user, payments, "sum", column="amount", window=Lifetime())
fs = FeatureSet("fs", (spent,))
"""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_outcomes_are_checked_and_a_stop_says_what_was_flushed(
        tmp_path: Path, backends: Backends, stop: signal.Signals) -> None:
    home = tmp_path / "home"
    env = backends.environment(home)
    (tmp_path / "features.py").write_text(PROJECT)
    made = processes.headwater(home, "models", "register", "churn", "--builtin", "logistic",
                               "--promote", "--reason", "a first model", env=env)
    assert made.returncode == 0, made.stderr
    server = Server(home, "--model", "churn", "--project", str(tmp_path / "features.py"),
                    env=env)
    with server:
        status, answer = server.post("/predict", {"entities": {"user": "u1"},
                                                  "request": {"amount": 3.0},
                                                  "request_id": "p1"})
        assert status == 200, answer

        status, answer = server.post("/outcomes", {"request_id": "p1", "entity": "u1",
                                                   "label": 2.5})
        assert status == 422, answer
        assert answer["error"]["field"] == "label"
        assert "expected 0 or 1" in answer["error"]["reason"]
        assert "2.5" in answer["error"]["reason"]

        status, answer = server.post("/outcomes", {"request_id": "p1", "entity": "u2",
                                                   "label": 1.0})
        assert status == 409, answer
        assert answer["error"]["field"] == "request_id"
        assert "'p1'" in answer["error"]["reason"]
        assert "'u1'" in answer["error"]["reason"]

        status, answer = server.post("/outcomes", {"request_id": "p1", "entity": "u1",
                                                   "label": 1.0})
        assert (status, answer) == (200, {"appended": 1, "duplicates": 0})
        assert server.stop(stop) == 0, server.printed()
    said = server.printed()
    assert "stopping churn" in said
    assert f"1 predictions logged to {PREDICTIONS_TOPIC}" in said
    assert "1 outcomes appended to outcomes" in said
    assert "Traceback" not in said
    with backends.open_log(home) as log:
        assert sum(f.batch.num_rows for f in log.replay(PREDICTIONS_TOPIC)) == 1
