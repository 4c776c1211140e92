"""The supervisor restarts what stops, backs off on quick failures and stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from headwater.errors import ComponentFailedError, ValidationError
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


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


FAILS_AT_START = (sys.executable, "-c",
                  "import sys; print('loading the project'); "
                  "sys.exit('error: no field named amount in events')")


def test_a_component_that_fails_the_same_way_is_given_up_on_and_everything_stops(
        tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    supervisor = Supervisor([Component("features", FAILS_AT_START), Component("b", SLEEPER)],
                            log_dir=tmp_path, backoff_s=0.0, max_failures=3,
                            on_event=lambda name, what: events.append((name, what)))
    with pytest.raises(ComponentFailedError) as failed:
        supervisor.run(interval_s=0.02)
    error = failed.value
    assert error.component == "features"
    assert error.exit_codes == [1, 1, 1]
    assert error.output.splitlines()[-2:] == ["loading the project",
                                              "error: no field named amount in events"]
    assert "component 'features' failed 3 times in a row" in str(error)
    assert "error: no field named amount in events" in str(error)
    assert supervisor.running["features"].restarts == 2  # started 3 times, never again
    assert supervisor.pid("b") is None  # the others were stopped
    assert ("features", "exited with 1 3 times in a row soon after starting: failed, not "
            "restarted") in events


def test_failures_of_different_kinds_or_after_a_healthy_run_do_not_add_up() -> None:
    supervisor = Supervisor([Component("c", CRASHER)], backoff_s=0.0, healthy_s=10.0,
                            max_failures=2)
    supervisor.start(now=0.0)
    run = supervisor.running["c"]
    assert run.process is not None
    run.process.wait()
    supervisor.poll(now=20.0)  # up for 20 s before it exited: not a quick failure
    assert run.quick_failures == 0
    assert run.process is not None
    run.process.wait()
    supervisor.poll(now=20.1)
    assert run.quick_failures == 1
    assert supervisor.failed == {}
    assert run.process is not None
    run.process.wait()
    supervisor.poll(now=20.2)
    assert set(supervisor.failed) == {"c"}
    assert supervisor.poll(now=100.0) == []
    supervisor.stop()


def test_run_stops_every_component_when_asked() -> None:
    stop = threading.Event()
    supervisor = Supervisor([Component("a", SLEEPER), Component("b", SLEEPER)], grace_s=5.0)
    pids: list[int | None] = []

    def later() -> None:
        wait_for(lambda: supervisor.pid("a") is not None and supervisor.pid("b") is not None)
        pids.extend([supervisor.pid("a"), supervisor.pid("b")])
        stop.set()

    helper = threading.Thread(target=later)
    helper.start()
    supervisor.run(interval_s=0.02, stop=stop)
    helper.join()
    assert all(pid is not None and not alive(pid) for pid in pids)


# A supervisor in its own process; it says its component's pid as it starts it.
SUPERVISED = textwrap.dedent(
    """
    import sys
    from headwater.orchestrator import Component, Supervisor
    supervisor = Supervisor([Component("a", (sys.executable, "-c",
                                             "import time; time.sleep(120)"))],
                            on_event=lambda name, what: print(what, flush=True))
    supervisor.run()
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_components_die_with_a_supervisor_killed_outright() -> None:
    parent = subprocess.Popen([sys.executable, "-c", SUPERVISED], stdout=subprocess.PIPE,
                              text=True)
    assert parent.stdout is not None
    said = parent.stdout.readline()
    child = int(said.removeprefix("started (pid ").rstrip(")\n"))
    assert alive(child)
    parent.kill()
    parent.wait()
    wait_for(lambda: not alive(child), timeout=10.0)
