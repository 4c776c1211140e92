"""Stopping long-running commands cleanly on SIGTERM, SIGINT and SIGHUP.

``features run``, ``labels run``, ``train`` and ``run`` loop until stopped. A signal
must not cut a step in half (a batch applied to the state but not to the checkpoint's
position would be counted twice after a restart), so the handlers installed by
:func:`stop_requested` only set an event; the loop checks it between steps, then the
command checkpoints and exits with code 0. (``serve`` leaves this to uvicorn, which
finishes the requests in flight, then the server flushes its prediction log.)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Final

__all__ = ["STOP_SIGNALS", "stop_requested"]

#: The signals that ask a long-running command to stop.
STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@contextmanager
def stop_requested() -> Iterator[threading.Event]:
    """An event set when a stop signal arrives (the handlers are restored on exit).
    Outside the main thread, where handlers cannot be installed, the event is only set
    by the caller."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
