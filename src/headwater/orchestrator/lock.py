"""One supervisor per home: a lock file held while ``headwater run`` lives.

:class:`RunLock` takes an exclusive ``flock`` on ``<home>/run/lock`` and writes its pid
there. The kernel releases the lock when the process ends, however it ends (SIGKILL
included), so a lock is never left stale; a second supervisor on the same home finds
it held and is refused with :class:`~headwater.errors.AlreadyRunningError`, naming the
holder's pid.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from headwater.errors import AlreadyRunningError

__all__ = ["RunLock"]


class RunLock:
    """The lock of one home's supervisor; a context manager (see the module)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`AlreadyRunningError`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            pid = int(text) if text.isdigit() else None
            raise AlreadyRunningError(
                f"another headwater run (pid {pid if pid is not None else 'unknown'}) is "
                f"running on this home ({self.path} is held); stop it first", pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
