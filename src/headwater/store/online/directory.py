"""The directory of an embedded online store: its file names and its write lock.

Layout::

    <path>/write.lock                 flock'd by the one writer (holds its pid)
    <path>/snapshot                   the state as of a WAL generation g
    <path>/<g:020d>.wal, <g+1>.wal …  the batches since, in order
    <path>/*.tmp                      a snapshot or WAL being made (or left by a crash)

>>> directory = StoreDirectory("/data/online")
>>> directory.wal(3)
'/data/online/00000000000000000003.wal'
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from headwater.errors import WriterConflictError

__all__ = ["StoreDirectory"]


class StoreDirectory:
    """Names the files of one store directory; takes its write lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.snapshot = f"{path}/snapshot"

    def wal(self, generation: int) -> str:
        return f"{self.path}/{generation:020d}.wal"

    def generations(self) -> list[int]:
        """The generations of the WAL files present, in order."""
        return sorted(int(name[:-4]) for name in os.listdir(self.path)
                      if name.endswith(".wal") and name[:-4].isdigit())

    def remove_before(self, generation: int) -> None:
        """Delete the WALs a snapshot of ``generation`` holds."""
        for old in self.generations():
            if old < generation:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.wal(old))

    def remove_leftovers(self) -> None:
        """Delete temporary files a crash left half-made (the writer does, on opening)."""
        for name in os.listdir(self.path):
            if name.endswith(".tmp"):
                os.unlink(f"{self.path}/{name}")

    def lock(self) -> int:
        """Take the write lock, held until the returned descriptor is closed.

        Raises :class:`~headwater.errors.WriterConflictError` naming the holder's pid
        when another handle (in any process) has it.
        """
        fd = os.open(f"{self.path}/write.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WriterConflictError(
                f"{self.path}: another writer (pid {holder}) has this online store open; "
                "open it with read_only=True to read"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd
