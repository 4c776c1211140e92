"""A feature task: the features of one source partition, computed incrementally.

A task owns the state of the entities of one log partition (an entity's events are all
in its key's partition, so tasks never share an entity). Features of an entity keyed by
another column of the events (a payment's merchant, when payments are keyed by user)
are computed by one task over all the topic's partitions, each followed on its own
(:class:`Lane`). For each batch read from a partition, in log order, it

1. marks late events (event time more than the allowed lateness behind the watermark,
   the largest event time applied so far) and sends them to the dead-letter topic with
   the reason ``late``;
2. maps each entity's keys (its own column of the events) to dense ids and folds the
   other events into each feature's tile state
   (:class:`~headwater.features.state.FeatureState`), placing them once per
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
from headwater.features.definitions import Feature, Filter, key_column
from headwater.features.state import NO_TIME, FeatureState, TileRing
from headwater.features.values import TextCodes, check_feature, column_values, is_text
from headwater.features.windows import Window
from headwater.log import APPEND_TIME, OFFSET, Log, Rejection, TopicInfo

__all__ = ["ENTITY", "EVENT_TIME", "PARTITION", "FeatureTask", "KeyGroup", "Lane", "Update",
           "late_dead_letters", "late_events", "log_order"]

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
LOG_ORDER_SHIFT: Final = 40
"""Offsets of one partition stay below ``2**40`` in :func:`log_order`."""
Update = tuple[str, list[str], dict[str, list[bytes]]]
"""Online entries that changed, in columns: the entity's name, its keys (as text) and,
per feature, one entry per entity (features that changed the same entities share one
update)."""


class Lane:
    """Where a task is in one of its partitions: the next offset, the watermark (the
    largest event time applied there), and the last late event known to be stored."""

    def __init__(self, topic: str, partition: int) -> None:
        self.partition = partition
        self.name = f"{topic}-{partition}"
        self.position = 0
        self.watermark = NO_TIME
        #: The offset of the last late event known to be in the dead-letter topic, or
        #: ``None`` until this lane has stored one (see :func:`late_dead_letters`).
        self.dead_lettered: int | None = None
        self.pending: list[pa.Table] = []


class KeyGroup:
    """The features of one entity, keyed by one column of the source: the entities' dense
    ids and the tile rings of those features."""

    def __init__(self, entity: str, column: str, key_type: pa.DataType,
                 features: list[Feature]) -> None:
        self.entity = entity
        self.column = column
        self.key_type = key_type
        self.features = features
        self.keys: list[Any] = []
        self.texts: npt.NDArray[np.object_] = np.empty(0, object)  # the keys as text
        self.known = pa.array([], key_type)
        # Features of the same window and filter read the same events into the same
        # tiles: they share one ring, so its bookkeeping is done once a batch.
        self.rings: dict[tuple[TileRing, Filter | None], list[Feature]] = {}

    def ids(self, keys: pa.Array | pa.ChunkedArray) -> tuple[I64, I64]:
        """Dense ids of the keys (new keys get the next ids), and the distinct ids."""
        found = pc.index_in(keys, value_set=self.known)
        if not found.null_count:
            ids = np.asarray(found, np.int64)
        else:  # look up only the new keys again, among themselves
            absent = pc.is_null(found)
            unknown = keys.filter(absent)
            new = pc.unique(unknown)
            first = len(self.keys)
            self.add_keys(new.to_pylist())
            self.known = pa.concat_arrays([self.known, new.cast(self.key_type)])
            ids = np.asarray(found.fill_null(0), np.int64)
            ids[np.asarray(absent)] = first + np.asarray(pc.index_in(unknown, value_set=new),
                                                         np.int64)
        return ids, np.flatnonzero(np.bincount(ids, minlength=len(self.keys)))

    def add_keys(self, keys: list[Any]) -> None:
        self.keys.extend(keys)
        texts = np.empty(len(keys), object)
        texts[:] = [str(k) for k in keys]
        self.texts = np.concatenate([self.texts, texts])

    def reset_keys(self, keys: pa.Array) -> None:
        self.keys = []
        self.texts = np.empty(0, object)
        self.add_keys(keys.to_pylist())
        self.known = keys.cast(self.key_type)


class FeatureTask:
    """Incremental state of the features of one topic, over one partition or all of them.

    A task over one partition computes features keyed by the topic's key (an entity's
    events are all in its key's partition). Features keyed by another column of the
    events (a payment's merchant, when payments are keyed by user) see events of every
    partition, so their task covers all of the topic's partitions; each partition keeps
    its own position and watermark (:class:`Lane`), and events of different partitions
    are ordered by :func:`log_order`.
    """

    def __init__(self, topic: TopicInfo, partition: int | Sequence[int],
                 features: Sequence[Feature]) -> None:
        sources = {f.source for f in features}
        if not features or any(s.topic != topic.name for s in sources):
            raise ValidationError("features", f"a task computes features of {topic.name!r} only")
        for f in features:
            check_feature(f, topic.schema)
        lateness = {s.allowed_lateness_us for s in sources}
        if len(lateness) > 1:
            raise ValidationError(
                "source", f"features of {topic.name!r} disagree on the allowed lateness"
            )
        partitions = (partition,) if isinstance(partition, int) else tuple(sorted(partition))
        self.topic = topic
        self.lanes = {p: Lane(topic.name, p) for p in partitions}
        self.whole = len(partitions) > 1
        self.partition = partitions[0]
        """The partition of a task over one (the first, for a task over several)."""
        self.name = f"{topic.name}-{partitions[0]}" if not self.whole else topic.name
        self.features = list(features)
        self.lateness = lateness.pop()
        self.event_time = topic.schema.event_time
        stored = topic.schema.arrow_schema()
        self.groups: list[KeyGroup] = []
        for f in self.features:
            column = key_column(f)
            group = next((g for g in self.groups if g.entity == f.entity.name), None)
            if group is None:
                group = KeyGroup(f.entity.name, column, stored.field(column).type, [])
                self.groups.append(group)
            elif group.column != column:
                raise ValidationError(
                    f"{f.name}.entity", f"entity {f.entity.name!r} is keyed by "
                    f"{group.column!r} and by {column!r} in {topic.name!r}: give each its "
                    "own entity name")
            group.features.append(f)
        spread = [g.column for g in self.groups if g.column != topic.schema.key]
        if spread and topic.partitions > 1 and set(partitions) != set(range(topic.partitions)):
            raise ValidationError(
                "partitions", f"features of {topic.name!r} keyed by {spread[0]!r} (not the "
                "topic's key) read every partition: one task computes them over all "
                f"{topic.partitions}")
        #: The column the feature history keeps as the entity: the topic's key when a
        #: group is keyed by it, else the first group's.
        self.key = next((g.column for g in self.groups if g.column == topic.schema.key),
                        self.groups[0].column)
        self.states: dict[str, FeatureState] = {}
        # What each feature folds of its column (text is hashed or coded, see values.py),
        # read once a batch for the features that fold the same.
        self.codes: dict[str, TextCodes] = {}
        self.reads: dict[str, tuple[str | None, str]] = {}
        for f in self.features:
            text = f.column is not None and is_text(stored.field(f.column).type)
            self.reads[f.name] = (f.column, f.aggregation if text else "")
            if text and f.aggregation == "last":
                assert f.column is not None
                self.codes.setdefault(f.column, TextCodes())
        for group in self.groups:
            by_window: dict[tuple[Window, Filter | None], TileRing] = {}
            for f in group.features:
                ring = by_window.get((f.window, f.where))
                if ring is None:
                    ring = by_window[(f.window, f.where)] = TileRing(f.window)
                self.states[f.name] = FeatureState(f, ring=ring)
                if self.reads[f.name][1] == "last" and f.column is not None:
                    self.states[f.name].codes = self.codes[f.column]
                group.rings.setdefault((ring, f.where), []).append(f)
        self.checkpoint_id = 0
        columns = {self.event_time, APPEND_TIME, OFFSET, *(g.column for g in self.groups)}
        for f in self.features:
            columns.update(c for c in (f.column, f.where.column if f.where else None) if c)
        self.history_columns = [c for c in topic.schema.stored_schema().names if c in columns]

    # -- one lane ---------------------------------------------------------------------

    def _lane(self) -> Lane:
        if self.whole:
            raise ValidationError("partition", f"{self.name} covers several partitions")
        return self.lanes[self.partition]

    @property
    def position(self) -> int:
        """The next offset of a task over one partition."""
        return self._lane().position

    @position.setter
    def position(self, value: int) -> None:
        self._lane().position = value

    @property
    def watermark(self) -> int:
        """The watermark of a task over one partition."""
        return self._lane().watermark

    # -- processing -----------------------------------------------------------------

    def process(self, batch: pa.RecordBatch | pa.Table, partition: int | None = None
                ) -> tuple[list[Update], pa.RecordBatch | pa.Table]:
        """Apply one batch (the next events of ``partition``, in order; the task's own
        when it covers one): a record batch, or a table of several read one after the
        other (never copied into one).

        Returns the online updates and the late events (for the dead-letter topic).
        """
        lane = self.lanes[self.partition if partition is None else partition]
        if not batch.num_rows:
            return [], batch
        offsets = np.asarray(batch.column(OFFSET), np.int64)
        if offsets[0] != lane.position:
            raise ValidationError(
                "batch", f"{lane.name}: expected offset {lane.position}, got {offsets[0]}"
            )
        times = np.asarray(batch.column(self.event_time).cast(pa.int64()), np.int64)
        late, lane.watermark = late_events(times, lane.watermark, self.lateness)
        lane.position = int(offsets[-1]) + 1
        applied = batch.filter(pa.array(~late)) if late.any() else batch
        late_batch = batch.filter(pa.array(late)) if late.any() else batch.slice(0, 0)
        if not applied.num_rows:
            return [], late_batch
        updates: list[Update] = []
        for group in self.groups:
            events = applied
            keys = applied.column(group.column)
            if keys.null_count:  # an event without this entity describes none of its
                events = applied.filter(pc.is_valid(keys))
                keys = events.column(group.column)
            if events.num_rows:
                updates.extend(self._apply(group, events, keys, lane.partition))
        history = applied.select(self.history_columns)
        lane.pending.append(history if isinstance(history, pa.Table)
                            else pa.Table.from_batches([history]))
        return updates, late_batch

    def _apply(self, group: KeyGroup, applied: pa.RecordBatch | pa.Table,
               keys: pa.Array | pa.ChunkedArray, partition: int) -> list[Update]:
        """Fold the events into the features of one entity; return its changed entries."""
        ids, every = group.ids(keys)
        times = np.asarray(applied.column(self.event_time).cast(pa.int64()), np.int64)
        offsets = np.asarray(applied.column(OFFSET), np.int64)
        if self.whole:  # events of several partitions: ordered by partition, then offset
            offsets = log_order(partition, offsets)
        columns: dict[tuple[str | None, str], F64] = {}
        changed: list[tuple[I64, TileRing, list[Feature]]] = []
        for ring, _ in group.rings:  # room for every entity at once, not chunk by chunk
            ring.grow(len(group.keys))
        for (ring, where), features in group.rings.items():
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
            group_ids = every if mask is None else np.flatnonzero(np.bincount(g_ids))
            changed.append((group_ids, ring, features))
        return self._updates(group, changed)

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

    def _updates(self, group: KeyGroup, changed: list[tuple[I64, TileRing, list[Feature]]]
                 ) -> list[Update]:
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
        return [(group.entity, group.texts[ids].tolist(), columns) for ids, columns in groups]

    def take_history(self, partition: int | None = None) -> pa.Table | None:
        """The events of ``partition`` (the task's own when it covers one) applied since
        the last call, as feature-history rows (:data:`ENTITY`, :data:`EVENT_TIME`,
        ``_append_time``, :data:`PARTITION`, ``_offset`` and the columns features read;
        :attr:`key` is the entity)."""
        lane = self.lanes[self.partition if partition is None else partition]
        if not lane.pending:
            return None
        table = pa.concat_tables(lane.pending)
        lane.pending = []
        names = {self.key: ENTITY, self.event_time: EVENT_TIME}
        table = table.rename_columns([names.get(n, n) for n in table.schema.names])
        column = pa.array(np.full(table.num_rows, lane.partition, np.int32))
        return table.append_column(PARTITION, column)

    # -- checkpoints ----------------------------------------------------------------

    def snapshot(self) -> tuple[Checkpoint, dict[str, npt.NDArray[Any]], pa.Array]:
        """The state to checkpoint: each ring once (its live slots, see
        :meth:`~headwater.features.state.TileRing.live`), then each feature's partials of
        those slots only. The keys are those of the one entity, or of each entity in
        turn as text (their counts in ``keys:sizes``)."""
        arrays: dict[str, npt.NDArray[Any]] = {}
        for group in self.groups:
            size = len(group.keys)
            for (ring, _), features in group.rings.items():
                saved = ring.snapshot(size)
                arrays.update({f"ring:{features[0].name}/{k}": v for k, v in saved.items()})
                for f in features:
                    partials = self.states[f.name].partials(saved["slots"])
                    arrays.update({f"{f.name}/partial.{k}": v for k, v in partials.items()})
        for column, codes in self.codes.items():
            arrays.update({f"texts:{column}/{k}": v for k, v in codes.snapshot().items()})
        digests = {f.name: f.digest for f in self.features}
        if not self.whole:
            lane = self._lane()
            meta = Checkpoint(self.checkpoint_id, lane.position, lane.watermark, digests)
        else:
            meta = Checkpoint(self.checkpoint_id, 0, NO_TIME, digests, lanes={
                str(p): (lane.position, lane.watermark) for p, lane in self.lanes.items()})
        if len(self.groups) == 1:
            return meta, arrays, self.groups[0].known
        arrays["keys:sizes"] = np.array([len(g.keys) for g in self.groups], np.int64)
        keys = pa.concat_arrays([g.known.cast(pa.string()) for g in self.groups])
        return meta, arrays, keys

    def restore(self, meta: Checkpoint, arrays: dict[str, npt.NDArray[Any]], keys: pa.Array
                ) -> None:
        expected = {f.name: f.digest for f in self.features}
        if meta.features != expected:
            raise ValidationError(
                "features", f"{self.name}: the checkpoint was computed for other feature "
                "definitions; backfill the changed features instead of resuming"
            )
        if len(self.groups) == 1:
            self.groups[0].reset_keys(keys)
        else:
            at = 0
            for group, size in zip(self.groups, arrays["keys:sizes"].tolist(), strict=True):
                group.reset_keys(keys.slice(at, size).cast(group.key_type))
                at += size
        for group in self.groups:
            self._restore_group(group, arrays)
        for column, codes in self.codes.items():
            prefix = f"texts:{column}/"
            saved = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            if saved:
                codes.restore(saved)
        positions = ({int(p): tuple(v) for p, v in meta.lanes.items()} if self.whole
                     else {self.partition: (meta.position, meta.watermark)})
        for p, lane in self.lanes.items():
            lane.position, lane.watermark = positions[p]
            lane.pending = []
        self.checkpoint_id = meta.id

    def _restore_group(self, group: KeyGroup, arrays: dict[str, npt.NDArray[Any]]) -> None:
        size = len(group.keys)
        for (ring, _), features in group.rings.items():
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


def log_order(partition: int, offsets: I64) -> I64:
    """A position in the log that orders events of several partitions: by partition,
    then by offset (ties in event time between partitions go by partition number; within
    one partition it is the offset's order)."""
    return offsets + (np.int64(partition) << np.int64(LOG_ORDER_SHIFT))


def late_events(times: I64, watermark: int, lateness: int) -> tuple[npt.NDArray[np.bool_], int]:
    """Which events (in log order) are late, and the watermark after them.

    An event is late when its time is more than ``lateness`` behind the watermark: the
    largest event time before it in the partition. The one rule every path applies.
    """
    before = np.maximum.accumulate(np.concatenate([[watermark], times]))[:-1]
    late = (times < before - lateness) & (before != NO_TIME)
    return late, max(watermark, int(times.max())) if len(times) else watermark


def late_dead_letters(log: Log, task: FeatureTask, late: pa.RecordBatch | pa.Table,
                      partition: int | None = None) -> None:
    """Keep late events in the topic's dead-letter topic exactly once, however the
    partition was cut into reads and wherever an earlier run of the task stopped.

    Each append is idempotent with the offset of its last event as the sequence, and
    holds only events after those already stored: so what is stored is always a prefix,
    in log order, of the partition's late events, and an append is a duplicate exactly
    when its last event is in that prefix. A task learns where the prefix ends from its
    first append that is stored (:attr:`Lane.dead_lettered`). Until then — a
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
    lane = task.lanes[task.partition if partition is None else partition]
    producer = f"features.late.{lane.name}"
    at = 0
    if lane.dead_lettered is None:
        while at < len(offsets) and lane.dead_lettered is None:
            if log.dead_letter(task.topic.name, rejections[at: at + 1], producer_id=producer,
                               sequence=offsets[at]):
                lane.dead_lettered = offsets[at]
            at += 1
    else:
        while at < len(offsets) and offsets[at] <= lane.dead_lettered:
            at += 1  # stored already (a batch read again)
    if at < len(offsets):
        log.dead_letter(task.topic.name, rejections[at:], producer_id=producer,
                        sequence=offsets[-1])
        lane.dead_lettered = offsets[-1]
