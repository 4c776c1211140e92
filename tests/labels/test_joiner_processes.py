"""Two ``headwater labels run`` processes over eight partitions, one of them killed with
SIGKILL while predictions and outcomes keep coming: the training examples are exactly
those one joiner makes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from headwater.labels import OUTCOMES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.labels.join import JoinRule
from headwater.labels.joiner import LabelJoiner
from headwater.log import Log
from headwater.log.embedded import EmbeddedBackend
from headwater.serving.prediction_log import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from headwater.time import SystemClock
from tests.labels.test_joiner import outcomes, predictions

SECOND = 1_000_000
PARTITIONS = 8


def events(n: int) -> list[tuple[int, str, object]]:
    """``n`` predictions of 300 users (times from tomorrow on, so the clock closes no
    window while the test runs) and the clicks on 40% of them, up to a minute later:
    half of them after the 30 s window. In time order, predictions first at equal times."""
    rng = np.random.default_rng(17)
    t0 = SystemClock().now_us() + 86_400 * SECOND
    times = t0 + np.sort(rng.integers(0, n * SECOND // 4, n))
    users = [f"user-{u}" for u in rng.integers(0, 300, n)]
    out: list[tuple[int, str, object]] = []
    for i in range(n):
        out.append((int(times[i]), "p", (f"req-{i}", users[i], int(times[i]))))
        if rng.random() < 0.4:
            at = int(times[i] + rng.integers(0, 60 * SECOND))
            out.append((at, "o", (f"req-{i}", users[i], at)))
    out.sort(key=lambda e: (e[0], e[1] != "p"))
    return out


def append(log: Log, chunk: list[tuple[int, str, object]]) -> None:
    ps = [e[2] for e in chunk if e[1] == "p"]
    os_ = [e[2] for e in chunk if e[1] == "o"]
    if ps:
        log.append(PREDICTIONS_TOPIC, predictions(*(list(c) for c in zip(*ps, strict=True))))
    if os_:
        rids, users, times = (list(c) for c in zip(*os_, strict=True))
        log.append("outcomes", outcomes(rids, users, [None] * len(rids), times))


def joiner(home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never"}
    return subprocess.Popen(
        [sys.executable, "-m", "headwater", "labels", "run", "--window", "30s",
         "--timeout-label", "0", "--idle-timeout", "4", "--quiet"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(log: Log, topic: str, keys: tuple[str, ...]) -> Counter[tuple[object, ...]]:
    return Counter(tuple(r[k] for k in keys) for f in log.replay(topic)
                   for r in f.batch.to_pylist())


EXAMPLE = ("request_id", "entity", "features", "version", "label", "source",
           "prediction_time", "label_time")
LATE = ("request_id", "entity", "ts", "reason", "prediction_time")


@pytest.mark.slow
def test_two_joiner_processes_one_killed_make_the_examples_of_one(tmp_path: Path) -> None:
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    log.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA, partitions=PARTITIONS)
    log.create_topic("outcomes", OUTCOMES_SCHEMA, partitions=PARTITIONS)
    stream = events(12_000)
    procs = [joiner(tmp_path), joiner(tmp_path)]
    for proc in procs:  # both are in the group before the first event
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line.startswith("joining outcomes to predictions"), line
    chunks = [stream[i:i + 300] for i in range(0, len(stream), 300)]
    killed = False
    for k, chunk in enumerate(chunks):
        append(log, chunk)
        time.sleep(0.03)
        if not killed and k >= len(chunks) // 2 \
                and sum(log.end_offsets(TRAINING_EXAMPLES_TOPIC)) > 0:
            os.kill(procs[0].pid, signal.SIGKILL)  # in the middle of whatever it was doing
            procs[0].wait()
            killed = True
    assert killed
    _, err = procs[1].communicate(timeout=300)
    assert procs[1].returncode == 0, err

    with LabelJoiner(log, JoinRule(window=30 * SECOND, timeout_label=0.0),
                     state_dir=tmp_path / "reference", examples="reference",
                     late="reference.late", group="reference", fsync=False) as one:
        assert one.slots == [f"partition-{p}" for p in range(PARTITIONS)]
        while one.step().predictions:
            pass
    want = rows(log, "reference", EXAMPLE)
    got = rows(log, TRAINING_EXAMPLES_TOPIC, EXAMPLE)
    assert sum(want.values()) > 4_000
    assert got == want  # nothing lost, nothing twice
    assert rows(log, "outcomes.late", LATE) == rows(log, "reference.late", LATE)
    assert sum(rows(log, "outcomes.late", LATE).values()) > 0
    # Each claim of a partition's journal raised its epoch: eight first claims, and the
    # killed joiner's partitions (four, or more as the group settled) claimed again.
    epochs = [int.from_bytes((tmp_path / "labels" / f"partition-{p}" / "epoch").read_bytes(),
                             "little") for p in range(PARTITIONS)]
    assert sum(epochs) >= PARTITIONS + PARTITIONS // 2
