"""The background repeater: runs its action until stopped; errors go to on_error."""

from __future__ import annotations

import threading

from headwater.repeat import Repeater


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
