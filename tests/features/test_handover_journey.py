"""Engines on two machines (two homes sharing the log, the online store, the history and
the checkpoints): ``headwater features run`` SIGKILLed, its partitions resumed by the
other engine from their checkpoints, while a reader polls the online store and sees no
value go back. On the embedded default (the second engine starts once the first is
dead: the embedded online store has one writer) and on Redis (both run in one group)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from headwater.config import Settings
from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
from headwater.features.engine import FeatureEngine
from headwater.features.online import FeatureReader
from headwater.log import Schema, open_log
from headwater.log.schema import TIMESTAMP
from headwater.store.online import MemoryOnlineStore, OnlineStore, open_online_store
from tests.processes import Backends, environment, wait_for

PROJECT = textwrap.dedent(
    """
    from headwater.features import Entity, Feature, Lifetime, StreamSource
    user = Entity("user", key="user")
    events = StreamSource.of("events")
    FEATURES = [
        Feature.of("n", user, events, "count", window=Lifetime()),
        Feature.of("total", user, events, "sum", column="x", window=Lifetime()),
    ]
    """
)
USER = Entity("user", key="user")
FEATURES = [Feature.of("n", USER, StreamSource.of("events"), "count", window=Lifetime()),
            Feature.of("total", USER, StreamSource.of("events"), "sum", column="x",
                       window=Lifetime())]
SCHEMA = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"},
                   key="user", event_time="ts")
USERS = [f"u{i}" for i in range(40)]
PARTITIONS = 4
T0 = 1_700_000_000_000_000
FAR = T0 + 10**13


class Engine:
    """``headwater features run`` in its own home, its error output read as it comes."""

    def __init__(self, home: Path, env: dict[str, str], *args: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "features", "run", "--group-timeout", "1s",
             "--checkpoint-interval", "500ms", *args],
            env=environment(home, env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        stream = self.process.stderr
        assert stream is not None
        self._reader = threading.Thread(
            target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self._reader.start()

    def printed(self) -> str:
        return "".join(self.lines)

    def owned(self) -> dict[int, int]:
        """Partition -> the offset it was resumed at, as the engine said."""
        return {int(p): int(o) for p, o in re.findall(
            r"took over events\[(\d+)\]: resumed at offset (\d+)", self.printed())}

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(120)
        self._reader.join(5)
        return code


class Reader:
    """Polls every user's count and sum in the online store, noting any that went back."""

    def __init__(self, location: str, settings: Settings) -> None:
        self.store: OnlineStore = open_online_store(location, settings=settings,
                                                    read_only=True, create=True)
        self.features = FeatureReader(self.store, FeatureSet("all", tuple(FEATURES)))
        self.seen: dict[str, tuple[int, float]] = {}
        self.backwards: list[str] = []
        self.reads = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def values(self) -> dict[str, tuple[int, float]]:
        with self._lock:
            refresh = getattr(self.store, "refresh", None)
            if refresh is not None:  # the embedded store: catch up with its writer
                refresh()
            out = {}
            for user in USERS:
                row = self.features.read({"user": user}, FAR)
                out[user] = (row["n"] or 0, row["total"] or 0.0)
            return out

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.values()
            for user, value in now.items():
                before = self.seen.get(user, (0, 0.0))
                if value[0] < before[0] or value[1] < before[1]:
                    self.backwards.append(f"{user}: {before} -> {value}")
            self.seen = now
            self.reads += 1
            time.sleep(0.01)

    def close(self) -> dict[str, tuple[int, float]]:
        self._stop.set()
        self._thread.join(30)
        last = self.values()
        self.store.close()
        return last


def produce(settings: Settings, rng: np.random.Generator, chunks: int, at: list[int]) -> None:
    with open_log(settings=settings) as log:
        for _ in range(chunks):
            n = 200
            log.append("events", pa.record_batch({
                "user": [USERS[i] for i in rng.integers(0, len(USERS), n)],
                "x": rng.integers(1, 10, n).astype(np.float64),
                "ts": pa.array(T0 + at[0] + np.arange(n), pa.int64()).cast(TIMESTAMP),
            }))
            at[0] += n
            time.sleep(0.05)


def checkpointed(shared: Path, partitions: list[int]) -> bool:
    return all((shared / "checkpoints" / "events" / str(p) / "CURRENT").exists()
               for p in partitions)


def reference(settings: Settings) -> dict[str, tuple[int, float]]:
    online = MemoryOnlineStore()
    with open_log(settings=settings) as log, FeatureEngine(
            log, FEATURES, online, state_dir=f"memory://reference-{os.getpid()}-{id(online)}",
            group=f"reference-{id(online)}") as engine:
        engine.run(idle_timeout_s=0)
    features = FeatureReader(online, FeatureSet("all", tuple(FEATURES)))
    out = {}
    for user in USERS:
        row = features.read({"user": user}, FAR)
        out[user] = (row["n"] or 0, row["total"] or 0.0)
    return out


@pytest.mark.slow
def test_an_engine_killed_hands_its_partitions_over_with_their_state(
    tmp_path: Path, backends: Backends
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "features.py").write_text(PROJECT)
    redis = backends.log is not None
    checkpoints = (f"local://{shared}/checkpoints" if redis  # fsspec's local files
                   else str(shared / "checkpoints"))  # a directory both machines mount
    env = {**backends.environment(tmp_path / "a"),
           "HEADWATER_LOG_URL": backends.log or str(shared / "log"),
           "HEADWATER_ONLINE_URL": backends.online or str(shared / "online"),
           "HEADWATER_HISTORY_URL": str(shared / "history"),
           "HEADWATER_CHECKPOINTS_URL": checkpoints,
           "HEADWATER_PROJECT": str(shared / "features.py")}
    settings = Settings.from_env(environment(tmp_path / "a", env))
    with open_log(settings=settings) as log:
        log.create_topic("events", SCHEMA, partitions=PARTITIONS)
    rng, at = np.random.default_rng(5), [0]

    first = Engine(tmp_path / "a", env)
    wait_for(lambda: len(first.owned()) == PARTITIONS or first.process.poll() is not None,
             120, "the first engine to take every partition")
    assert first.process.poll() is None, first.printed()
    second: Engine | None = None
    if redis:  # both in the group
        standby = second = Engine(tmp_path / "b", env)
        wait_for(lambda: bool(standby.owned()), 120, "the second engine to take some over")
    reader = Reader(env["HEADWATER_ONLINE_URL"], settings)
    produce(settings, rng, 10, at)
    movers = sorted(set(range(PARTITIONS)) - set(second.owned() if second else {}))
    wait_for(lambda: checkpointed(shared, movers), 120, "a checkpoint of every partition")
    produce(settings, rng, 10, at)  # applied and served, but not all checkpointed yet
    first.kill()
    if second is None:
        second = Engine(tmp_path / "b", env)
    produce(settings, rng, 15, at)
    expected = reference(settings)
    wait_for(lambda: reader.values() == expected, 120, "the second engine to catch up")
    assert second.stop() == 0, second.printed()
    last = reader.close()

    assert reader.backwards == [], reader.backwards[:10]
    assert reader.reads > 10
    assert last == expected
    resumed = second.owned()
    assert set(movers) <= set(resumed), second.printed()
    assert all(resumed[p] > 0 for p in movers), ("resumed from the checkpoints, not from "
                                                 f"offset 0: {resumed}")


@pytest.mark.slow
def test_a_paused_engine_that_wakes_up_is_fenced_off(tmp_path: Path, backends: Backends) -> None:
    """SIGSTOP past the group timeout: the other engine claims the partitions; woken
    up (SIGCONT), the first one still thinks it owns them, and its writes are refused
    rather than served over the newer values."""
    if backends.log is None:
        pytest.skip("the embedded online store has one writer: no engine writes beside "
                    "a paused one")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "features.py").write_text(PROJECT)
    env = {**backends.environment(tmp_path / "a"), "HEADWATER_LOG_URL": backends.log,
           "HEADWATER_ONLINE_URL": backends.online or "",
           "HEADWATER_HISTORY_URL": str(shared / "history"),
           "HEADWATER_CHECKPOINTS_URL": str(shared / "checkpoints"),
           "HEADWATER_PROJECT": str(shared / "features.py")}
    settings = Settings.from_env(environment(tmp_path / "a", env))
    with open_log(settings=settings) as log:
        log.create_topic("events", SCHEMA, partitions=PARTITIONS)
    rng, at = np.random.default_rng(9), [0]
    first = Engine(tmp_path / "a", env)
    wait_for(lambda: len(first.owned()) == PARTITIONS or first.process.poll() is not None,
             120, "the first engine to take every partition")
    second = Engine(tmp_path / "b", env)
    wait_for(lambda: bool(second.owned()), 120, "the second engine to take some over")
    reader = Reader(env["HEADWATER_ONLINE_URL"], settings)
    produce(settings, rng, 5, at)
    movers = sorted(set(range(PARTITIONS)) - set(second.owned()))
    os.kill(first.process.pid, signal.SIGSTOP)
    wait_for(lambda: set(movers) <= set(second.owned()), 120,
             "the second engine to claim the paused one's partitions")
    produce(settings, rng, 10, at)
    expected = reference(settings)
    wait_for(lambda: reader.values() == expected, 120, "the second engine to catch up")
    os.kill(first.process.pid, signal.SIGCONT)
    produce(settings, rng, 10, at)
    wait_for(lambda: "gave up events[" in first.printed(), 120,
             "the woken engine to find itself fenced off")
    expected = reference(settings)
    wait_for(lambda: reader.values() == expected, 120, "both engines to catch up")
    assert first.stop() == 0, first.printed()
    assert second.stop() == 0, second.printed()
    reader.close()
    assert reader.backwards == [], reader.backwards[:10]
