"""The feature history: every applied event of every source, kept for point-in-time joins.

The feature engine writes, per source (a log topic) and *task* (one partition of it, e.g.
``payments-3``), the rows of each checkpoint; readers scan time ranges and evaluate
features as of any moment with :meth:`FeatureHistory.values_at`. Files are Parquet in a
local directory or on object storage (:mod:`~headwater.store.history.storage`), cut by
entity bucket and event time (:mod:`~headwater.store.history.layout`), each written
atomically, and compaction merges a partition's small files without readers ever seeing
it half done (:mod:`~headwater.store.history.partition`).

A join streams: it takes the query rows of one entity bucket at a time, reads only that
bucket's rows, evaluates them with :func:`~headwater.features.pointintime.point_in_time`
and keeps only the values, so its memory is bounded by the largest bucket (or by
:data:`JOIN_MAX_ROWS` rows, when a bucket holds more and the join splits its entities),
not by the history. A lookup of a few entities reads only their buckets.

Crash recovery: the engine writes a checkpoint's rows, then commits its offsets. After a
crash it calls :meth:`~FeatureHistory.discard_after` with its last committed checkpoint
and runs the rest again; writing a checkpoint again replaces it. One writer per task at
a time (the engine owns a task as it owns the log partition). With each checkpoint the
engine records how far in the log it reached (:meth:`~FeatureHistory.progress`), so a
reader can take the rest from the log (:mod:`~headwater.store.history.lookup`).

>>> import shutil, tempfile, pyarrow as pa
>>> history = FeatureHistory(tempfile.mkdtemp())
>>> rows = pa.table({"_entity": ["a", "b"], "_event_time": [10, 20], "_append_time": [11, 21],
...                  "_partition": [0, 0], "_offset": [0, 1], "amount": [1.5, 2.5]})
>>> history.write("payments", rows, checkpoint=0, task="payments-0")
>>> history.sources(), history.buckets("payments")
(['payments'], 32)
>>> history.scan("payments", start=15).to_pylist()  # doctest: +NORMALIZE_WHITESPACE
[{'_entity': 'b', '_event_time': 20, '_append_time': 21, '_partition': 0, '_offset': 1,
  'amount': 2.5}]
>>> shutil.rmtree(history.root)
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ConfigError, ValidationError
from headwater.features.definitions import Feature
from headwater.features.pointintime import Mode, Queries, Sources, point_in_time
from headwater.fsync import FsyncPolicy
from headwater.log.partitioner import partition_of
from headwater.store.history import layout
from headwater.store.history.layout import (
    CheckpointFile,
    ProgressFile,
    bucket_dir_name,
    bucket_of_dir,
    check_source,
    check_task,
)
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
from headwater.store.history.storage import Storage, open_storage
from headwater.store.history.timetravel import check_features, needed_columns, needed_rows

__all__ = ["DEFAULT_BUCKETS", "JOIN_MAX_ROWS", "FeatureHistory", "Progress"]

_SCHEMA: Final = "_schema.arrow"
_LAYOUT: Final = "_layout.json"
_PROGRESS: Final = "_progress"
_LOCK: Final = "_lock"
#: Rows per checkpoint file; a bigger checkpoint is split into parts.
MAX_FILE_ROWS: Final = 1 << 22
#: Scans for time travel filter by entity when the queries name at most this many.
ENTITY_FILTER_MAX: Final = 10_000
#: Entity buckets of a new source, unless the history is opened with ``buckets=``.
DEFAULT_BUCKETS: Final = 32
#: The most stored rows one step of a streaming join reads: a bucket holding more is
#: joined in groups of its entities.
JOIN_MAX_ROWS: Final = 2_000_000
_PROVENANCE_FIELDS: Final = [pa.field(TASK, pa.string()), pa.field(CHECKPOINT, pa.int64())]
I64 = npt.NDArray[np.int64]


class Progress(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How far in the log a task's rows reach: its checkpoints up to ``checkpoint`` hold
    every event it applied before offset ``position`` of its partition, whose watermark
    (the largest event time before it) was then ``watermark``; events more than
    ``lateness`` behind the watermark were left out as late."""

    task: str
    checkpoint: int
    position: int
    watermark: int
    lateness: int


class _Layout(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    buckets: int


def _check_checkpoint(checkpoint: int, *, low: int = 0) -> int:
    if isinstance(checkpoint, bool) or not isinstance(checkpoint, int | np.integer) or not (
            low <= checkpoint <= layout.MAX_CHECKPOINT):
        raise ValidationError("checkpoint", f"expected an int in {low}..{layout.MAX_CHECKPOINT}, "
                              f"got {checkpoint!r}")
    return int(checkpoint)


def _check_buckets(buckets: int | None) -> int | None:
    if buckets is not None and (isinstance(buckets, bool) or not isinstance(buckets, int)
                                or not 1 <= buckets <= layout.MAX_BUCKETS):
        raise ValidationError("buckets", f"expected an int in 1..{layout.MAX_BUCKETS}, "
                              f"got {buckets!r}")
    return buckets


def _day_span(day: str | date) -> tuple[int, int]:
    text = day.isoformat() if isinstance(day, date) else day
    span = layout.span_of(f"day={text}")
    if span is None:
        raise ValidationError("day", f"expected a date or YYYY-MM-DD, got {day!r}")
    return span


class FeatureHistory:
    """The history at ``location`` (a directory, or an fsspec URL with
    ``storage_options``), partitioned by ``granularity`` (``"day"`` or ``"hour"``).

    Partitions already stored are read whatever their granularity; it decides where new
    rows go. ``buckets`` is the number of entity buckets of sources written first by this
    history (default :data:`DEFAULT_BUCKETS`); a source keeps the number it was created
    with, and opening it with another is an error. Files written to a local directory
    are made durable under ``fsync`` (:data:`~headwater.fsync.FsyncPolicy`).
    """

    def __init__(self, location: str | os.PathLike[str], *,
                 granularity: Literal["day", "hour"] = "day", buckets: int | None = None,
                 fsync: FsyncPolicy = "group", **storage_options: Any) -> None:
        if granularity not in layout.GRANULARITIES:
            raise ValidationError("granularity", f"expected 'day' or 'hour', got {granularity!r}")
        self.storage: Storage = open_storage(location, fsync=fsync, **storage_options)
        self.location = self.storage.location
        self.granularity = layout.GRANULARITIES[granularity]
        self._wanted_buckets = _check_buckets(buckets)
        self._buckets: dict[str, int] = {}
        self._schemas: dict[str, pa.Schema] = {}
        self._latest: dict[tuple[str, str], int] = {}  # no file of a later checkpoint exists

    @property
    def root(self) -> Path:
        """The directory of a local history."""
        if not self.storage.local:
            raise ConfigError(f"the history at {self.location} is not a local directory")
        return Path(self.storage.root)

    # -- places --------------------------------------------------------------------------

    def _dir(self, source: str) -> str:
        return self.storage.join(self.storage.root, layout.source_dir_name(check_source(source)))

    def _partitions(self, source: str, start: int | None = None, end: int | None = None,
                    buckets: Iterable[int] | None = None) -> list[Partition]:
        """The partitions of ``source`` (in ``buckets``; ``None``: all) that can hold event
        times in ``[start, end)``."""
        folder, found = self._dir(source), []
        lock = self.storage.join(folder, _LOCK)
        if buckets is None:
            places = [self.storage.join(folder, name)
                      for name, is_dir in self.storage.listdir(folder)
                      if is_dir and bucket_of_dir(name) is not None]
        else:
            places = [self.storage.join(folder, bucket_dir_name(b)) for b in buckets]
        for place in places:
            for name, is_dir in self.storage.listdir(place):
                span = layout.span_of(name)
                if span is None or not is_dir:
                    continue
                if (start is None or span[1] > start) and (end is None or span[0] < end):
                    path = self.storage.join(place, name)
                    found.append(((span, path), Partition(self.storage, path, lock)))
        return [p for _, p in sorted(found, key=lambda item: item[0])]

    # -- schema and buckets --------------------------------------------------------------

    def sources(self) -> list[str]:
        """The sources with history, sorted."""
        prefix = layout.source_dir_name("")
        return sorted(name[len(prefix):] for name, is_dir in
                      self.storage.listdir(self.storage.root)
                      if is_dir and name.startswith(prefix)
                      and self.storage.exists(self.storage.join(self.storage.root, name, _SCHEMA)))

    def _stored_schema(self, source: str) -> pa.Schema | None:
        try:
            data = self.storage.read_bytes(self.storage.join(self._dir(source), _SCHEMA))
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

    def _stored_buckets(self, source: str) -> int | None:
        known = self._buckets.get(source)
        if known is not None:
            return known
        try:
            data = self.storage.read_bytes(self.storage.join(self._dir(source), _LAYOUT))
        except FileNotFoundError:
            return None
        count = msgspec.json.decode(data, type=_Layout).buckets
        if self._wanted_buckets is not None and self._wanted_buckets != count:
            raise ValidationError("buckets", f"the history of {source!r} has {count} entity "
                                  f"buckets, not {self._wanted_buckets}")
        self._buckets[source] = count
        return count

    def buckets(self, source: str) -> int:
        """The number of entity buckets of ``source``."""
        count = self._stored_buckets(source)
        if count is None:
            self.schema(source)  # names the known sources
            raise ValidationError("source", f"the history of {source!r} has no {_LAYOUT}")
        return count

    def bucket_of(self, source: str, entities: pa.Array | pa.ChunkedArray | Sequence[Any]
                  ) -> npt.NDArray[np.int32]:
        """The bucket of each entity key (of the stored key type) of ``source``."""
        keys = entity_array(entities, self.schema(source).field(ENTITY).type)
        return partition_of(keys, self.buckets(source))

    def _ensure_buckets(self, source: str) -> int:
        """The source's bucket count, recorded by the first writer."""
        count = self._stored_buckets(source)
        if count is not None:
            return count
        with self.storage.locked(self.storage.join(self._dir(source), _LOCK)):
            count = self._stored_buckets(source)
            if count is None:
                count = self._wanted_buckets or DEFAULT_BUCKETS
                self.storage.write_bytes(self.storage.join(self._dir(source), _LAYOUT),
                                         msgspec.json.encode(_Layout(count)))
                self._buckets[source] = count
        return count

    # -- writing -------------------------------------------------------------------------

    def _stage(self, source: str, rows: pa.Table, task: str, checkpoint: int,
               buckets: int) -> list[tuple[str, str]]:
        """Stage the files of one checkpoint, one or more per (bucket, time partition)."""
        times = self.granularity.bucket_of(np.asarray(rows.column(EVENT_TIME), np.int64))
        entity = partition_of(rows.column(ENTITY).combine_chunks(), buckets).astype(np.int64)
        low = int(times.min()) if len(times) else 0
        key = entity * (int(times.max()) - low + 1 if len(times) else 1) + (times - low)
        order = np.argsort(key, kind="stable")
        edges = np.flatnonzero(np.diff(key[order])) + 1
        staged: list[tuple[str, str]] = []
        try:
            for piece in np.split(order, edges) if len(order) else []:
                part_rows = rows if len(piece) == rows.num_rows else rows.take(piece)
                first_row = int(piece[0])
                folder = self.storage.join(
                    self._dir(source), bucket_dir_name(int(entity[first_row])),
                    self.granularity.name_of(int(times[first_row]) * self.granularity.width_us))
                self.storage.makedirs(folder)
                for part, first in enumerate(range(0, part_rows.num_rows, MAX_FILE_ROWS)):
                    target = self.storage.join(folder, CheckpointFile(task, checkpoint, part).name)
                    staged.append((self.storage.stage_parquet(
                        target, part_rows.slice(first, MAX_FILE_ROWS)), target))
        except BaseException:
            for temp, _ in staged:
                self.storage.delete(temp)
            raise
        return staged

    def _evolve(self, source: str, schema: pa.Schema) -> pa.Schema:
        """Record the columns of ``schema`` (under the source lock); the merged schema."""
        stored = self._stored_schema(source)
        merged = merge_schemas(stored, schema)
        if stored is None or not merged.equals(stored):
            self.storage.write_bytes(self.storage.join(self._dir(source), _SCHEMA),
                                     merged.serialize().to_pybytes())
        self._schemas[source] = merged
        return merged

    def _latest_checkpoint(self, source: str, task: str) -> int:
        latest = self._latest.get((source, task))
        if latest is None:
            latest = max((p.max_checkpoint(task) for p in self._partitions(source)), default=-1)
        return latest

    def _progress_path(self, source: str, task: str, checkpoint: int) -> str:
        return self.storage.join(self._dir(source), _PROGRESS,
                                 ProgressFile(task, checkpoint).name)

    def write(self, source: str, batch: pa.RecordBatch | pa.Table, *, checkpoint: int,
              task: str, position: int | None = None, watermark: int | None = None,
              lateness: int | None = None) -> None:
        """Store the rows of checkpoint ``checkpoint`` of ``task``, replacing what an earlier
        write of the same checkpoint stored. Columns are described in
        :mod:`~headwater.store.history.rows`. With ``position``, ``watermark`` and
        ``lateness``, record how far in the log the task's rows now reach
        (:class:`Progress`)."""
        check_source(source)
        check_task(task)
        checkpoint = _check_checkpoint(checkpoint)
        given = [v is not None for v in (position, watermark, lateness)]
        if any(given) and not all(given):
            raise ValidationError("position", "give position, watermark and lateness together")
        rows = normalize(batch)
        known = self._schemas.get(source)
        merged = merge_schemas(known, rows.schema)  # a type change fails before any I/O
        self.storage.makedirs(self._dir(source))
        buckets = self._ensure_buckets(source)
        staged = self._stage(source, with_provenance(rows, task, checkpoint), task, checkpoint,
                             buckets)
        try:
            with self.storage.locked(self.storage.join(self._dir(source), _LOCK)):
                schema = merged if known is not None and merged.equals(known) else (
                    self._evolve(source, rows.schema))
                latest = self._latest_checkpoint(source, task)
                if checkpoint <= latest:
                    for partition in self._partitions(source):
                        partition.drop(task, checkpoint, checkpoint, self._file_schema(schema))
                for temp, target in staged:
                    self.storage.install(temp, target)
                self._latest[(source, task)] = max(latest, checkpoint)
        except BaseException:
            for temp, _ in staged:
                self.storage.delete(temp)
            raise
        if position is not None and watermark is not None and lateness is not None:
            progress = Progress(task, checkpoint, int(position), int(watermark), int(lateness))
            self.storage.makedirs(self.storage.join(self._dir(source), _PROGRESS))
            self.storage.write_bytes(self._progress_path(source, task, checkpoint),
                                     msgspec.json.encode(progress))
            if checkpoint >= 2:  # keep two: a recovery may discard the latest
                self.storage.delete(self._progress_path(source, task, checkpoint - 2))

    def discard_after(self, source: str, task: str, checkpoint: int) -> None:
        """Delete the rows of every checkpoint of ``task`` after ``checkpoint`` (``-1``: all
        of them), and what a crashed write of ``task`` left behind. For recovery: call it
        with the last committed checkpoint before writing again."""
        check_task(task)
        checkpoint = _check_checkpoint(checkpoint, low=-1)
        if self._stored_schema(source) is not None:
            with self.storage.locked(self.storage.join(self._dir(source), _LOCK)):
                for name, _ in self.storage.listdir(self.storage.join(self._dir(source),
                                                                       _PROGRESS)):
                    parsed = ProgressFile.parse(name)
                    if parsed is not None and parsed.task == task and (
                            parsed.checkpoint > checkpoint):
                        self.storage.delete(self._progress_path(source, task, parsed.checkpoint))
                schema = self._file_schema(self.schema(source))
                for partition in self._partitions(source):
                    partition.drop(task, checkpoint + 1, layout.MAX_CHECKPOINT, schema)
                    partition.clear_staged(task)
        self._latest[(source, task)] = checkpoint

    def progress(self, source: str) -> dict[str, Progress]:
        """Per task of ``source``, how far in the log its rows reach (the latest
        checkpoint written with a position); tasks written without one are absent."""
        latest: dict[str, ProgressFile] = {}
        for name, _ in self.storage.listdir(self.storage.join(self._dir(source), _PROGRESS)):
            parsed = ProgressFile.parse(name)
            if parsed is not None and (parsed.task not in latest
                                       or parsed.checkpoint > latest[parsed.task].checkpoint):
                latest[parsed.task] = parsed
        out = {}
        for task, found in sorted(latest.items()):
            try:
                data = self.storage.read_bytes(self._progress_path(source, task,
                                                                   found.checkpoint))
            except FileNotFoundError:
                continue  # discarded meanwhile: the task's rows are read from the log
            out[task] = msgspec.json.decode(data, type=Progress)
        return out

    # -- reading -------------------------------------------------------------------------

    def scan(self, source: str, *, columns: Sequence[str] | None = None,
             start: int | None = None, end: int | None = None,
             entities: Sequence[str | int] | pa.Array | pa.ChunkedArray | None = None,
             appended_by: int | None = None, buckets: Iterable[int] | None = None,
             through: Mapping[str, int] | None = None) -> pa.Table:
        """The rows with event time in ``[start, end)``, appended by ``appended_by``, of
        ``entities``, in ``buckets``, written by the tasks of ``through`` up to the
        checkpoint it names (``None``: no bound), in no particular order: the system
        columns and ``columns`` (``None``: every column; ``_task`` and ``_checkpoint`` on
        request)."""
        schema = self.schema(source)
        file_schema = self._file_schema(schema)
        wanted = list(dict.fromkeys([*SYSTEM, *(schema.names if columns is None else columns)]))
        for name in wanted:
            if file_schema.get_field_index(name) < 0:
                raise ValidationError("columns", f"{source!r} has no column {name!r}")
        keys = None if entities is None else entity_array(entities, schema.field(ENTITY).type)
        if keys is not None and buckets is None:
            buckets = np.unique(partition_of(keys, self.buckets(source))).tolist()
        parts = self._partitions(source, start, end, buckets)
        return read(self.storage, lambda: [f for p in parts for f in p.snapshot()],
                    file_schema, wanted, Filters(start, end, appended_by, keys, through))

    def values_at(self, features: Sequence[Feature], source: str, queries: Queries, *,
                  mode: Mode = "event_time", through: Mapping[str, int] | None = None,
                  more: pa.Table | None = None) -> pa.Table:
        """Each feature's value at each query row, read from this history (one row per
        query row, in order, duplicates kept, missing values null).

        One entity bucket at a time: the query rows of the bucket, the rows
        :func:`~headwater.store.history.timetravel.needed_rows` says (of ``through``'s
        tasks up to its checkpoints, when given) and the rows of ``more`` (history rows
        from elsewhere, e.g. the log's tail) of the bucket, then
        :func:`~headwater.features.pointintime.point_in_time`.
        """
        check_features(features, source)
        key_type = self.schema(source).field(ENTITY).type
        keys = entity_array(queries.entities, key_type, "queries.entities")
        times = np.asarray(queries.times, dtype=np.int64)
        if len(keys) != len(times):
            raise ValidationError("queries", f"{len(keys)} entities but {len(times)} times")
        extra = None
        if more is not None:
            extra = normalize(more).select([*SYSTEM, *needed_columns(features)])
            extra = extra.set_column(0, ENTITY, entity_array(extra.column(ENTITY), key_type,
                                                             "more._entity"))
        bucket_count = self.buckets(source)
        q_bucket = partition_of(keys, bucket_count)
        e_bucket = None if extra is None else partition_of(
            extra.column(ENTITY).combine_chunks(), bucket_count)
        order = np.argsort(q_bucket, kind="stable")
        edges = np.flatnonzero(np.diff(q_bucket[order])) + 1
        done: list[tuple[I64, pa.Table]] = []
        for rows in np.split(order, edges) if len(order) else []:
            bucket = int(q_bucket[rows[0]])
            mine = None if extra is None or e_bucket is None else extra.filter(
                pa.array(e_bucket == bucket))
            done.extend(self._join_bucket(features, source, bucket, keys.take(pa.array(rows)),
                                          times[rows], rows, mode, through, mine))
        if not done:
            empty = point_in_time(list(features), Sources(
                self._file_schema(self.schema(source)).empty_table(), ENTITY, EVENT_TIME,
                APPEND_TIME, OFFSET), Queries(keys, times), mode=mode)
            return empty
        positions = np.concatenate([rows for rows, _ in done])
        frame = pa.concat_tables([frame for _, frame in done])
        return frame.take(pa.array(np.argsort(positions, kind="stable")))

    def _join_bucket(self, features: Sequence[Feature], source: str, bucket: int,
                     keys: pa.Array, times: I64, rows: I64, mode: Mode,
                     through: Mapping[str, int] | None, more: pa.Table | None
                     ) -> list[tuple[I64, pa.Table]]:
        """The values of the query rows ``rows`` (entities ``keys`` at ``times``), all in
        ``bucket``: in one step, or in groups of entities when the bucket holds more than
        :data:`JOIN_MAX_ROWS` rows."""
        needed = needed_rows(features, times, mode)
        parts = self._partitions(source, needed.start, needed.end, [bucket])
        distinct = pc.unique(keys)
        groups: list[pa.Array | None] = [distinct]
        if len(distinct) > ENTITY_FILTER_MAX:
            stored = sum(self.storage.row_count(f) for p in parts for f in p.snapshot())
            count = min(len(distinct), math.ceil(stored / JOIN_MAX_ROWS))
            groups = [None] if count <= 1 else [
                distinct.take(pa.array(chunk)) for chunk in
                np.array_split(np.arange(len(distinct)), count)]
        schema = self._file_schema(self.schema(source))
        columns = [*SYSTEM, *needed_columns(features)]
        for name in columns:
            if schema.get_field_index(name) < 0:
                raise ValidationError("columns", f"{source!r} has no column {name!r}")
        out = []
        for group in groups:
            if group is None:
                picked, group_keys, group_times = rows, keys, times
            else:
                inside = np.asarray(pc.is_in(keys, value_set=group), dtype=bool)
                picked, group_keys, group_times = (rows[inside], keys.filter(pa.array(inside)),
                                                   times[inside])
            events = read(self.storage, lambda: [f for p in parts for f in p.snapshot()],
                          schema, columns, Filters(needed.start, needed.end, needed.appended_by,
                                                   group, through))
            if more is not None and more.num_rows:
                extra = more if group is None else more.filter(
                    pc.is_in(more.column(ENTITY), value_set=group))
                events = pa.concat_tables([events, extra.cast(events.schema)])
            frame = point_in_time(list(features), Sources(events, ENTITY, EVENT_TIME,
                                                          APPEND_TIME, OFFSET),
                                  Queries(group_keys, group_times), mode=mode)
            del events
            out.append((picked, frame))
        return out

    # -- compaction ----------------------------------------------------------------------

    def compact(self, source: str, day: str | date | None = None, *,
                exclusive: bool = False) -> int:
        """Merge the files of each partition of ``day`` (``None``: every day) into one,
        sorted by (entity, event time, offset). Returns how many partitions changed.

        On object storage there is no lock to keep a task's recovery (which rewrites a
        compacted file holding its discarded rows) out of a compaction: pass
        ``exclusive=True`` to say that no engine writing this source runs meanwhile."""
        if not self.storage.locks and not exclusive:
            raise ConfigError(
                f"compacting {source!r} at {self.location}: object storage has no lock, so a "
                "feature engine recovering meanwhile could lose its changes; stop the "
                "engines writing it and pass exclusive=True")
        schema = self._file_schema(self.schema(source))
        start, end = _day_span(day) if day is not None else (None, None)
        return sum(p.compact(schema) for p in self._partitions(source, start, end))
