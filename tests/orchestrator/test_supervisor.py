"""The supervisor restarts what stops, backs off on quick failures and stops everything."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from headwater.errors import ValidationError
from headwater.orchestrator import Component, Supervisor

SLEEPER = (sys.executable, "-c", "import time; time.sleep(60)")
CRASHER = (sys.executable, "-c", "import sys; sys.exit(3)")


def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_killed_component_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    supervisor = Supervisor([Component("a", SLEEPER), Component("b", SLEEPER)],
                            log_dir=tmp_path, backoff_s=0.0)
    supervisor.start()
    try:
        a, b = supervisor.pid("a"), supervisor.pid("b")
        assert a is not None
        assert b is not None
        os.kill(a, signal.SIGKILL)
        wait_for(lambda: supervisor.poll() == ["a"])
        assert supervisor.pid("a") not in (None, a)
        assert supervisor.pid("b") == b
        assert supervisor.running["a"].exits == [-signal.SIGKILL]
        assert supervisor.running["a"].restarts == 1
    finally:
        supervisor.stop()
    assert supervisor.pid("a") is None
    assert (tmp_path / "a.log").exists()


def test_quick_failures_back_off_exponentially(tmp_path: Path) -> None:
    supervisor = Supervisor([Component("c", CRASHER)], backoff_s=1.0, max_backoff_s=4.0,
                            healthy_s=100.0)
    supervisor.start(now=0.0)
    run = supervisor.running["c"]
    assert run.process is not None
    run.process.wait()
    assert supervisor.poll(now=0.1) == []  # exited: waits its back-off of 1 s
    assert run.backoff == 1.0
    assert supervisor.poll(now=1.1) == ["c"]
    for expected in (2.0, 4.0, 4.0):
        assert run.process is not None
        run.process.wait()
        supervisor.poll(now=run.started + 0.1)
        assert run.backoff == expected
        assert supervisor.poll(now=run.next_start) == ["c"]
    assert run.exits == [3, 3, 3, 3]
    supervisor.stop()


def test_stop_terminates_every_process() -> None:
    supervisor = Supervisor([Component("a", SLEEPER)], grace_s=5.0)
    supervisor.start()
    process = supervisor.running["a"].process
    assert process is not None
    supervisor.stop()
    assert process.returncode == -signal.SIGTERM


def test_bad_components_are_refused() -> None:
    with pytest.raises(ValidationError):
        Supervisor([Component("a", SLEEPER), Component("a", SLEEPER)])
    with pytest.raises(ValidationError):
        Component("", SLEEPER)
