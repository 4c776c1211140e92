"""The packaged Elec2 data set: the exact published file, and its stream form."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

import headwater.datasets
from headwater.datasets import elec2
from headwater.errors import ValidationError


def test_public_surface() -> None:
    assert headwater.datasets.__all__ == ["elec2", "payments"]


def test_raw_file_is_the_published_one() -> None:
    raw = elec2.raw_csv()
    assert hashlib.sha256(raw).hexdigest() == elec2.RAW_SHA256
    assert len(raw.splitlines()) == elec2.ROWS + 1  # the header, then one line per row


def test_load() -> None:
    table = elec2.load()
    assert table.num_rows == 45_312
    assert table.column_names == ["row", "event_time", *elec2.COLUMNS, "label"]
    assert table.column("row").to_pylist() == list(range(45_312))
    times = table.column("event_time")
    assert times.type == pa.timestamp("us", "UTC")
    assert times[0].value == 831_427_200_000_000  # 1996-05-07T00:00Z
    assert times[-1].value - times[0].value == 45_311 * 30 * 60 * 1_000_000
    labels = table.column("label").to_pylist()
    assert labels == [1 if c == "UP" else 0 for c in table.column("class").to_pylist()]
    assert table.column("day").type == pa.int64()


def test_load_limit() -> None:
    assert elec2.load(limit=10).column("row").to_pylist() == list(range(10))
    with pytest.raises(ValidationError, match="limit"):
        elec2.load(limit=-1)
