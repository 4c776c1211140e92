"""Running an action every interval in a daemon thread, until stopped.

Components that watch something in the background — a deployment polling its aliases,
a reward feed, a canary watch, a service learning from outcomes — share this loop:
:meth:`Repeater.start` runs ``action`` every ``interval_s`` (after the first wait), an
exception goes to ``on_error`` (by default it is dropped and the action tried again next
time: a store or log that is away must not stop the component), and :meth:`Repeater.stop`
ends the loop and joins the thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Repeater"]


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
