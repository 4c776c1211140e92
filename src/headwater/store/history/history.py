"""The feature history: every applied event of every source, kept for point-in-time joins.

The feature engine writes, per source (a log topic) and *task* (one partition of it, e.g.
``payments-3``), the rows of each checkpoint; readers scan time ranges and evaluate
features as of any moment with :meth:`FeatureHistory.values_at`. Files are Parquet,
partitioned by event time (:mod:`~headwater.store.history.layout`), each written
atomically, and compaction merges a partition's small files without readers ever seeing
it half done (:mod:`~headwater.store.history.partition`).

Crash recovery: the engine writes a checkpoint's rows, then commits its offsets. After a
crash it calls :meth:`~FeatureHistory.discard_after` with its last committed checkpoint
and runs the rest again; writing a checkpoint again replaces it. One writer per task at
a time (the engine owns a task as it owns the log partition).

>>> import shutil, tempfile, pyarrow as pa
>>> history = FeatureHistory(tempfile.mkdtemp())
>>> rows = pa.table({"_entity": ["a", "b"], "_event_time": [10, 20], "_append_time": [11, 21],
...                  "_partition": [0, 0], "_offset": [0, 1], "amount": [1.5, 2.5]})
>>> history.write("payments", rows, checkpoint=0, task="payments-0")
>>> history.sources()
['payments']
>>> history.scan("payments", start=15).to_pylist()  # doctest: +NORMALIZE_WHITESPACE
[{'_entity': 'b', '_event_time': 20, '_append_time': 21, '_partition': 0, '_offset': 1,
  'amount': 2.5}]
>>> shutil.rmtree(history.root)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ValidationError
from headwater.features.definitions import Feature
from headwater.features.pointintime import Mode, Queries, Sources, point_in_time
from headwater.store.history import layout
from headwater.store.history.files import install, locked, stage_parquet, write_bytes
from headwater.store.history.layout import CheckpointFile, check_source, check_task
from headwater.store.history.partition import Partition
from headwater.store.history.rows import (
    APPEND_TIME,
    CHECKPOINT,
    ENTITY,
    EVENT_TIME,
    OFFSET,
    SYSTEM,
    TASK,
    merge_schemas,
    normalize,
    with_provenance,
)
from headwater.store.history.scan import Filters, entity_array, read
from headwater.store.history.timetravel import check_features, needed_columns, needed_rows

__all__ = ["FeatureHistory"]

_SCHEMA: Final = "_schema.arrow"
_LOCK: Final = "_lock"
#: Rows per checkpoint file; a bigger checkpoint is split into parts.
MAX_FILE_ROWS: Final = 1 << 22
#: Scans for time travel filter by entity when the queries name at most this many.
ENTITY_FILTER_MAX: Final = 10_000
_PROVENANCE_FIELDS: Final = [pa.field(TASK, pa.string()), pa.field(CHECKPOINT, pa.int64())]


def _check_checkpoint(checkpoint: int, *, low: int = 0) -> int:
    if isinstance(checkpoint, bool) or not isinstance(checkpoint, int | np.integer) or not (
            low <= checkpoint <= layout.MAX_CHECKPOINT):
        raise ValidationError("checkpoint", f"expected an int in {low}..{layout.MAX_CHECKPOINT}, "
                              f"got {checkpoint!r}")
    return int(checkpoint)


def _day_span(day: str | date) -> tuple[int, int]:
    text = day.isoformat() if isinstance(day, date) else day
    span = layout.span_of(f"day={text}")
    if span is None:
        raise ValidationError("day", f"expected a date or YYYY-MM-DD, got {day!r}")
    return span


class FeatureHistory:
    """The history under ``root``, partitioned by ``granularity`` (``"day"`` or ``"hour"``).

    Partitions already on disk are read whatever their granularity; it decides where new
    rows go.
    """

    def __init__(self, root: str | os.PathLike[str], *,
                 granularity: Literal["day", "hour"] = "day") -> None:
        if granularity not in layout.GRANULARITIES:
            raise ValidationError("granularity", f"expected 'day' or 'hour', got {granularity!r}")
        self.root = Path(root)
        self.granularity = layout.GRANULARITIES[granularity]
        self._schemas: dict[str, pa.Schema] = {}
        self._latest: dict[tuple[str, str], int] = {}  # no file of a later checkpoint exists

    # -- places --------------------------------------------------------------------------

    def _dir(self, source: str) -> Path:
        return self.root / layout.source_dir_name(check_source(source))

    def _partitions(self, source: str, start: int | None = None,
                    end: int | None = None) -> list[Partition]:
        """The partitions of ``source`` that can hold event times in ``[start, end)``."""
        folder, found = self._dir(source), []
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        for entry in entries:
            span = layout.span_of(entry.name)
            if span is None or not entry.is_dir():
                continue
            if (start is None or span[1] > start) and (end is None or span[0] < end):
                found.append((span, Partition(Path(entry.path), folder / _LOCK)))
        return [p for _, p in sorted(found, key=lambda item: item[0])]

    # -- schema --------------------------------------------------------------------------

    def sources(self) -> list[str]:
        """The sources with history, sorted."""
        if not self.root.is_dir():
            return []
        prefix = layout.source_dir_name("")
        return sorted(p.name[len(prefix):] for p in self.root.iterdir()
                      if p.name.startswith(prefix) and (p / _SCHEMA).exists())

    def _stored_schema(self, source: str) -> pa.Schema | None:
        try:
            data = (self._dir(source) / _SCHEMA).read_bytes()
        except FileNotFoundError:
            return None
        return pa.ipc.read_schema(pa.py_buffer(data))

    def schema(self, source: str) -> pa.Schema:
        """The columns of ``source``'s rows (every column ever written)."""
        schema = self._stored_schema(source)
        if schema is None:
            raise ValidationError("source", f"no history of {source!r}; known: "
                                  f"{', '.join(self.sources()) or 'none'}")
        self._schemas[source] = schema
        return schema

    @staticmethod
    def _file_schema(schema: pa.Schema) -> pa.Schema:
        return pa.schema([*schema, *_PROVENANCE_FIELDS])

    # -- writing -------------------------------------------------------------------------

    def _stage(self, source: str, rows: pa.Table, task: str,
               checkpoint: int) -> list[tuple[Path, Path]]:
        """Stage the files of one checkpoint, one or more per time partition."""
        buckets = self.granularity.bucket_of(np.asarray(rows.column(EVENT_TIME), np.int64))
        order = np.argsort(buckets, kind="stable")
        edges = np.flatnonzero(np.diff(buckets[order])) + 1
        staged: list[tuple[Path, Path]] = []
        try:
            for piece in np.split(order, edges) if len(order) else []:
                part_rows = rows if len(piece) == rows.num_rows else rows.take(piece)
                folder = self._dir(source) / self.granularity.name_of(
                    int(buckets[piece[0]]) * self.granularity.width_us)
                folder.mkdir(parents=True, exist_ok=True)
                for part, first in enumerate(range(0, part_rows.num_rows, MAX_FILE_ROWS)):
                    target = folder / CheckpointFile(task, checkpoint, part).name
                    staged.append((stage_parquet(target, part_rows.slice(first, MAX_FILE_ROWS)),
                                   target))
        except BaseException:
            for temp, _ in staged:
                temp.unlink(missing_ok=True)
            raise
        return staged

    def _evolve(self, source: str, schema: pa.Schema) -> pa.Schema:
        """Record the columns of ``schema`` (under the source lock); the merged schema."""
        stored = self._stored_schema(source)
        merged = merge_schemas(stored, schema)
        if stored is None or not merged.equals(stored):
            write_bytes(self._dir(source) / _SCHEMA, merged.serialize().to_pybytes())
        self._schemas[source] = merged
        return merged

    def _latest_checkpoint(self, source: str, task: str) -> int:
        latest = self._latest.get((source, task))
        if latest is None:
            latest = max((p.max_checkpoint(task) for p in self._partitions(source)), default=-1)
        return latest

    def write(self, source: str, batch: pa.RecordBatch | pa.Table, *, checkpoint: int,
              task: str) -> None:
        """Store the rows of checkpoint ``checkpoint`` of ``task``, replacing what an earlier
        write of the same checkpoint stored. Columns are described in
        :mod:`~headwater.store.history.rows`."""
        check_source(source)
        check_task(task)
        checkpoint = _check_checkpoint(checkpoint)
        rows = normalize(batch)
        known = self._schemas.get(source)
        merged = merge_schemas(known, rows.schema)  # a type change fails before any I/O
        self._dir(source).mkdir(parents=True, exist_ok=True)
        staged = self._stage(source, with_provenance(rows, task, checkpoint), task, checkpoint)
        try:
            with locked(self._dir(source) / _LOCK):
                schema = merged if known is not None and merged.equals(known) else (
                    self._evolve(source, rows.schema))
                latest = self._latest_checkpoint(source, task)
                if checkpoint <= latest:
                    for partition in self._partitions(source):
                        partition.drop(task, checkpoint, checkpoint, self._file_schema(schema))
                for temp, target in staged:
                    install(temp, target)
                self._latest[(source, task)] = max(latest, checkpoint)
        except BaseException:
            for temp, _ in staged:
                temp.unlink(missing_ok=True)
            raise

    def discard_after(self, source: str, task: str, checkpoint: int) -> None:
        """Delete the rows of every checkpoint of ``task`` after ``checkpoint`` (``-1``: all
        of them), and what a crashed write of ``task`` left behind. For recovery: call it
        with the last committed checkpoint before writing again."""
        check_task(task)
        checkpoint = _check_checkpoint(checkpoint, low=-1)
        if self._stored_schema(source) is not None:
            with locked(self._dir(source) / _LOCK):
                schema = self._file_schema(self.schema(source))
                for partition in self._partitions(source):
                    partition.drop(task, checkpoint + 1, layout.MAX_CHECKPOINT, schema)
                    partition.clear_staged(task)
        self._latest[(source, task)] = checkpoint

    # -- reading -------------------------------------------------------------------------

    def scan(self, source: str, *, columns: Sequence[str] | None = None,
             start: int | None = None, end: int | None = None,
             entities: Sequence[str | int] | pa.Array | pa.ChunkedArray | None = None,
             appended_by: int | None = None) -> pa.Table:
        """The rows with event time in ``[start, end)``, appended by ``appended_by``, of
        ``entities`` (``None``: no bound), in no particular order: the system columns and
        ``columns`` (``None``: every column; ``_task`` and ``_checkpoint`` on request)."""
        schema = self.schema(source)
        file_schema = self._file_schema(schema)
        wanted = list(dict.fromkeys([*SYSTEM, *(schema.names if columns is None else columns)]))
        for name in wanted:
            if file_schema.get_field_index(name) < 0:
                raise ValidationError("columns", f"{source!r} has no column {name!r}")
        keys = None if entities is None else entity_array(entities, schema.field(ENTITY).type)
        parts = self._partitions(source, start, end)
        return read(lambda: [f for p in parts for f in p.snapshot()], file_schema, wanted,
                    Filters(start, end, appended_by, keys))

    def values_at(self, features: Sequence[Feature], source: str, queries: Queries, *,
                  mode: Mode = "event_time") -> pa.Table:
        """Each feature's value at each query row, read from this history (one row per
        query row, in order, duplicates kept, missing values null): the scan
        :func:`~headwater.store.history.timetravel.needed_rows` says, then
        :func:`~headwater.features.pointintime.point_in_time`."""
        check_features(features, source)
        key_type = self.schema(source).field(ENTITY).type
        keys = entity_array(queries.entities, key_type, "queries.entities")
        times = np.asarray(queries.times, dtype=np.int64)
        if len(keys) != len(times):
            raise ValidationError("queries", f"{len(keys)} entities but {len(times)} times")
        rows = needed_rows(features, times, mode)
        distinct = pc.unique(keys)
        events = self.scan(source, columns=needed_columns(features), start=rows.start,
                           end=rows.end, appended_by=rows.appended_by,
                           entities=distinct if len(distinct) <= ENTITY_FILTER_MAX else None)
        return point_in_time(list(features), Sources(events, ENTITY, EVENT_TIME, APPEND_TIME,
                                                     OFFSET), Queries(keys, times), mode=mode)

    # -- compaction ----------------------------------------------------------------------

    def compact(self, source: str, day: str | date | None = None) -> int:
        """Merge the files of each partition of ``day`` (``None``: every day) into one,
        sorted by (entity, event time, offset). Returns how many partitions changed."""
        schema = self._file_schema(self.schema(source))
        start, end = _day_span(day) if day is not None else (None, None)
        return sum(p.compact(schema) for p in self._partitions(source, start, end))
