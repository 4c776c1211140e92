"""Time travel: feature values as they were known at any past moment, from the log.

The log is the source of truth, so the online view of an entity at a past time ``T`` is
recomputed, not stored: replay the source topic, drop the late events by the engine's
own rule (:func:`~headwater.features.task.late_events`), and evaluate the features as
known at ``T`` (:mod:`headwater.features.pointintime`). The result is what the online
store answered at ``T``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from headwater.features.definitions import Feature
from headwater.features.pointintime import Mode, Queries, Sources, point_in_time
from headwater.features.state import NO_TIME
from headwater.features.task import late_events
from headwater.log import Log

__all__ = ["applied_events", "values_at_times"]


def applied_events(log: Log, topic: str, lateness: int) -> pa.Table:
    """Every event of ``topic`` the engine applies (the late ones left out)."""
    kept: list[pa.RecordBatch] = []
    info = log.topic(topic)
    for partition in range(info.partitions):
        watermark = NO_TIME
        for fetched in log.replay(topic, [partition]):
            times = np.asarray(fetched.batch.column(info.schema.event_time).cast(pa.int64()))
            late, watermark = late_events(times, watermark, lateness)
            kept.append(fetched.batch.filter(pa.array(~late)) if late.any() else fetched.batch)
    return pa.Table.from_batches(kept, info.schema.stored_schema())


def values_at_times(log: Log, features: Sequence[Feature], entities: Sequence[str],
                    times: Sequence[int], *, mode: Mode = "known_at") -> pa.Table:
    """One row per (entity, time): each feature as known at (or as of) that time."""
    out: dict[str, pa.Array] = {}
    by_topic: dict[str, list[Feature]] = {}
    for f in features:
        by_topic.setdefault(f.source.topic, []).append(f)
    for topic, group in by_topic.items():
        info = log.topic(topic)
        events = applied_events(log, topic, group[0].source.allowed_lateness_us)
        key = group[0].source.entity_key or info.schema.key
        assert key is not None
        keys = pa.array(list(entities)).cast(info.schema.arrow_schema().field(key).type)
        frame = point_in_time(group, Sources(events, key, info.schema.event_time),
                              Queries(keys, np.asarray(times, np.int64)), mode=mode)
        out.update({name: frame.column(name).combine_chunks() for name in frame.schema.names})
    return pa.table(out)
