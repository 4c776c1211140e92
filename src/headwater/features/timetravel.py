"""Time travel: feature values as they were known at any past moment, from the log.

The log is the source of truth, so the online view of an entity at a past time ``T`` is
recomputed, not stored: replay the source topic, drop the late events by the engine's
own rule (:func:`~headwater.features.task.late_events`), and evaluate the features as
known at ``T`` (:mod:`headwater.features.pointintime`). The result is what the online
store answered at ``T``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

import numpy as np
import pyarrow as pa

from headwater.errors import ValidationError
from headwater.features.definitions import Feature, key_column
from headwater.features.pointintime import I64, Mode, Queries, Sources, point_in_time
from headwater.features.state import NO_TIME
from headwater.features.task import late_events, log_order
from headwater.log import OFFSET, Log

__all__ = ["LOG_ORDER", "Keys", "applied_events", "values_at_times"]

LOG_ORDER: Final = "_log_order"
"""The column of :func:`applied_events` that orders events across partitions."""

#: Entity keys, one per row: a sequence of values or an Arrow array.
Keys: TypeAlias = Sequence[str | int | None] | pa.Array | pa.ChunkedArray


def applied_events(log: Log, topic: str, lateness: int) -> pa.Table:
    """Every event of ``topic`` the engine applies (the late ones left out), with its
    position in the log across partitions (:data:`LOG_ORDER`,
    :func:`~headwater.features.task.log_order`)."""
    kept: list[pa.Table] = []
    info = log.topic(topic)
    schema = info.schema.stored_schema()
    for partition in range(info.partitions):
        watermark = NO_TIME
        for fetched in log.replay(topic, [partition]):
            times = np.asarray(fetched.batch.column(info.schema.event_time).cast(pa.int64()))
            late, watermark = late_events(times, watermark, lateness)
            batch = fetched.batch.filter(pa.array(~late)) if late.any() else fetched.batch
            order = log_order(partition, np.asarray(batch.column(OFFSET), np.int64))
            kept.append(pa.Table.from_batches([batch], schema).append_column(
                LOG_ORDER, pa.array(order, pa.int64())))
    if not kept:
        return schema.empty_table().append_column(LOG_ORDER, pa.array([], pa.int64()))
    return pa.concat_tables(kept)


def values_at_times(log: Log, features: Sequence[Feature],
                    entities: Keys | Mapping[str, Keys], times: Sequence[int] | I64, *,
                    mode: Mode = "known_at") -> pa.Table:
    """One row per (entity, time): each feature as known at (or as of) that time.

    ``entities`` holds one key per row: the same keys for every feature, or a mapping
    of entity name to keys when the features describe several entities. Keys are read
    as the type of the column each feature is keyed by
    (:func:`~headwater.features.definitions.key_column`); a key that cannot be is an
    error naming the entity.
    """
    at = np.asarray(times, dtype=np.int64)
    out: dict[str, pa.Array] = {}
    groups: dict[tuple[str, str], list[Feature]] = {}
    for f in features:
        groups.setdefault((f.source.topic, f.entity.name), []).append(f)
    applied: dict[str, pa.Table] = {}
    for (topic, entity), group in groups.items():
        info = log.topic(topic)
        if topic not in applied:
            applied[topic] = applied_events(log, topic, group[0].source.allowed_lateness_us)
        key = key_column(group[0])
        rows = entities.get(entity) if isinstance(entities, Mapping) else entities
        if rows is None:
            raise ValidationError(f"entities.{entity}", f"no keys given for the entity of "
                                  f"{', '.join(f.name for f in group)}")
        keys = _keys(rows, info.schema.arrow_schema().field(key).type, entity)
        if len(keys) != len(at):
            raise ValidationError(f"entities.{entity}", f"{len(keys)} keys but {len(at)} times")
        frame = point_in_time(group, Sources(applied[topic], key, info.schema.event_time,
                                             offset=LOG_ORDER),
                              Queries(keys, at), mode=mode)
        out.update({name: frame.column(name).combine_chunks() for name in frame.schema.names})
    return pa.table({f.name: out[f.name] for f in features})


def _keys(rows: Keys, key_type: pa.DataType, entity: str) -> pa.Array:
    array = rows if isinstance(rows, pa.Array | pa.ChunkedArray) else pa.array(list(rows))
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if len(array) and pa.types.is_floating(array.type) and not pa.types.is_floating(key_type):
        # 42.0 would become "42.0" and match nothing: a silent miss, so refuse it
        raise ValidationError(f"entities.{entity}", f"keys of type {array.type} for the "
                              f"topic's {key_type} key: give them as int or str")
    try:
        return array.cast(key_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValidationError(f"entities.{entity}", f"keys of type {array.type} cannot be read "
                              f"as the topic's {key_type} key: {exc}") from exc
