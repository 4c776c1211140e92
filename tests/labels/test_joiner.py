"""The label joiner over a real log: examples out, timeouts on a quiet outcomes topic,
exactly once across crashes (simulated and SIGKILL)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from headwater.labels import OUTCOMES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.labels.join import JoinRule
from headwater.labels.joiner import LabelJoiner
from headwater.log import Log, Schema
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.serving.prediction_log import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from headwater.testing import ManualClock
from headwater.time import to_micros

T0 = 946_684_800_000_000  # 2000-01-01
SECOND = 1_000_000


def predictions(rids: list[str], entities: list[str], times: list[int],
                versions: list[int] | None = None) -> pa.RecordBatch:
    n = len(rids)
    versions = versions or [1] * n
    return pa.record_batch({
        "request_id": rids, "entity": entities, "features": [b'{"x": 1.0}'] * n,
        "model": ["m"] * n, "version": pa.array(versions, pa.int64()),
        "score": [0.5] * n, "arm": ["champion"] * n, "served": [True] * n,
        "missing": [""] * n, "ts": pa.array(times, pa.int64()).cast(TIMESTAMP),
        "propensity": [1.0] * n, "latency_ms": [0.1] * n, "defaulted": [""] * n,
        "update": [None] * n, "entities": [None] * n,
    }, schema=PREDICTIONS_SCHEMA.arrow_schema())


def outcomes(rids: list[str | None], entities: list[str], labels: list[float | None],
             times: list[int]) -> pa.RecordBatch:
    return pa.record_batch({
        "request_id": pa.array(rids, pa.string()), "entity": entities,
        "label": pa.array(labels, pa.float64()), "ts": pa.array(times, pa.int64()).cast(TIMESTAMP),
    }, schema=OUTCOMES_SCHEMA.arrow_schema())


def setup_topics(log: Log) -> None:
    log.ensure_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA)
    log.ensure_topic("outcomes", OUTCOMES_SCHEMA, partitions=2)


def examples(log: Log) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for fetched in log.replay(TRAINING_EXAMPLES_TOPIC):
        rows += fetched.batch.to_pylist()
    return rows


def test_outcomes_become_examples_and_silence_becomes_negatives(tmp_path: Path) -> None:
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    setup_topics(log)
    clock = ManualClock(T0)
    joiner = LabelJoiner(log, JoinRule(window=10 * SECOND, timeout_label=0.0),
                         state_dir=tmp_path / "j", clock=clock, fsync="never")
    log.append(PREDICTIONS_TOPIC, predictions(["a", "b", "c"], ["u", "v", "w"],
                                              [T0, T0 + SECOND, T0 + 2 * SECOND]))
    log.append("outcomes", outcomes(["a", None], ["u", "v"], [None, 0.0],
                                    [T0 + 3 * SECOND, T0 + 4 * SECOND]))
    step = joiner.step()
    assert (step.predictions, step.outcomes, step.examples) == (3, 2, 2)
    clock.set(T0 + 12 * SECOND + 1)  # c's window (ends at T0 + 12 s) has closed
    assert joiner.step().examples == 1
    got = {r["request_id"]: (r["label"], r["source"]) for r in examples(log)}
    assert got == {"a": (1.0, "outcome"), "b": (0.0, "explicit"), "c": (0.0, "timeout")}
    row = examples(log)[0]
    assert row["features"] == b'{"x": 1.0}'
    assert row["prediction_time"] is not None
    log.append("outcomes", outcomes(["c"], ["w"], [None], [T0 + 5 * SECOND]))
    assert joiner.step().late == 1
    late = log.read("outcomes.late", 0).batch.to_pylist()
    assert [(r["request_id"], r["reason"]) for r in late] == [("c", "window_closed")]


def test_a_predictions_topic_of_an_earlier_version_is_still_joined(tmp_path: Path) -> None:
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    later = ("defaulted", "update", "entities")
    fields = {f.name: f.type for f in PREDICTIONS_SCHEMA.fields if f.name not in later}
    earlier = Schema.of(fields, key="entity", event_time="ts")
    log.create_topic(PREDICTIONS_TOPIC, earlier)
    log.ensure_topic("outcomes", OUTCOMES_SCHEMA)
    log.append(PREDICTIONS_TOPIC, predictions(["a"], ["u"], [T0]).drop_columns(list(later)))
    log.append("outcomes", outcomes(["a"], ["u"], [1.0], [T0 + SECOND]))
    joiner = LabelJoiner(log, JoinRule(window=10 * SECOND), state_dir=tmp_path / "j",
                         clock=ManualClock(T0), fsync="never")
    assert joiner.step().examples == 1
    assert [(r["request_id"], r["label"]) for r in examples(log)] == [("a", 1.0)]


def test_an_outcome_read_before_its_prediction_waits_for_it(tmp_path: Path) -> None:
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    setup_topics(log)
    clock = ManualClock(T0)
    joiner = LabelJoiner(log, JoinRule(window=10 * SECOND), state_dir=tmp_path / "j",
                         clock=clock, fsync="never")
    log.append(PREDICTIONS_TOPIC, predictions(["a", "b"], ["u", "u"], [T0, T0 + SECOND]))
    log.append("outcomes", outcomes(["b"], ["u"], [1.0], [T0 + 2 * SECOND]))
    joiner.step(max_events=1)  # reads prediction a only: b's outcome is held
    joiner.step(max_events=1)
    assert [r["request_id"] for r in examples(log)] == ["b"]


def test_a_crash_between_checkpoint_and_append_appends_once(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    setup_topics(log)
    log.append(PREDICTIONS_TOPIC, predictions(["a"], ["u"], [T0]))
    log.append("outcomes", outcomes(["a"], ["u"], [1.0], [T0 + 1]))
    joiner = LabelJoiner(log, JoinRule(window=SECOND), state_dir=tmp_path / "j",
                         clock=ManualClock(T0), fsync="never")

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(LabelJoiner, "_publish", crash)
    with pytest.raises(KeyboardInterrupt):
        joiner.step()
    monkeypatch.undo()
    joiner.close()  # the process is gone, and its place in the group with it
    assert examples(log) == []
    LabelJoiner(log, JoinRule(window=SECOND), state_dir=tmp_path / "j", clock=ManualClock(T0),
                fsync="never").close()  # the restart appends what the journal recorded
    again = LabelJoiner(log, JoinRule(window=SECOND), state_dir=tmp_path / "j",
                        clock=ManualClock(T0), fsync="never")
    assert again.step().examples == 0
    assert [r["request_id"] for r in examples(log)] == ["a"]


CHILD = textwrap.dedent(
    """
    import sys
    from headwater.labels.join import JoinRule
    from headwater.labels.joiner import LabelJoiner
    from headwater.log import Log
    from headwater.log.embedded import EmbeddedBackend
    root, state = sys.argv[1], sys.argv[2]
    log = Log(EmbeddedBackend(root + "/log", fsync="never"))
    joiner = LabelJoiner(log, JoinRule(window=30_000_000, timeout_label=0.0), state_dir=state)
    print("ready", flush=True)
    while joiner.step(max_events=int(sys.argv[3])).predictions or joiner.step(
            max_events=int(sys.argv[3])).outcomes:
        pass
    print("done", flush=True)
    """
)


def fill(log: Log, n: int) -> None:
    rng = np.random.default_rng(5)
    setup_topics(log)
    times = T0 + np.sort(rng.integers(0, n * SECOND, n))
    rids = [f"r{i}" for i in range(n)]
    users = [f"u{i}" for i in rng.integers(0, 40, n)]
    for lo in range(0, n, 97):
        hi = min(lo + 97, n)
        log.append(PREDICTIONS_TOPIC, predictions(rids[lo:hi], users[lo:hi], times[lo:hi].tolist()))
    clicked = rng.random(n) < 0.4
    delay = rng.integers(0, 60 * SECOND, n)  # half of them after the 30 s window
    order = np.argsort(times + delay, kind="stable")
    chosen = [int(i) for i in order if clicked[i]]
    for lo in range(0, len(chosen), 53):
        part = chosen[lo:lo + 53]
        log.append("outcomes", outcomes([rids[i] for i in part], [users[i] for i in part],
                                        [None] * len(part),
                                        [int(times[i] + delay[i]) for i in part]))


@pytest.mark.slow
def test_sigkill_at_random_points_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    fill(log, 3_000)
    with LabelJoiner(log, JoinRule(window=30 * SECOND, timeout_label=0.0),
                     state_dir=tmp_path / "ref", examples="reference", late="reference.late",
                     group="reference") as reference:
        while reference.step(max_events=41).predictions or \
                reference.step(max_events=41).outcomes:
            pass
    want = Counter((r["request_id"], r["label"], r["source"])
                   for f in log.replay("reference") for r in f.batch.to_pylist())
    assert sum(want.values()) == 3_000

    rng = random.Random(7)
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), str(tmp_path / "s"),
                                 "41"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    last = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), str(tmp_path / "s"), "41"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert last.returncode == 0, last.stderr
    fresh = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    got = Counter((r["request_id"], r["label"], r["source"]) for r in examples(fresh))
    assert got == want
    late = [f.batch.num_rows for f in fresh.replay("outcomes.late")]
    ref_late = [f.batch.num_rows for f in fresh.replay("reference.late")]
    assert sum(late) == sum(ref_late) > 0


def test_the_status_line_says_how_many_repeated_request_ids_were_set_aside(
        tmp_path: Path) -> None:
    """A client that repeats a request id beyond what the server remembers gets it logged
    twice; the joiner labels the first and says the second was set aside."""
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    setup_topics(log)
    joiner = LabelJoiner(log, JoinRule(window=10 * SECOND), state_dir=tmp_path / "j",
                         clock=ManualClock(T0), fsync="never")
    log.append(PREDICTIONS_TOPIC, predictions(["a", "b", "a"], ["u", "v", "u"],
                                              [T0, T0 + SECOND, T0 + 2 * SECOND]))
    log.append("outcomes", outcomes(["a"], ["u"], [1.0], [T0 + 3 * SECOND]))
    said: list[str] = []
    joiner.run(idle_timeout_s=0, on_status=said.append, status_every_s=0)
    assert joiner.repeated == 1
    assert said[-1] == ("labels: read 3 predictions, 1 outcome; 1 example (1 joined, 0 timed "
                        "out); 0 late; 0 expired; 1 open; 1 repeated request id set aside "
                        "(the first prediction under an id is labelled)")
    [example] = examples(log)
    assert example["request_id"] == "a"
    assert isinstance(example["prediction_time"], datetime)
    assert to_micros(example["prediction_time"]) == T0  # the first prediction under the id
