"""Running an action every interval in a daemon thread, until stopped.

Components that watch something in the background — a deployment polling its aliases,
a reward feed, a canary watch, a service learning from outcomes — share this loop:
:meth:`Repeater.start` runs ``action`` every ``interval_s`` (after the first wait), an
exception goes to ``on_error`` (by default it is dropped and the action tried again next
time: a store or log that is away must not stop the component), and :meth:`Repeater.stop`
ends the loop and joins the thread.

Components that work through a backlog in the foreground — a feature engine, a label
joiner, a trainer — share :func:`run_until_idle`: step until nothing has been done for
``idle_timeout_s`` or until stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Repeater", "run_until_idle"]


def run_until_idle(step: Callable[[], bool], *, idle_timeout_s: float | None,
                   poll_s: float = 0.0, stop: threading.Event | None = None,
                   monotonic: Callable[[], float] = time.monotonic) -> None:
    """Call ``step`` until it has done nothing (returned false) for at least
    ``idle_timeout_s`` seconds (forever when ``None``) or ``stop`` is set (checked between
    steps, never inside one). After a step that did nothing, wait ``poll_s`` before the
    next (0 for a step that waits for work itself). ``monotonic`` measures the idle time.

    >>> done = iter([True, True, False, False])
    >>> run_until_idle(lambda: next(done), idle_timeout_s=0)
    >>> next(done)
    False
    """
    stop = stop or threading.Event()
    idle_since = monotonic()
    while not stop.is_set():
        if step():
            idle_since = monotonic()
        elif idle_timeout_s is not None and monotonic() - idle_since >= idle_timeout_s:
            return
        elif poll_s > 0:
            stop.wait(poll_s)


class Repeater:
    """Calls ``action`` every ``interval_s`` seconds from a daemon thread."""

    def __init__(self, action: Callable[[], object], interval_s: float, *, name: str,
                 on_error: Callable[[Exception], None] | None = None) -> None:
        self.action = action
        self.interval_s = interval_s
        self.name = name
        self.on_error = on_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start the loop (once: a second call does nothing)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.action()
            except Exception as exc:
                if self.on_error is not None:
                    self.on_error(exc)

    def stop(self) -> None:
        """End the loop and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
