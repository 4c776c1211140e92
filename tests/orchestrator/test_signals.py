"""Stopping the long-running commands with signals, as real processes: each checkpoints
and exits 0; ``headwater run`` stops its components however it ends and is alone on its
home; a component that can never start stops the run with its error."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import closing
from pathlib import Path

import pyarrow as pa
import pytest

from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC
from headwater.log import Log, Schema
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.models import LogisticRegression
from headwater.registry import open_registry
from headwater.store.online import open_online_store
from tests.orchestrator.test_run import PROJECT, free_port, http, wait_for
from tests.orchestrator.test_supervisor import alive

SCHEMA = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"}, key="user",
                   event_time="ts")


class Started:
    """A ``headwater`` command in its own process, its standard error read as it comes."""

    def __init__(self, home: Path, *args: str) -> None:
        env = {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never"}
        self.process = subprocess.Popen([sys.executable, "-m", "headwater", *args], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.lines: list[str] = []
        stderr = self.process.stderr
        assert stderr is not None
        self._reader = threading.Thread(target=lambda: self.lines.extend(
            iter(stderr.readline, "")), daemon=True)
        self._reader.start()

    @property
    def said(self) -> str:
        return "".join(self.lines)

    def pids(self) -> dict[str, int]:
        """Each component's latest pid, as the supervisor said."""
        return {name: int(pid) for name, pid in
                re.findall(r"(\w+): started \(pid (\d+)\)", self.said)}

    def finish(self, timeout: float = 60.0) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def home_with_a_model(tmp_path: Path, project: str = PROJECT) -> tuple[Path, Path, Log]:
    home = tmp_path / "home"
    features = tmp_path / "features.py"
    features.write_text(project)
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    log.create_topic("events", SCHEMA, partitions=2)
    log.ensure_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA)
    LogisticRegression().save(tmp_path / "initial")
    with open_registry(home / "registry") as registry:
        registry.register("m", tmp_path / "initial")
        registry.promote("m", 1, actor="test", reason="the first version")
    return home, features, log


def append_events(log: Log, users: list[str]) -> None:
    now = int(time.time() * 1_000_000)
    log.append("events", pa.record_batch({
        "user": users, "x": [1.0] * len(users),
        "ts": pa.array([now] * len(users), pa.int64()).cast(TIMESTAMP)}))


def run_args(features: Path, port: int) -> tuple[str, ...]:
    return ("run", "--model", "m", "--project", str(features), "--feature-set", "fs",
            "--port", str(port), "--window", "2s", "--every", "1s")


@pytest.mark.slow
def test_headwater_run_stops_cleanly_on_sigterm_and_is_alone_on_its_home(
        tmp_path: Path) -> None:
    home, features, log = home_with_a_model(tmp_path)
    port = free_port()
    first = Started(home, *run_args(features, port))
    try:
        wait_for(lambda: http("GET", f"http://127.0.0.1:{port}/ready")[0] == 200, 60,
                 "the server")
        wait_for(lambda: len(first.pids()) == 4, 10, "four components")
        pids = first.pids()
        second = Started(home, *run_args(features, free_port()))
        assert second.finish() == 1
        assert f"another headwater run (pid {first.process.pid}) is running" in " ".join(
            second.said.split())
        assert second.pids() == {}  # it started nothing
        append_events(log, [f"u{i}" for i in range(50)])

        def applied() -> bool:
            with closing(open_online_store(str(home / "online"), read_only=True)) as online:
                return all(online.read_many("user", [f"u{i}" for i in range(50)]))

        wait_for(applied, 30, "the engine")  # read, not checkpointed yet (every 10,000)
        for name, running in (("features", "engine running"), ("labels", "joining"),
                              ("trainer", "trainer of m running")):
            log_file = home / "run" / f"{name}.log"
            wait_for(lambda f=log_file, r=running: r in f.read_text(), 30, name)
        assert first.pids() == pids  # nothing restarted
        first.process.send_signal(signal.SIGTERM)
        assert first.finish() == 0, first.said
    finally:
        first.kill()
    assert all(not alive(pid) for pid in pids.values())
    for name in ("features", "server", "labels", "trainer"):
        assert f"{name}: stopped (exit 0)" in first.said
    logs = home / "run"
    assert "engine stopped; its state is checkpointed" in (logs / "features.log").read_text()
    assert "label joiner stopped" in (logs / "labels.log").read_text()
    assert "trainer stopped" in (logs / "trainer.log").read_text()
    assert log.committed("features", "events") == dict(enumerate(log.end_offsets("events")))


@pytest.mark.slow
def test_a_killed_supervisor_takes_its_components_with_it_and_can_start_again(
        tmp_path: Path) -> None:
    home, features, _ = home_with_a_model(tmp_path)
    port = free_port()
    first = Started(home, *run_args(features, port))
    try:
        wait_for(lambda: len(first.pids()) == 4, 30, "four components")
        pids = first.pids()
        first.process.kill()
        first.finish()
        wait_for(lambda: not any(alive(pid) for pid in pids.values()), 15,
                 "the components to die with their supervisor")
        again = Started(home, *run_args(features, port))
        try:
            wait_for(lambda: http("GET", f"http://127.0.0.1:{port}/ready")[0] == 200, 60,
                     "the server, started again")
            assert len(again.pids()) == 4
            again.process.send_signal(signal.SIGHUP)
            assert again.finish() == 0, again.said
        finally:
            again.kill()
    finally:
        first.kill()


@pytest.mark.slow
def test_a_project_that_can_never_load_stops_the_run_before_it_starts(tmp_path: Path) -> None:
    """``headwater run`` loads the project before it starts a component: definitions
    that cannot load are refused at once (exit 2), with the project's error."""
    broken = PROJECT + textwrap.dedent(
        """
        raise RuntimeError("the definitions cannot be loaded: no column 'amount'")
        """)
    home, features, _ = home_with_a_model(tmp_path, broken)
    run = Started(home, *run_args(features, free_port()))
    try:
        assert run.finish(timeout=180) == 2, run.said
    finally:
        run.kill()
    said = " ".join(run.said.split())
    assert re.search(r"error: project: .*features.py: RuntimeError: the definitions cannot be "
                     r"loaded: no column 'amount'", said), said
    assert run.pids() == {} or all(not alive(pid) for pid in run.pids().values())
