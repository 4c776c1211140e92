"""The history's local files: Parquet staged for installing later, and file locks.

A file is replaced whole through :mod:`headwater.fsync` (a temporary file beside it,
``.<name>.<pid>.<thread>.tmp``, fsynced and renamed under the fsync policy), so a reader
sees it whole or not at all and a process killed mid-write leaves only a temporary file,
which no reader ever opens. Staging and installing are separate steps so a writer can
encode its files in parallel with others and install them later, briefly, under
:func:`locked`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

import pyarrow as pa
import pyarrow.parquet as pq

from headwater.fsync import FsyncPolicy, stage

__all__ = ["ROW_GROUP_ROWS", "locked", "stage_parquet"]

#: Rows per Parquet row group: small enough for time and entity statistics to prune.
ROW_GROUP_ROWS: Final = 1 << 17


def stage_parquet(target: Path, table: pa.Table, *, fsync: FsyncPolicy) -> Path:
    """Stage ``table`` as a zstd-compressed Parquet file for ``target``."""
    def write(file: BinaryIO) -> None:
        pq.write_table(table, file, compression="zstd", row_group_size=ROW_GROUP_ROWS)

    return stage(target, write, fsync=fsync)


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
