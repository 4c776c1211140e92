"""Retention from the command line: system topics get the default, ``topics retention``
changes it (shown by ``topics describe``), and the commands that write or join warn
where it falls short; ``headwater serve`` stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from headwater.serving.prediction_log import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from tests.orchestrator.test_run import free_port, wait_for
from tests.orchestrator.test_signals import Started, home_with_a_model


def headwater(home: Path, *args: str, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "headwater", *args],
                          env={**os.environ, "HEADWATER_HOME": str(home),
                               "HEADWATER_FSYNC": "never", **(env or {})},
                          capture_output=True, text=True, timeout=120)


def retention_line(home: Path, topic: str) -> str:
    described = headwater(home, "topics", "describe", topic)
    assert described.returncode == 0, described.stderr
    return next(line.split(None, 1)[1] for line in described.stdout.splitlines()
                if line.strip().startswith("retention"))


def test_system_topics_get_a_default_retention_that_the_cli_changes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    joined = headwater(home, "labels", "run", "--idle-timeout", "0", "--window", "10m")
    assert joined.returncode == 0, joined.stderr
    assert "warning" not in joined.stderr
    for topic in ("predictions", "outcomes", "training_examples", "outcomes.late",
                  "predictions.dlq"):
        assert retention_line(home, topic) == "7d", topic
    changed = headwater(home, "topics", "retention", "predictions", "--retention", "1h",
                        "--retention-bytes", "1000000")
    assert changed.returncode == 0, changed.stderr
    assert "topic predictions keeps 1h, 1,000,000 bytes per partition" in changed.stdout
    assert retention_line(home, "predictions") == "1h, 1,000,000 bytes per partition"
    # a label window longer than what the predictions topic keeps is named
    short = headwater(home, "labels", "run", "--idle-timeout", "0", "--window", "2h",
                      "--lateness", "30m")
    assert short.returncode == 0, short.stderr
    said = " ".join(short.stderr.split())
    assert ("warning: topic 'predictions' keeps events 1h, less than the label window plus "
            "lateness (2h30m)") in said
    assert "headwater topics retention predictions --retention 2h30m" in said
    assert "'outcomes'" not in said
    forever = headwater(home, "topics", "retention", "predictions", "--forever")
    assert forever.returncode == 0, forever.stderr
    assert retention_line(home, "predictions") == "forever"
    neither = headwater(home, "topics", "retention", "predictions")
    assert neither.returncode == 2
    assert "--retention" in neither.stderr
    unknown = headwater(home, "topics", "retention", "nowhere", "--retention", "1d")
    assert unknown.returncode == 1
    assert "nowhere" in unknown.stderr
    other = tmp_path / "other"
    assert headwater(other, "labels", "run", "--idle-timeout", "0",
                     env={"HEADWATER_SYSTEM_RETENTION": "12h"}).returncode == 0
    assert retention_line(other, "training_examples") == "12h"


def test_serve_warns_about_an_unbounded_predictions_topic_and_stops_on_sigterm(
        tmp_path: Path) -> None:
    home, features, log = home_with_a_model(tmp_path)
    log.ensure_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA)
    assert headwater(home, "topics", "retention", "predictions", "--forever").returncode == 0
    engine = headwater(home, "features", "run", "--project", str(features), "--idle-timeout",
                       "0")  # the online store the server reads
    assert engine.returncode == 0, engine.stderr
    port = free_port()
    server = Started(home, "serve", "--model", "m", "--project", str(features),
                     "--feature-set", "fs", "--port", str(port))
    try:
        wait_for(lambda: "serving m" in server.said, 60, "the server")
        said = " ".join(server.said.split())
        assert ("warning: topic 'predictions' keeps every event and grows without bound; give "
                "it a retention: headwater topics retention predictions --retention 7d") in said
        def predicted() -> bool:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/predict", method="POST",
                data=json.dumps({"entities": {"user": "a"}}).encode(),
                headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        wait_for(predicted, 60, "a prediction")
        time.sleep(0.2)
        server.process.send_signal(signal.SIGTERM)
        assert server.finish() == 0, server.said
    finally:
        server.kill()
    assert sum(log.end_offsets("predictions")) >= 1  # flushed before the process ended
