"""Late events reach the dead-letter topic exactly once, however the engine read them
and wherever it was killed: the dead letters of an engine killed with SIGKILL and
restarted are those of an uninterrupted run."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from headwater.features.definitions import Entity, Feature, StreamSource
from headwater.features.engine import FeatureEngine, backfill
from headwater.log import Log, Schema
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.store.online import EmbeddedOnlineStore
from headwater.store.online.memory import MemoryOnlineStore

SCHEMA = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"},
                   key="user", event_time="ts")
T0 = 1_700_000_000_000_000
FEATURES = [Feature.of("n", Entity("user", key="user"), StreamSource.of("events"), "count")]

# A child engine: ``steps`` steps of ``step`` events, then "stepped", then it waits to be
# killed; or (``steps`` 0) steps until idle, printing "step" after each, then "done".
ENGINE = textwrap.dedent(
    """
    import sys, time
    from headwater.features.definitions import Entity, Feature, StreamSource
    from headwater.features.engine import FeatureEngine
    from headwater.log import Log
    from headwater.log.embedded import EmbeddedBackend
    from headwater.store.online import EmbeddedOnlineStore

    root = sys.argv[1]
    step, steps, checkpoint = (int(a) for a in sys.argv[2:5])
    features = [Feature.of("n", Entity("user", key="user"), StreamSource.of("events"), "count")]
    log = Log(EmbeddedBackend(root + "/log", fsync="never"))
    online = EmbeddedOnlineStore(root + "/online", fsync="never")
    engine = FeatureEngine(log, features, online, state_dir=root + "/state",
                           checkpoint_events=checkpoint)
    print("ready", flush=True)
    if steps:
        for _ in range(steps):
            engine.step(max_events=step)
        print("stepped", flush=True)
        time.sleep(600)
    while engine.step(max_events=step):
        print("step", flush=True)
    engine.close()
    print("done", flush=True)
    """
)


def fill(root: Path, times: list[int]) -> None:
    """One partition of events whose event times (µs after ``T0``) are ``times``."""
    log = Log(EmbeddedBackend(root / "log", fsync="never"))
    log.create_topic("events", SCHEMA, partitions=1)
    for start in range(0, len(times), 50):
        part = times[start:start + 50]
        log.append("events", pa.record_batch({
            "user": pa.array([f"u{(start + i) % 7}" for i in range(len(part))]),
            "x": pa.array([float(i) for i in range(len(part))]),
            "ts": pa.array([T0 + t for t in part], pa.int64()).cast(TIMESTAMP),
        }))
    log.close()


def dead_letters(root: Path) -> list[int]:
    """The offsets of the late events in the dead-letter topic, in its order."""
    log = Log(EmbeddedBackend(root / "log", fsync="never"))
    try:
        if "events.dlq" not in {t.name for t in log.topics()}:
            return []
        return [int(i) for i in log.read("events.dlq", 0, 0, 1_000_000).batch
                .column("index").to_pylist()]
    finally:
        log.close()


def engine(root: Path, step: int, steps: int = 0, checkpoint: int = 1 << 40
           ) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ENGINE, str(root), str(step), str(steps), str(checkpoint)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdout is not None
    got = proc.stdout.readline().strip()
    if got != line:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"expected {line!r}, got {got!r}: {err}")


def finish(proc: subprocess.Popen[str]) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def test_a_restart_that_reads_in_other_chunks_keeps_every_late_event_once(
        tmp_path: Path) -> None:
    # Late events at offsets 100, 300 and 500; the engine reads 200 events twice (the
    # first two reach the dead-letter topic), is killed before any checkpoint, and the
    # restarted engine reads everything again in one chunk of 1,000.
    times = [i * 1_000_000 for i in range(600)]
    for late in (100, 300, 500):
        times[late] = 0
    fill(tmp_path, times)
    first = engine(tmp_path, step=200, steps=2)
    wait_for(first, "ready")
    wait_for(first, "stepped")
    assert dead_letters(tmp_path) == [100, 300]
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = engine(tmp_path, step=1000)
    wait_for(second, "ready")
    finish(second)
    assert dead_letters(tmp_path) == [100, 300, 500]


def test_a_restart_that_reads_in_smaller_chunks_stores_nothing_twice(tmp_path: Path) -> None:
    times = [i * 1_000_000 for i in range(600)]
    for late in (100, 300, 500):
        times[late] = 0
    fill(tmp_path, times)
    first = engine(tmp_path, step=400, steps=1)
    wait_for(first, "ready")
    wait_for(first, "stepped")
    assert dead_letters(tmp_path) == [100, 300]
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    second = engine(tmp_path, step=50)
    wait_for(second, "ready")
    finish(second)
    assert dead_letters(tmp_path) == [100, 300, 500]


def test_a_backfill_after_the_engine_records_nothing_again(tmp_path: Path) -> None:
    times = [i * 1_000_000 for i in range(600)]
    for late in (100, 300, 500):
        times[late] = 0
    fill(tmp_path, times)
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    with FeatureEngine(log, FEATURES, MemoryOnlineStore(), state_dir=tmp_path / "state") as e:
        while e.step(max_events=150):
            pass
    backfill(log, FEATURES, MemoryOnlineStore(), state_dir=tmp_path / "backfill",
             batch_events=1000)
    log.close()
    assert dead_letters(tmp_path) == [100, 300, 500]


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_the_dead_letters_of_an_uninterrupted_run(
        tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    times = np.cumsum(rng.integers(0, 1_000_000, 6_000))
    late = rng.random(6_000) < 0.05
    times[late] -= rng.integers(2_000_000, 50_000_000, int(late.sum()))
    source = tmp_path / "source"
    source.mkdir()
    fill(source, times.tolist())
    reference, crashy = tmp_path / "reference", tmp_path / "crashy"
    for root in (reference, crashy):  # separate logs: one producer id per run
        shutil.copytree(source / "log", root / "log")
    ref = engine(reference, step=333, checkpoint=700)
    wait_for(ref, "ready")
    finish(ref)
    expected = dead_letters(reference)
    assert expected == sorted(expected)
    assert len(expected) >= 100

    pick = random.Random(17)
    for _ in range(25):  # killed after a random number of steps, mid-way through the next
        proc = engine(crashy, step=pick.choice([37, 150, 333, 1000]),
                      checkpoint=pick.choice([200, 700, 2_500]))
        wait_for(proc, "ready")
        for _ in range(pick.randint(0, 6)):
            assert proc.stdout is not None
            proc.stdout.readline()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    last = engine(crashy, step=pick.choice([37, 1000]))
    wait_for(last, "ready")
    finish(last)
    assert dead_letters(crashy) == expected
    online = EmbeddedOnlineStore(crashy / "online", read_only=True)
    try:
        assert online.read("user", "u3")  # the engine did its work too
    finally:
        online.close()
