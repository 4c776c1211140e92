"""Elec2: the NSW electricity market, May 1996 to December 1998, one row per half hour.

The classic real drifting stream (Harries, 1999), shipped inside the package as
``elec2.csv.gz`` (the exact ``electricity.csv`` River's ``datasets.Elec2`` reads, gzip
compressed) so demos and tests work from a plain install, without a download.

The file has no absolute times: row ``i`` happened at ``1996-05-07T00:00Z + i * 30 min``
and its label (did the NSW price go ``UP`` or ``DOWN`` against its 24-hour moving
average) is known once that half hour has ended. :func:`load` adds those times.

>>> table = load(limit=3)
>>> table.column_names[:3], table.column_names[-2:]
(['row', 'event_time', 'date'], ['class', 'label'])
>>> table.column("label").to_pylist(), table.column("event_time")[2].value - START_US
([1, 1, 1], 3600000000)
"""

from __future__ import annotations

import gzip
import io
from importlib import resources
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from headwater.datasets.files import write_csv
from headwater.errors import ValidationError

__all__ = [
    "COLUMNS",
    "PERIOD_US",
    "RAW_SHA256",
    "ROWS",
    "START_US",
    "load",
    "raw_csv",
    "write",
]

#: The number of rows (half hours) in the stream.
ROWS: Final = 45_312
#: sha256 of the decompressed CSV, as published with the data set.
RAW_SHA256: Final = "c10a416790ef8ab96089e5adfd2febb7c9cec72bd80dfecb2342f2283b86b88a"
#: The event time of row 0: 1996-05-07T00:00Z, in microseconds since the epoch.
START_US: Final = 831_427_200_000_000
#: Time between two rows: 30 minutes, in microseconds.
PERIOD_US: Final = 30 * 60 * 1_000_000

#: The columns of the original file, in order, with their types.
COLUMNS: Final[dict[str, pa.DataType]] = {
    "date": pa.float64(),
    "day": pa.int64(),
    "period": pa.float64(),
    "nswprice": pa.float64(),
    "nswdemand": pa.float64(),
    "vicprice": pa.float64(),
    "vicdemand": pa.float64(),
    "transfer": pa.float64(),
    "class": pa.string(),
}
_RESOURCE: Final = "elec2.csv.gz"
_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")


def raw_csv() -> bytes:
    """The original ``electricity.csv``, byte for byte."""
    packed = resources.files("headwater.datasets").joinpath(_RESOURCE).read_bytes()
    return gzip.decompress(packed)


def load(limit: int | None = None) -> pa.Table:
    """The stream as an Arrow table, in row order.

    Columns: ``row`` (int64, 0..n-1), ``event_time`` (timestamp, UTC), the original
    columns, and ``label`` (int64: 1 for ``UP``, 0 for ``DOWN``). ``limit`` keeps the
    first rows only.
    """
    if limit is not None and (isinstance(limit, bool) or limit < 0):
        raise ValidationError("limit", f"expected an int >= 0, got {limit!r}")
    table = pa_csv.read_csv(
        io.BytesIO(raw_csv()),
        convert_options=pa_csv.ConvertOptions(column_types=COLUMNS),
    )
    if limit is not None:
        table = table.slice(0, limit)
    n = table.num_rows
    rows = pa.array(range(n), pa.int64())
    times = pc.add(pc.multiply(rows, PERIOD_US), START_US).cast(pa.int64()).view(_TIMESTAMP)
    labels = pc.cast(pc.equal(table.column("class"), "UP"), pa.int64())
    return (
        table.add_column(0, pa.field("row", pa.int64(), nullable=False), rows)
        .add_column(1, pa.field("event_time", _TIMESTAMP, nullable=False), times)
        .append_column(pa.field("label", pa.int64(), nullable=False), labels)
    )


def write(directory: str | Path, *, limit: int | None = None) -> list[Path]:
    """Write the stream as :func:`load` gives it to ``elec2.csv`` in ``directory``
    (created if needed); return the path in a list, as every data set's ``write`` does."""
    table = load(limit)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "elec2.csv"
    write_csv(table, path)
    return [path]
