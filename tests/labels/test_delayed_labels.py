"""``headwater labels run`` as a separate process on outcomes a user has: explicit labels
that arrive hours after their predictions, and clicks. The examples carry the real
labels, or the user is told, loudly, why they do not — never zeros in place of labels."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pyarrow as pa

from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC, TRAINING_EXAMPLES_TOPIC
from headwater.log import Log
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.serving.prediction_log import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from headwater.time import SystemClock

HOUR = 3_600_000_000
N = 24


def predict_then_label(home: Path, *, delay: int, explicit: bool) -> dict[str, float]:
    """``N`` predictions made 6 to 5 hours ago, and their outcomes ``delay`` later: an
    explicit 0/1 label each, or (``explicit`` false) a click for every third one.
    Returns the label each request should get."""
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    log.ensure_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA)
    log.ensure_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA, partitions=2)
    start = SystemClock().now_us() - 6 * HOUR
    rids = [f"req-{i}" for i in range(N)]
    times = [start + i * (HOUR // N) for i in range(N)]
    entities = [f"carrier-{i % 5}" for i in range(N)]
    log.append(PREDICTIONS_TOPIC, pa.record_batch({
        "request_id": rids, "entity": entities,
        "features": [msgspec.json.encode({"x": float(i)}) for i in range(N)],
        "model": ["m"] * N, "version": pa.array([1] * N, pa.int64()), "score": [0.5] * N,
        "arm": ["champion"] * N, "served": [True] * N, "missing": [""] * N,
        "ts": pa.array(times, pa.int64()).cast(TIMESTAMP), "propensity": [1.0] * N,
        "latency_ms": [0.2] * N, "defaulted": [""] * N, "update": [None] * N,
        "entities": [msgspec.json.encode({"carrier": e}).decode() for e in entities],
    }, schema=PREDICTIONS_SCHEMA.arrow_schema()))
    if explicit:
        chosen = list(range(N))
        labels: list[float | None] = [float(i % 2) for i in chosen]
    else:
        chosen = list(range(0, N, 3))
        labels = [None] * len(chosen)
    log.append(OUTCOMES_TOPIC, pa.record_batch({
        "request_id": [rids[i] for i in chosen], "entity": [entities[i] for i in chosen],
        "label": pa.array(labels, pa.float64()),
        "ts": pa.array([times[i] + delay for i in chosen], pa.int64()).cast(TIMESTAMP),
    }, schema=OUTCOMES_SCHEMA.arrow_schema()))
    log.close()
    if explicit:
        return {rids[i]: float(i % 2) for i in chosen}
    return {rid: 1.0 if i % 3 == 0 else 0.0 for i, rid in enumerate(rids)}


def labels_run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never"}
    return subprocess.run(
        [sys.executable, "-m", "headwater", "labels", "run", "--idle-timeout", "0", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False)


def rows(home: Path, topic: str) -> list[dict[str, object]]:
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    try:
        return [r for f in log.replay(topic) for r in f.batch.to_pylist()]
    finally:
        log.close()


def test_explicit_labels_hours_late_are_never_turned_into_zeros(tmp_path: Path) -> None:
    home = tmp_path / "defaults"
    predict_then_label(home, delay=3 * HOUR, explicit=True)
    done = labels_run(home)
    assert done.returncode == 0, done.stderr
    assert rows(home, TRAINING_EXAMPLES_TOPIC) == []  # not 24 zeros
    assert len(rows(home, "outcomes.late")) == N
    warning = re.search(r"warning: (\d+) labels arrived after their prediction's 10m window",
                        done.stderr)
    assert warning is not None, done.stderr
    assert int(warning.group(1)) == N
    assert "raise --window" in done.stderr
    assert f"read {N} predictions, {N} outcomes; 0 examples" in done.stderr  # the status


def test_labels_after_the_joiner_closed_their_window_are_said(tmp_path: Path) -> None:
    # The joiner runs while the labels are not there yet; they come in later.
    home = tmp_path / "live"
    predict_then_label(home, delay=3 * HOUR, explicit=True)
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    held = [r for f in log.replay(OUTCOMES_TOPIC) for r in f.batch.to_pylist()]
    log.delete_topic(OUTCOMES_TOPIC)
    log.close()
    first = labels_run(home)
    assert first.returncode == 0, first.stderr
    assert "warning" not in first.stderr
    assert f"read {N} predictions, 0 outcomes; 0 examples" in first.stderr
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    log.append(OUTCOMES_TOPIC, held)
    log.close()
    second = labels_run(home)
    assert second.returncode == 0, second.stderr
    assert f"warning: {N} labels arrived after their prediction's 10m window" in second.stderr
    assert rows(home, TRAINING_EXAMPLES_TOPIC) == []
    assert len(rows(home, "outcomes.late")) == N


def test_a_timeout_label_asked_for_is_said_to_invert_late_labels(tmp_path: Path) -> None:
    home = tmp_path / "timeout"
    predict_then_label(home, delay=3 * HOUR, explicit=True)
    done = labels_run(home, "--timeout-label", "0")
    assert done.returncode == 0, done.stderr
    examples = rows(home, TRAINING_EXAMPLES_TOPIC)
    assert {(e["label"], e["source"]) for e in examples} == {(0.0, "timeout")}
    assert "became examples labelled 0 by the timeout label instead" in done.stderr
    assert f"{N} labels arrived after" in done.stderr


def test_a_window_as_long_as_the_delay_joins_the_real_labels(tmp_path: Path) -> None:
    home = tmp_path / "window"
    want = predict_then_label(home, delay=3 * HOUR, explicit=True)
    done = labels_run(home, "--window", "4h")
    assert done.returncode == 0, done.stderr
    got = {str(e["request_id"]): e["label"] for e in rows(home, TRAINING_EXAMPLES_TOPIC)}
    assert got == want
    assert {e["source"] for e in rows(home, TRAINING_EXAMPLES_TOPIC)} == {"explicit"}
    assert "warning" not in done.stderr
    assert f"{N} examples ({N} joined, 0 timed out); 0 late" in done.stderr
    # a restart with another rule says so
    again = labels_run(home, "--window", "5h", "--quiet")
    assert again.returncode == 0, again.stderr
    assert "the join rule changed since the last run (window 4h" in again.stderr
    assert "labels: read" not in again.stderr  # --quiet: no status line


def test_clicks_without_a_timeout_label_are_said_to_make_positives_only(tmp_path: Path
                                                                        ) -> None:
    home = tmp_path / "clicks"
    want = predict_then_label(home, delay=60_000_000, explicit=False)
    done = labels_run(home)
    assert done.returncode == 0, done.stderr
    assert {e["label"] for e in rows(home, TRAINING_EXAMPLES_TOPIC)} == {1.0}
    assert "made no example" in done.stderr
    assert "pass --timeout-label 0" in done.stderr
    home = tmp_path / "clicks-asked"
    predict_then_label(home, delay=60_000_000, explicit=False)
    done = labels_run(home, "--timeout-label", "0")
    assert done.returncode == 0, done.stderr
    got = {str(e["request_id"]): e["label"] for e in rows(home, TRAINING_EXAMPLES_TOPIC)}
    assert got == want
    assert "warning" not in done.stderr
