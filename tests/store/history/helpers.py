"""Building history rows and comparing scans in the history tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

HOUR = 3_600_000_000
DAY = 24 * HOUR


def rows(entities: Sequence[object], times: Sequence[int], offsets: Sequence[int], *,
         partition: int = 0, appended: Sequence[int] | None = None,
         **columns: Sequence[Any]) -> pa.Table:
    """History rows; ``x`` defaults to the offset as a float."""
    data: dict[str, Any] = {
        "_entity": pa.array(entities, None if len(entities) else pa.string()),
        "_event_time": pa.array(times, pa.int64()),
        "_append_time": pa.array(list(times) if appended is None else appended, pa.int64()),
        "_partition": pa.array([partition] * len(times), pa.int32()),
        "_offset": pa.array(offsets, pa.int64()),
    }
    data.update(columns or {"x": pa.array([float(o) for o in offsets], pa.float64())})
    return pa.table(data)


def records(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of ``table`` as sorted tuples over its columns in name order."""
    names = sorted(table.schema.names)
    return sorted(zip(*(table.column(n).to_pylist() for n in names), strict=True), key=repr)
