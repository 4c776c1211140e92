"""A feature task: the features of one source partition, computed incrementally.

A task owns the state of the entities of one log partition (an entity's events are all
in one partition, so tasks never share an entity). For each batch read from the
partition, in log order, it

1. marks late events (event time more than the allowed lateness behind the watermark,
   the largest event time applied so far) and sends them to the dead-letter topic with
   the reason ``late``;
2. maps entity keys to dense ids and folds the other events into each feature's tile
   state (:class:`~headwater.features.state.FeatureState`), placing them once per
   :class:`~headwater.features.state.TileRing` (features of one window and filter
   share a ring);
3. returns the online entries of the entities that changed, and keeps the applied events
   for the feature history until the next checkpoint.

The live engine and a backfill both drive tasks; they differ only in where batches come
from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ValidationError
from headwater.features.checkpoint import Checkpoint
from headwater.features.definitions import Feature, Filter
from headwater.features.state import NO_TIME, FeatureState, TileRing
from headwater.features.values import TextCodes, check_feature, column_values, is_text
from headwater.features.windows import Window
from headwater.log import APPEND_TIME, OFFSET, Log, Rejection, TopicInfo

__all__ = ["ENTITY", "EVENT_TIME", "PARTITION", "FeatureTask", "Update", "late_dead_letters",
           "late_events"]

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
FOLD_CHUNK = 1 << 16
"""Events placed and folded together (a few MB of arrays, whatever the batch size)."""
ENCODE_CHUNK = 1 << 13
"""Entities encoded together (their tiles fill a few MB, whatever the batch size)."""
#: The system columns a task's history rows add to the log's ``_append_time`` and
#: ``_offset`` (:mod:`headwater.store.history.rows` checks the rows at the history's edge).
ENTITY: Final = "_entity"
EVENT_TIME: Final = "_event_time"
PARTITION: Final = "_partition"
Update = tuple[list[str], dict[str, list[bytes]]]
"""Online entries that changed, in columns: entity keys (as text) and, per feature, one
entry per entity (features that changed the same entities share one update)."""


class FeatureTask:
    """Incremental state of the features of one (topic, partition)."""

    def __init__(self, topic: TopicInfo, partition: int, features: Sequence[Feature]) -> None:
        sources = {f.source for f in features}
        if not features or any(s.topic != topic.name for s in sources):
            raise ValidationError("features", f"a task computes features of {topic.name!r} only")
        for f in features:
            check_feature(f, topic.schema)
        lateness = {s.allowed_lateness_us for s in sources}
        keys = {s.entity_key or topic.schema.key for s in sources}
        if len(lateness) > 1 or len(keys) > 1:
            raise ValidationError(
                "source", f"features of {topic.name!r} disagree on lateness or entity key"
            )
        self.topic = topic
        self.partition = partition
        self.name = f"{topic.name}-{partition}"
        self.features = list(features)
        self.lateness = lateness.pop()
        key = keys.pop()
        if key is None:
            raise ValidationError("source.entity_key", f"{topic.name!r} has no key column")
        self.key = key
        self.event_time = topic.schema.event_time
        # Features of the same window and filter read the same events into the same
        # tiles: they share one ring, so its bookkeeping is done once a batch.
        self.rings: dict[tuple[TileRing, Filter | None], list[Feature]] = {}
        by_window: dict[tuple[Window, Filter | None], TileRing] = {}
        self.states: dict[str, FeatureState] = {}
        # What each feature folds of its column (text is hashed or coded, see values.py),
        # read once a batch for the features that fold the same.
        stored = topic.schema.arrow_schema()
        self.codes: dict[str, TextCodes] = {}
        self.reads: dict[str, tuple[str | None, str]] = {}
        for f in self.features:
            text = f.column is not None and is_text(stored.field(f.column).type)
            self.reads[f.name] = (f.column, f.aggregation if text else "")
            if text and f.aggregation == "last":
                assert f.column is not None
                self.codes.setdefault(f.column, TextCodes())
        for f in self.features:
            ring = by_window.get((f.window, f.where))
            if ring is None:
                ring = by_window[(f.window, f.where)] = TileRing(f.window)
            self.states[f.name] = FeatureState(f, ring=ring)
            if self.reads[f.name][1] == "last" and f.column is not None:
                self.states[f.name].codes = self.codes[f.column]
            self.rings.setdefault((ring, f.where), []).append(f)
        self.key_type = topic.schema.arrow_schema().field(self.key).type
        self.keys: list[Any] = []
        self._texts: npt.NDArray[np.object_] = np.empty(0, object)  # the keys as text
        self._known = pa.array([], self.key_type)
        self.watermark = NO_TIME
        self.position = 0
        self.checkpoint_id = 0
        self.pending: list[pa.Table] = []
        #: The offset of the last late event known to be in the dead-letter topic, or
        #: ``None`` until this task has stored one (see :func:`late_dead_letters`).
        self.dead_lettered: int | None = None
        columns = {self.key, self.event_time, APPEND_TIME, OFFSET}
        for f in self.features:
            columns.update(c for c in (f.column, f.where.column if f.where else None) if c)
        self.history_columns = [c for c in topic.schema.stored_schema().names if c in columns]

    # -- processing -----------------------------------------------------------------

    def process(self, batch: pa.RecordBatch | pa.Table
                ) -> tuple[list[Update], pa.RecordBatch | pa.Table]:
        """Apply one batch (the next events of the partition, in order): a record batch,
        or a table of several read one after the other (never copied into one).

        Returns the online updates and the late events (for the dead-letter topic).
        """
        if not batch.num_rows:
            return [], batch
        offsets = np.asarray(batch.column(OFFSET), np.int64)
        if offsets[0] != self.position:
            raise ValidationError(
                "batch", f"{self.name}: expected offset {self.position}, got {offsets[0]}"
            )
        times = np.asarray(batch.column(self.event_time).cast(pa.int64()), np.int64)
        late, self.watermark = late_events(times, self.watermark, self.lateness)
        self.position = int(offsets[-1]) + 1
        applied = batch.filter(pa.array(~late)) if late.any() else batch
        late_batch = batch.filter(pa.array(late)) if late.any() else batch.slice(0, 0)
        if not applied.num_rows:
            return [], late_batch
        ids, every = self._ids(applied.column(self.key))
        times = np.asarray(applied.column(self.event_time).cast(pa.int64()), np.int64)
        offsets = np.asarray(applied.column(OFFSET), np.int64)
        columns: dict[tuple[str | None, str], F64] = {}
        changed: list[tuple[I64, TileRing, list[Feature]]] = []
        for ring, _ in self.rings:  # room for every entity at once, not chunk by chunk
            ring.grow(len(self.keys))
        for (ring, where), features in self.rings.items():
            mask = where.mask(applied) if where is not None else None
            g_ids, g_times, g_offsets = ids, times, offsets
            if mask is not None:
                g_ids, g_times, g_offsets = ids[mask], times[mask], offsets[mask]
            if not len(g_ids):
                continue
            g_values: dict[tuple[str | None, str], F64] = {}  # each read once per ring
            for f in features:
                read = self.reads[f.name]
                if read not in g_values:
                    values = self._values(applied, read, columns)
                    g_values[read] = values if mask is None else values[mask]
            # Events in chunks, in log order (the state is the same as from one pass):
            # the arrays of a chunk stay small, reused from the heap and the cache.
            for start in range(0, len(g_ids), FOLD_CHUNK):
                part = slice(start, start + FOLD_CHUNK)
                self._fold(ring, features, g_ids[part], g_times[part], g_offsets[part],
                           {c: v[part] for c, v in g_values.items()})
            group = every if mask is None else np.flatnonzero(np.bincount(g_ids))
            changed.append((group, ring, features))
        history = applied.select(self.history_columns)
        self.pending.append(history if isinstance(history, pa.Table)
                            else pa.Table.from_batches([history]))
        return self._updates(changed), late_batch

    def _fold(self, ring: TileRing, features: list[Feature], ids: I64, times: I64,
              offsets: I64, values: dict[tuple[str | None, str], F64]) -> None:
        """Fold events into the features of one ring, placed once for all of them."""
        placed = ring.place(ids, times)
        if placed.keep is not None:
            times, offsets = times[placed.keep], offsets[placed.keep]
            values = {c: v[placed.keep] for c, v in values.items()}
        for f in features:
            self.states[f.name].fold(placed, times, offsets, values[self.reads[f.name]])

    def _values(self, batch: pa.RecordBatch | pa.Table, read: tuple[str | None, str],
                cache: dict[tuple[str | None, str], F64]) -> F64:
        """What features fold of a column (:func:`~headwater.features.values.column_values`:
        float64, null as ``NaN``; zeros for ``count``), read once a batch."""
        values = cache.get(read)
        if values is None:
            column, kind = read
            values = column_values(kind, None if column is None else batch.column(column),
                                   batch.num_rows, self.codes.get(column or ""))
            cache[read] = values
        return values

    def _ids(self, keys: pa.Array | pa.ChunkedArray) -> tuple[I64, I64]:
        """Dense ids of the keys (new keys get the next ids), and the distinct ids."""
        found = pc.index_in(keys, value_set=self._known)
        if not found.null_count:
            ids = np.asarray(found, np.int64)
        else:  # look up only the new keys again, among themselves
            absent = pc.is_null(found)
            unknown = keys.filter(absent)
            new = pc.unique(unknown)
            first = len(self.keys)
            self._add_keys(new.to_pylist())
            self._known = pa.concat_arrays([self._known, new.cast(self.key_type)])
            ids = np.asarray(found.fill_null(0), np.int64)
            ids[np.asarray(absent)] = first + np.asarray(pc.index_in(unknown, value_set=new),
                                                         np.int64)
        return ids, np.flatnonzero(np.bincount(ids, minlength=len(self.keys)))

    def _add_keys(self, keys: list[Any]) -> None:
        self.keys.extend(keys)
        texts = np.empty(len(keys), object)
        texts[:] = [str(k) for k in keys]
        self._texts = np.concatenate([self._texts, texts])

    def _updates(self, changed: list[tuple[I64, TileRing, list[Feature]]]) -> list[Update]:
        """The online entries of the entities that changed, one update per distinct set
        of entities (features of one ring, and rings of unfiltered features, share one)."""
        groups: list[tuple[I64, dict[str, list[bytes]]]] = []
        for ids, ring, features in changed:
            columns = next((c for g, c in groups if g is ids or np.array_equal(g, ids)), None)
            if columns is None:
                columns = {}
                groups.append((ids, columns))
            entries: list[list[bytes]] = [[] for _ in features]
            # Entities in chunks: the arrays of a chunk (entities x tiles) stay small, so
            # they are reused from the heap and the cache rather than fresh each batch.
            for start in range(0, len(ids), ENCODE_CHUNK):
                chunk = ids[start:start + ENCODE_CHUNK]
                ages = ring.ages(chunk)  # worked out once for the features sharing the ring
                for f, out in zip(features, entries, strict=True):
                    out.extend(self.states[f.name].encode(chunk, ages))
            columns.update(zip((f.name for f in features), entries, strict=True))
        return [(self._texts[ids].tolist(), columns) for ids, columns in groups]

    def take_history(self) -> pa.Table | None:
        """The applied events since the last call, as feature-history rows
        (:data:`ENTITY`, :data:`EVENT_TIME`, ``_append_time``, :data:`PARTITION`,
        ``_offset`` and the columns features read)."""
        if not self.pending:
            return None
        table = pa.concat_tables(self.pending)
        self.pending = []
        names = {self.key: ENTITY, self.event_time: EVENT_TIME}
        table = table.rename_columns([names.get(n, n) for n in table.schema.names])
        partition = pa.array(np.full(table.num_rows, self.partition, np.int32))
        return table.append_column(PARTITION, partition)

    # -- checkpoints ----------------------------------------------------------------

    def snapshot(self) -> tuple[Checkpoint, dict[str, npt.NDArray[Any]], pa.Array]:
        """The state to checkpoint: each ring once (its live slots, see
        :meth:`~headwater.features.state.TileRing.live`), then each feature's partials of
        those slots only."""
        size = len(self.keys)
        arrays: dict[str, npt.NDArray[Any]] = {}
        for (ring, _), features in self.rings.items():
            saved = ring.snapshot(size)
            arrays.update({f"ring:{features[0].name}/{k}": v for k, v in saved.items()})
            for f in features:
                partials = self.states[f.name].partials(saved["slots"])
                arrays.update({f"{f.name}/partial.{k}": v for k, v in partials.items()})
        for column, codes in self.codes.items():
            arrays.update({f"texts:{column}/{k}": v for k, v in codes.snapshot().items()})
        meta = Checkpoint(self.checkpoint_id, self.position, self.watermark,
                          {f.name: f.digest for f in self.features})
        return meta, arrays, self._known

    def restore(self, meta: Checkpoint, arrays: dict[str, npt.NDArray[Any]], keys: pa.Array
                ) -> None:
        expected = {f.name: f.digest for f in self.features}
        if meta.features != expected:
            raise ValidationError(
                "features", f"{self.name}: the checkpoint was computed for other feature "
                "definitions; backfill the changed features instead of resuming"
            )
        self.keys = []
        self._texts = np.empty(0, object)
        self._add_keys(keys.to_pylist())
        self._known = keys.cast(self.key_type)
        size = len(self.keys)
        for (ring, _), features in self.rings.items():
            prefix = f"ring:{features[0].name}/"
            saved = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            if saved:
                ring.restore_live(saved)
            for f in features:
                state, prefix = self.states[f.name], f"{f.name}/"
                own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
                if not saved:  # a checkpoint of the first format: every slot, per feature
                    state.restore(own)
                    continue
                partials = {k.removeprefix("partial."): v for k, v in own.items()}
                state.restore_partials(size, saved["slots"], partials)
        for column, codes in self.codes.items():
            prefix = f"texts:{column}/"
            saved = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            if saved:
                codes.restore(saved)
        self.position, self.watermark, self.checkpoint_id = meta.position, meta.watermark, meta.id
        self.pending = []


def late_events(times: I64, watermark: int, lateness: int) -> tuple[npt.NDArray[np.bool_], int]:
    """Which events (in log order) are late, and the watermark after them.

    An event is late when its time is more than ``lateness`` behind the watermark: the
    largest event time before it in the partition. The one rule every path applies.
    """
    before = np.maximum.accumulate(np.concatenate([[watermark], times]))[:-1]
    late = (times < before - lateness) & (before != NO_TIME)
    return late, max(watermark, int(times.max())) if len(times) else watermark


def late_dead_letters(log: Log, task: FeatureTask, late: pa.RecordBatch | pa.Table
                      ) -> None:
    """Keep late events in the topic's dead-letter topic exactly once, however the
    partition was cut into reads and wherever an earlier run of the task stopped.

    Each append is idempotent with the offset of its last event as the sequence, and
    holds only events after those already stored: so what is stored is always a prefix,
    in log order, of the partition's late events, and an append is a duplicate exactly
    when its last event is in that prefix. A task learns where the prefix ends from its
    first append that is stored (:attr:`FeatureTask.dead_lettered`). Until then — a
    task resumed after a crash, or a backfill, may meet late events an earlier run
    stored without a checkpoint saying so — it appends them one at a time, each with its
    own offset: the stored ones are skipped as duplicates, and the first one stored
    fixes the end of the prefix.
    """
    if not late.num_rows:
        return
    offsets = late.column(OFFSET).to_pylist()
    rejections = [
        Rejection(offset, task.event_time,
                  "late: more than the allowed lateness behind the watermark",
                  msgspec.json.encode(row, enc_hook=str))
        for offset, row in zip(offsets, late.to_pylist(), strict=True)
    ]
    producer = f"features.late.{task.name}"
    at = 0
    if task.dead_lettered is None:
        while at < len(offsets) and task.dead_lettered is None:
            if log.dead_letter(task.topic.name, rejections[at: at + 1], producer_id=producer,
                               sequence=offsets[at]):
                task.dead_lettered = offsets[at]
            at += 1
    else:
        while at < len(offsets) and offsets[at] <= task.dead_lettered:
            at += 1  # stored already (a batch read again)
    if at < len(offsets):
        log.dead_letter(task.topic.name, rejections[at:], producer_id=producer,
                        sequence=offsets[-1])
        task.dead_lettered = offsets[-1]
