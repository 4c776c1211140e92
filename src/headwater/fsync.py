"""Making files durable: fsync a file's data, or a directory's entries.

A file created or renamed is durable only once its directory is synced too; every
crash-safe writer in Headwater (log segments, checkpoints, the online store's log)
uses these two.
"""

from __future__ import annotations

import os

__all__ = ["fsync_dir", "fsync_file"]


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file's data and metadata to the disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (files created, renamed or removed in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
