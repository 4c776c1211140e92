"""Writing a data set's tables as files users open anywhere (CSV)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import BinaryIO, Final

import pyarrow as pa

from headwater.fsync import atomic_write
from headwater.time import from_micros

__all__ = ["write_csv"]

_SECOND: Final = 1_000_000


def write_csv(table: pa.Table, path: Path, *, naive: bool = False) -> None:
    """``table`` as CSV: a header, then one line per row; timestamps as ISO 8601 in UTC
    with a ``Z`` (``naive``: as UTC wall times without an offset, ``2025-06-01
    09:30:12``, as many exports write them), floats as Python writes them, nulls as empty
    fields. The file appears whole or not at all (written aside, then renamed; not
    fsynced: a data set is made again from its source)."""
    columns: list[list[object]] = []
    for column in table.itercolumns():
        if pa.types.is_timestamp(column.type):
            us = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
            columns.append([None if v is None else _iso(v, naive) for v in us])
        else:
            columns.append(column.to_pylist())

    def write(binary: BinaryIO) -> None:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(table.column_names)
        writer.writerows(zip(*columns, strict=True))
        text.flush()
        text.detach()

    atomic_write(path, write, fsync="never")


def _iso(us: int, naive: bool) -> str:
    moment = from_micros(us)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if naive else "%Y-%m-%dT%H:%M:%S")
    if us % _SECOND:
        text += moment.strftime(".%f")
    return text if naive else text + "Z"
