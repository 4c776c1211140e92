"""Crash-safe files: stage a temporary file, fsync it, rename it into place.

A rename within a directory is atomic, so a reader sees a file whole or not at all, and
a process killed mid-write leaves only a temporary file (``.<name>.<random>.tmp``),
which no reader ever opens. Staging and installing are separate steps so a writer can
encode its files in parallel with others and install them later, briefly, under
:func:`locked`.

>>> import pathlib, shutil, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_bytes(folder / "note", b"hello")
>>> (folder / "note").read_bytes(), [p.name for p in folder.iterdir()]
(b'hello', ['note'])
>>> shutil.rmtree(folder)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "ROW_GROUP_ROWS",
    "fsync_dir",
    "install",
    "is_temporary",
    "locked",
    "stage",
    "stage_parquet",
    "write_bytes",
]

#: Rows per Parquet row group: small enough for time and entity statistics to prune.
ROW_GROUP_ROWS: Final = 1 << 17


def is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def fsync_dir(path: Path) -> None:
    """Make the renames and deletions in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stage(target: Path, write: Callable[[Path], None]) -> Path:
    """Write a temporary file next to ``target`` with ``write`` and fsync it; return its
    path, to :func:`install` later (or delete)."""
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(temp)
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def stage_parquet(target: Path, table: pa.Table) -> Path:
    """Stage ``table`` as a zstd-compressed Parquet file for ``target``."""
    def write(path: Path) -> None:
        pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_ROWS)

    return stage(target, write)


def install(temp: Path, target: Path) -> None:
    """Rename a staged file to ``target`` (replacing it) and make the rename durable."""
    os.replace(temp, target)
    fsync_dir(target.parent)


def write_bytes(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data``, atomically and durably."""
    def write(path: Path) -> None:
        path.write_bytes(data)

    install(stage(target, write), target)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed). The kernel releases
    it when the process dies, so a crash never leaves it held."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
