"""The background repeater: runs its action until stopped; errors go to on_error."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from headwater.repeat import Repeater, run_until_idle


def test_the_action_repeats_and_errors_do_not_stop_it() -> None:
    calls: list[int] = []
    errors: list[Exception] = []
    done = threading.Event()

    def action() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("away")
        if len(calls) >= 4:
            done.set()

    repeater = Repeater(action, 0.001, name="test", on_error=errors.append)
    repeater.start()
    repeater.start()  # once only
    assert done.wait(5)
    repeater.stop()
    assert not repeater.running
    assert [str(e) for e in errors] == ["away"]
    stopped_at = len(calls)
    assert done.wait(0.01)
    assert len(calls) == stopped_at


class Ticks:
    """A monotonic clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@given(work=st.lists(st.booleans(), max_size=40), timeout=st.integers(0, 6))
def test_run_until_idle_stops_after_the_first_idle_stretch_as_long_as_the_timeout(
        work: list[bool], timeout: int) -> None:
    """An oracle: walk the same steps on the same clock by hand."""
    clock, expect_clock = Ticks(), Ticks()
    steps = iter(work + [False] * (2 * timeout + 2))
    calls = 0

    def step() -> bool:
        nonlocal calls
        calls += 1
        return next(steps)

    run_until_idle(step, idle_timeout_s=timeout, monotonic=clock)
    expected, idle_since = 0, expect_clock()
    for did in work + [False] * (2 * timeout + 2):
        expected += 1
        if did:
            idle_since = expect_clock()
        elif expect_clock() - idle_since >= timeout:
            break
    assert calls == expected
    assert (work + [False] * (2 * timeout + 2))[calls - 1] is False


def test_run_until_idle_runs_until_stopped_without_a_timeout() -> None:
    stop = threading.Event()
    calls = 0

    def step() -> bool:
        nonlocal calls
        calls += 1
        if calls == 50:
            stop.set()
        return False

    run_until_idle(step, idle_timeout_s=None, poll_s=0.0001, stop=stop)
    assert calls == 50
