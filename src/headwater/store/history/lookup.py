"""Time travel from the feature history, and from the log only after it.

:func:`headwater.features.timetravel.values_at_times` recomputes past values by replaying
the whole source topic. The feature history already holds every event the engine
applied up to its last checkpoint, in entity buckets, and records how far in each log
partition that is (:class:`~headwater.store.history.Progress`: offset, watermark and
lateness). So :func:`values_at_times` reads the entities' buckets of the history up to
each task's recorded checkpoint, and from the log only what came after: each partition
(only the entity's, when the topic is keyed by it) from the recorded offset on, dropping
late events by the engine's rule from the recorded watermark. The union is exactly the
events a whole replay applies, so the values are the same; the cost is the entities'
buckets plus the engine's lag, not the topic.

It replays the whole topic instead, and says why (:func:`history_gap`), when the history
cannot answer: no history of the topic, a column the features read that the engine did
not keep, or a lateness other than the one the engine applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ValidationError
from headwater.features.definitions import Feature, key_column
from headwater.features.pointintime import Mode, Queries
from headwater.features.state import NO_TIME
from headwater.features.task import late_events
from headwater.features.timetravel import values_at_times as replayed_values
from headwater.log import Log
from headwater.log.partitioner import partition_of
from headwater.store.history.history import FeatureHistory
from headwater.store.history.rows import ENTITY, EVENT_TIME, PARTITION, SYSTEM
from headwater.store.history.scan import entity_array
from headwater.store.history.timetravel import needed_columns

__all__ = ["history_gap", "values_at_times"]


def _by_entity(features: Sequence[Feature]) -> dict[tuple[str, str], list[Feature]]:
    """The features by source topic and entity."""
    grouped: dict[tuple[str, str], list[Feature]] = {}
    for f in features:
        grouped.setdefault((f.source.topic, f.entity.name), []).append(f)
    return grouped


def history_gap(history: FeatureHistory, topic: str, features: Sequence[Feature]) -> str | None:
    """Why the history cannot answer for ``features`` of ``topic`` (``None``: it can)."""
    if topic not in history.sources():
        return f"no feature history of {topic!r} at {history.location}"
    stored = history.schema(topic).names
    other = next((f for f in features if key_column(f) in stored), None)
    if other is not None:  # its column is kept as a value: the entity is another column
        return (f"the history of {topic!r} is cut by another entity than "
                f"{other.entity.name!r} (keyed by {key_column(other)!r})")
    missing = [c for c in needed_columns(features) if c not in stored]
    if missing:
        return f"the history of {topic!r} has no column {missing[0]!r}"
    lateness = features[0].source.allowed_lateness_us
    for progress in history.progress(topic).values():
        if progress.lateness != lateness:
            return (f"the history of {topic!r} was written with an allowed lateness of "
                    f"{progress.lateness} µs, not {lateness}")
    return None


def _tail(log: Log, history: FeatureHistory, topic: str, features: Sequence[Feature],
          keys: pa.Array) -> tuple[dict[str, int], pa.Table | None]:
    """Per task, the last checkpoint of the history to read, and the entities' events of
    the log after it, as history rows."""
    info = log.topic(topic)
    source = features[0].source
    key = key_column(features[0])
    progress = history.progress(topic)
    if key == info.schema.key:  # an entity's events are all in its key's partition
        partitions = np.unique(partition_of(keys, info.partitions)).tolist()
    else:
        partitions = list(range(info.partitions))
    through = {task: p.checkpoint for task, p in progress.items()}
    columns = needed_columns(features)
    key_type = history.schema(topic).field(ENTITY).type
    pieces: list[pa.Table] = []
    for partition in partitions:
        task = f"{topic}-{partition}"  # the engine's name for the partition's task
        reached = progress.get(task)
        through[task] = reached.checkpoint if reached is not None else -1
        watermark = reached.watermark if reached is not None else NO_TIME
        start = reached.position if reached is not None else None
        for fetched in log.replay(topic, [partition], start=start):
            batch = fetched.batch
            times = np.asarray(batch.column(info.schema.event_time).cast(pa.int64()))
            late, watermark = late_events(times, watermark, source.allowed_lateness_us)
            entity = entity_array(batch.column(key), key_type, key)
            keep = pc.and_(pa.array(~late), pc.is_in(entity, value_set=keys))
            if not pc.any(keep).as_py():
                continue
            rows = pa.table({
                ENTITY: entity.filter(keep),
                EVENT_TIME: pa.array(times).filter(keep),
                **{name: batch.column(name).filter(keep) for name in SYSTEM[2:]
                   if name != PARTITION},
                PARTITION: pa.array(np.full(int(pc.sum(keep).as_py()), partition, np.int32)),
                **{name: batch.column(name).filter(keep) for name in columns},
            })
            pieces.append(rows.select([*SYSTEM, *columns]))
    return through, pa.concat_tables(pieces) if pieces else None


def values_at_times(log: Log, history: FeatureHistory, features: Sequence[Feature],
                    entities: Sequence[str | int | None]
                    | Mapping[str, Sequence[str | int | None]],
                    times: Sequence[int], *, mode: Mode = "known_at") -> pa.Table:
    """One row per (entity, time): each feature as known at (or as of) that time, as a
    whole replay of the log computes it (see the module docstring). ``entities``: the
    keys of every feature, or a mapping of entity name to keys when the features
    describe several entities."""
    out: dict[str, pa.Array] = {}
    for (topic, entity), group in _by_entity(features).items():
        keys_of = entities.get(entity) if isinstance(entities, Mapping) else entities
        if keys_of is None:
            raise ValidationError(f"entities.{entity}", "no keys given for the entity of "
                                  f"{', '.join(f.name for f in group)}")
        if history_gap(history, topic, group) is not None:
            texts = [None if e is None else str(e) for e in keys_of]
            frame = replayed_values(log, group, {entity: texts}, times, mode=mode)
        else:
            info = log.topic(topic)
            key = key_column(group[0])
            typed = pa.array(list(keys_of)).cast(info.schema.arrow_schema().field(key).type)
            keys = entity_array(typed, history.schema(topic).field(ENTITY).type)
            through, tail = _tail(log, history, topic, group, pc.unique(keys))
            frame = history.values_at(group, topic, Queries(keys, np.asarray(times, np.int64)),
                                      mode=mode, through=through, more=tail)
        out.update({name: frame.column(name).combine_chunks() for name in frame.schema.names})
    return pa.table(out)
