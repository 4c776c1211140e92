"""The feature engine killed with SIGKILL at random moments ends where an uninterrupted
run ends; two engine processes in one group split the partitions."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from headwater.features.engine import FeatureEngine
from headwater.log import Log, Schema
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.store.online import EmbeddedOnlineStore

SCHEMA = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"},
                   key="user", event_time="ts")
USERS = [f"u{i}" for i in range(300)]

# The definitions, shared by the child processes and the reference run.
DEFINITIONS = textwrap.dedent(
    """
    from headwater.features import Entity, Feature, Lifetime, Sliding, StreamSource
    user = Entity("user", key="user")
    src = StreamSource.of("events", allowed_lateness=5_000_000)
    FEATURES = [
        Feature.of("n", user, src, "count", window=Lifetime()),
        Feature.of("s", user, src, "sum", column="x", window=Sliding.of("1m", hop="10s")),
        Feature.of("last", user, src, "last", column="x"),
        Feature.of("hi", user, src, "max", column="x", window=Sliding.of("30s", hop="10s")),
    ]
    """
)

ENGINE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[4])
    from definitions import FEATURES
    from headwater.features.engine import FeatureEngine
    from headwater.log import Log
    from headwater.log.embedded import EmbeddedBackend
    from headwater.store.online import EmbeddedOnlineStore

    root, group, member = sys.argv[1], sys.argv[2], sys.argv[3]
    log = Log(EmbeddedBackend(root + "/log", fsync="never"))
    online = EmbeddedOnlineStore(root + "/online-" + member, fsync="never")
    engine = FeatureEngine(log, FEATURES, online, state_dir=root + "/state", group=group,
                           member=member, checkpoint_events=int(sys.argv[5]))
    print("ready", flush=True)
    engine.run(idle_timeout_s=float(sys.argv[6]), poll_timeout_s=0.01)
    engine.close()
    online.close()
    print("done", flush=True)
    """
)


def fill(root: Path, partitions: int, events: int) -> None:
    log = Log(EmbeddedBackend(root / "log", fsync="never"))
    log.create_topic("events", SCHEMA, partitions=partitions)  # (again: a no-op)
    rng = np.random.default_rng(3)
    t0 = 1_700_000_000_000_000
    for k in range(events // 500):
        times = t0 + np.sort(rng.integers(k * 2_000_000, (k + 1) * 2_000_000, 500))
        times -= rng.integers(0, 8_000_000, 500) * (rng.random(500) < 0.1)  # some late
        log.append("events", pa.record_batch({
            "user": pa.array([USERS[i] for i in rng.integers(0, len(USERS), 500)]),
            "x": pa.array(rng.integers(-50, 50, 500).astype(np.float64)),
            "ts": pa.array(times).cast(TIMESTAMP),
        }))
    log.close()


def definitions(root: Path) -> list:  # type: ignore[type-arg]
    (root / "definitions.py").write_text(DEFINITIONS)
    scope: dict[str, object] = {}
    exec(DEFINITIONS, scope)
    return scope["FEATURES"]  # type: ignore[return-value]


def engine_process(root: Path, group: str, member: str, *, checkpoint: int = 700,
                   idle: float = 0.5) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", ENGINE, str(root), group, member, str(root), str(checkpoint),
         str(idle)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def contents(path: Path) -> dict[str, dict[str, bytes]]:
    store = EmbeddedOnlineStore(path, read_only=True)
    try:
        return {user: store.read("user", user) for user in USERS}
    finally:
        store.close()


@pytest.mark.slow
def test_sigkill_at_random_points_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    fill(tmp_path, partitions=1, events=20_000)
    features = definitions(tmp_path)
    reference = tmp_path / "reference"
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    online = EmbeddedOnlineStore(reference, fsync="never")
    with FeatureEngine(log, features, online, state_dir=tmp_path / "ref-state",
                       group="reference") as engine:
        engine.run(idle_timeout_s=0)
    online.close()

    rng = random.Random(11)
    for _ in range(20):
        proc = engine_process(tmp_path, "crashy", "m")
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    last = engine_process(tmp_path, "crashy", "m")
    _, err = last.communicate(timeout=300)
    assert last.returncode == 0, err
    assert contents(tmp_path / "online-m") == contents(reference)
    dead = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    assert dead.end_offsets("events.dlq")[0] > 0  # the late events, recorded once
    reasons = dead.read("events.dlq", 0, 0, 100_000).batch.column("index").to_pylist()
    assert len(reasons) == len(set(reasons))


@pytest.mark.slow
def test_two_engine_processes_split_the_partitions(tmp_path: Path) -> None:
    features = definitions(tmp_path)
    Log(EmbeddedBackend(tmp_path / "log", fsync="never")).create_topic(
        "events", SCHEMA, partitions=4)
    procs = [engine_process(tmp_path, "pair", name, idle=10.0) for name in ("a", "b")]
    for proc in procs:  # both have joined the group before any event exists
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    fill(tmp_path, partitions=4, events=8_000)
    reference = tmp_path / "reference"
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    online = EmbeddedOnlineStore(reference, fsync="never")
    with FeatureEngine(log, features, online, state_dir=tmp_path / "ref-state",
                       group="reference") as engine:
        engine.run(idle_timeout_s=0)
    online.close()
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    a, b = contents(tmp_path / "online-a"), contents(tmp_path / "online-b")
    expected = contents(reference)
    merged = {user: {**a[user], **b[user]} for user in USERS}
    assert merged == expected
    assert any(a.values()), "both engines did part of the work"
    assert any(b.values()), "both engines did part of the work"
    assert all(not (a[u] and b[u]) for u in USERS), "an entity was computed twice"
