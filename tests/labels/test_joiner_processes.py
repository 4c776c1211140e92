"""Two ``headwater labels run`` processes over eight partitions, one of them killed with
SIGKILL while predictions and outcomes keep coming, and two joiners on Redis Streams,
one of them stalled past its session: the training examples are exactly those one
joiner makes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
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
from tests.extras import require_extra
from tests.labels.test_joiner import outcomes, predictions
from tests.log.harness import REDIS_URL, unavailable

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
    # Idle for 15 s before it stops: on a loaded machine the appending below can pause
    # for seconds, and a joiner that stopped then would leave the rest unjoined.
    env = {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never"}
    return subprocess.Popen(
        [sys.executable, "-m", "headwater", "labels", "run", "--window", "30s",
         "--timeout-label", "0", "--idle-timeout", "15", "--quiet"],
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
                     late="reference.late", group="reference", fsync="never") as one:
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


STALLING = textwrap.dedent(
    """
    import json, sys
    from headwater.labels.join import JoinRule
    from headwater.labels.joiner import LabelJoiner
    from headwater.log import Log
    from headwater.log.redis import RedisBackend

    url, prefix, state = sys.argv[1], sys.argv[2], sys.argv[3]
    log = Log(RedisBackend(url, prefix=prefix, session_timeout_s=1.0))
    joiner = LabelJoiner(log, JoinRule(window=30_000_000, timeout_label=0.0),
                         state_dir=state, fsync="never", retake_after_s=1.0)
    print("ready", flush=True)
    joiner.run(idle_timeout_s=5.0, poll_s=0.05)
    joiner.close()
    print(json.dumps({"fenced": joiner.fenced}), flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.redis
def test_a_joiner_stalled_past_its_session_on_redis_is_fenced(tmp_path: Path) -> None:
    """On Redis Streams a member that stops answering (here SIGSTOP) for longer than the
    group's session loses its partitions to the other member, which claims them; when it
    wakes it still believes it owns them, and its next step is fenced instead of
    appending a second history. The examples are exactly one joiner's."""
    require_extra("redis", "redis")
    from headwater.log.redis import RedisBackend

    prefix = f"hwtest-{uuid.uuid4().hex[:12]}"
    try:
        backend = RedisBackend(REDIS_URL, prefix=prefix)
        backend.ping()
    except Exception as exc:
        unavailable(f"Redis at {REDIS_URL}: {exc}")
    log = Log(backend)
    try:
        log.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA, partitions=4)
        log.create_topic("outcomes", OUTCOMES_SCHEMA, partitions=4)
        procs = [subprocess.Popen([sys.executable, "-c", STALLING, REDIS_URL, prefix,
                                   str(tmp_path / "state")], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line == "ready", proc.communicate()[1]
        stream = events(4_000)
        chunks = [stream[i:i + 200] for i in range(0, len(stream), 200)]
        for k, chunk in enumerate(chunks):
            append(log, chunk)
            time.sleep(0.05)
            if k == len(chunks) // 3:
                os.kill(procs[0].pid, signal.SIGSTOP)
            if k == len(chunks) // 2:
                time.sleep(3.0)  # silent past its 1 s session: the other claims its part
                os.kill(procs[0].pid, signal.SIGCONT)
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            results.append(json.loads(out.splitlines()[-1]))
        assert results[0]["fenced"] >= 1  # it woke up owning what another had claimed

        with LabelJoiner(log, JoinRule(window=30 * SECOND, timeout_label=0.0),
                         state_dir=tmp_path / "reference", examples="reference",
                         late="reference.late", group="reference", fsync="never") as one:
            while one.step().predictions:
                pass
        want = rows(log, "reference", EXAMPLE)
        assert sum(want.values()) > 1_000
        assert rows(log, TRAINING_EXAMPLES_TOPIC, EXAMPLE) == want
        assert rows(log, "outcomes.late", LATE) == rows(log, "reference.late", LATE)
    finally:
        backend.destroy()
        log.close()
