"""Where the feature history keeps its files: sources, time partitions and file names.

A source's rows live under ``source=<name>/``, cut by entity into a fixed number of
buckets (``murmur2(entity) % buckets``, the log's key hash, chosen when the source is
first written) and within a bucket by event time into partitions of a day or an hour
(one granularity per history, chosen when it is opened)::

    <root>/source=payments/
        _schema.arrow                              the source's columns (only ever grows)
        _layout.json                               the number of buckets
        _lock                                      taken by writers that replace files
        _progress/
            payments-3-000000000042.json           how far in the log checkpoint 42 of
                                                   task payments-3 reached
        bucket=7/
            day=2024-05-07/
                payments-3-000000000042-0.parquet  rows of checkpoint 42 of task payments-3
                compacted-000002.parquet           rows merged by compaction
                _manifest.json                     what compaction replaced (manifest.py)

An entity's rows are all in one bucket, so a lookup of a few entities reads only their
buckets, and a join over many streams bucket by bucket. Names starting with ``.``
(temporary files) or ``_`` are never data.

>>> DAY.name_of(0), HOUR.name_of(3_600_000_000)
('day=1970-01-01', 'hour=1970-01-01T01')
>>> bucket_dir_name(7), bucket_of_dir("bucket=7"), bucket_of_dir("day=1970-01-01")
('bucket=7', 7, None)
>>> ProgressFile.parse("payments-3-000000000042.json")
ProgressFile(task='payments-3', checkpoint=42)
>>> span_of("day=1970-01-02")
(86400000000, 172800000000)
>>> CheckpointFile.parse("payments-3-000000000042-0.parquet")
CheckpointFile(task='payments-3', checkpoint=42, part=0)
>>> CheckpointFile.parse("compacted-000002.parquet") is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError

__all__ = [
    "DAY",
    "GRANULARITIES",
    "HOUR",
    "MAX_BUCKETS",
    "MAX_CHECKPOINT",
    "CheckpointFile",
    "Granularity",
    "ProgressFile",
    "bucket_dir_name",
    "bucket_of_dir",
    "check_source",
    "check_task",
    "compacted_name",
    "is_compacted",
    "source_dir_name",
    "span_of",
]

_HOUR_US: Final = 3_600_000_000
_DAY_US: Final = 24 * _HOUR_US
_EPOCH: Final = date(1970, 1, 1)
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_CHECKPOINT_FILE: Final = re.compile(
    r"^(?P<task>.+)-(?P<checkpoint>\d{12})-(?P<part>\d{1,6})\.parquet$")
_COMPACTED_FILE: Final = re.compile(r"^compacted-\d{6,}\.parquet$")
_PROGRESS_FILE: Final = re.compile(r"^(?P<task>.+)-(?P<checkpoint>\d{12})\.json$")
_BUCKET_DIR: Final = re.compile(r"^bucket=(?P<bucket>0|[1-9]\d{0,5})$")
#: Entity buckets of a source: 1 .. MAX_BUCKETS.
MAX_BUCKETS: Final = 65_536
#: Checkpoints are numbered 0 .. MAX_CHECKPOINT (twelve digits in file names).
MAX_CHECKPOINT: Final = 10**12 - 1


@dataclass(frozen=True)
class Granularity:
    """How event time is cut into partitions: ``day`` or ``hour``."""

    key: Literal["day", "hour"]
    width_us: int

    def bucket_of(self, times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The partition number of each event time (``floor(time / width)``)."""
        return np.floor_divide(times, self.width_us)

    def name_of(self, start_us: int) -> str:
        """The directory name of the partition holding ``start_us``."""
        bucket = start_us // self.width_us
        day = _EPOCH + timedelta(days=(bucket * self.width_us) // _DAY_US)
        if self.key == "day":
            return f"day={day.isoformat()}"
        return f"hour={day.isoformat()}T{(bucket * self.width_us) % _DAY_US // _HOUR_US:02d}"


DAY: Final = Granularity("day", _DAY_US)
HOUR: Final = Granularity("hour", _HOUR_US)
GRANULARITIES: Final = {"day": DAY, "hour": HOUR}


def span_of(name: str) -> tuple[int, int] | None:
    """The event times ``[start, end)`` of a partition directory, or ``None`` when the
    name is not a partition's."""
    key, _, value = name.partition("=")
    try:
        if key == "day":
            start = (date.fromisoformat(value) - _EPOCH).days * _DAY_US
            return start, start + _DAY_US
        if key == "hour" and len(value) == 13 and value[10] == "T":
            hour = int(value[11:])
            if 0 <= hour < 24:
                start = (date.fromisoformat(value[:10]) - _EPOCH).days * _DAY_US + hour * _HOUR_US
                return start, start + _HOUR_US
    except ValueError:
        return None
    return None


@dataclass(frozen=True)
class CheckpointFile:
    """The name of a file of rows written by one checkpoint of one task."""

    task: str
    checkpoint: int
    part: int

    @property
    def name(self) -> str:
        return f"{self.task}-{self.checkpoint:012d}-{self.part}.parquet"

    @classmethod
    def parse(cls, name: str) -> CheckpointFile | None:
        match = _CHECKPOINT_FILE.match(name)
        if match is None:
            return None
        return cls(match["task"], int(match["checkpoint"]), int(match["part"]))


@dataclass(frozen=True)
class ProgressFile:
    """The name of the record of how far in the log one checkpoint of one task reached."""

    task: str
    checkpoint: int

    @property
    def name(self) -> str:
        return f"{self.task}-{self.checkpoint:012d}.json"

    @classmethod
    def parse(cls, name: str) -> ProgressFile | None:
        match = _PROGRESS_FILE.match(name)
        if match is None:
            return None
        return cls(match["task"], int(match["checkpoint"]))


def bucket_dir_name(bucket: int) -> str:
    return f"bucket={bucket}"


def bucket_of_dir(name: str) -> int | None:
    """The bucket of a bucket directory's name, or ``None`` when it is not one."""
    match = _BUCKET_DIR.match(name)
    return None if match is None else int(match["bucket"])


def compacted_name(generation: int) -> str:
    return f"compacted-{generation:06d}.parquet"


def is_compacted(name: str) -> bool:
    return _COMPACTED_FILE.match(name) is not None


def source_dir_name(source: str) -> str:
    return f"source={source}"


def check_source(source: str) -> str:
    """``source`` if it is a usable source (topic) name, else a ValidationError."""
    if not isinstance(source, str) or not _NAME.match(source):
        raise ValidationError("source", f"{source!r} is not a source name: letters, digits, "
                              "'_', '.', '-', starting with a letter or digit")
    return source


def check_task(task: str) -> str:
    """``task`` if it is a usable task name (e.g. ``payments-3``), else a ValidationError."""
    if not isinstance(task, str) or not _NAME.match(task):
        raise ValidationError("task", f"{task!r} is not a task name: letters, digits, "
                              "'_', '.', '-', starting with a letter or digit")
    return task
