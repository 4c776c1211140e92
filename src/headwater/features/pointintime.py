"""Point-in-time evaluation: each feature as of a moment, for many (entity, time) rows.

Given the events of a source (the feature history: every applied event with its event
time, append time and offset) and query rows (entity, time), it returns exactly one
value per query row, in the query's order, duplicates kept, missing values as null. The
rules are those of ``docs/design/features.md``, in two modes:

- ``"event_time"``: events with event time ``<= t``: training data without leakage;
- ``"known_at"``: events appended by ``t``: exactly what serving could see at ``t``.

How: events are sorted by (entity, tile, order key), so the events of one entity in one
tile known by ``t`` are one contiguous range. A query's window is at most ``n`` such
ranges; their rows are gathered, put in ``(time, offset)`` order and reduced with the
feature's aggregation, the same monoid the live engine folds events into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ValidationError
from headwater.features.definitions import DerivedFeature, Feature
from headwater.log.schema import APPEND_TIME, OFFSET

__all__ = ["Mode", "Queries", "Sources", "feature_values", "point_in_time", "with_derived"]

Mode = Literal["event_time", "known_at"]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Queries:
    """The rows to evaluate: entity keys and times (µs)."""

    entities: pa.Array
    times: I64


@dataclass(frozen=True)
class Sources:
    """The history of one source: its events with entity key, event time, append time
    and offset columns (the log's ``_append_time`` and ``_offset`` by default)."""

    events: pa.Table
    entity: str
    event_time: str
    append_time: str = APPEND_TIME
    offset: str = OFFSET


def point_in_time(
    features: list[Feature], source: Sources, queries: Queries, *, mode: Mode = "event_time"
) -> pa.Table:
    """One column per feature, one row per query row."""
    columns = {f.name: feature_values(f, source, queries, mode=mode) for f in features}
    return pa.table(columns)


def with_derived(derived: list[DerivedFeature], frame: pa.Table) -> pa.Table:
    """Add derived features to a training frame, with the function serving runs: numeric
    columns as float64 (null as NaN), others as objects."""
    columns: dict[str, npt.NDArray[Any]] = {}
    for name in frame.schema.names:
        column = frame.column(name)
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            columns[name] = np.asarray(pc.cast(column, pa.float64()).fill_null(np.nan))
        else:
            columns[name] = np.asarray(column.to_pylist(), dtype=object)
    for f in derived:
        result = f.compute(columns)
        columns[f.name] = result
        mask = np.isnan(result) if result.dtype.kind == "f" else None
        frame = frame.append_column(f.name, pa.array(result, mask=mask))
    return frame


def _int64(column: pa.ChunkedArray | pa.Array) -> I64:
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
    return np.asarray(column, dtype=np.int64)


def _dense_rank(*arrays: I64) -> list[I64]:
    """Ranks preserving order, shared by all arrays (ties get one rank)."""
    _, inverse = np.unique(np.concatenate(arrays), return_inverse=True)
    out, at = [], 0
    for a in arrays:
        out.append(inverse[at: at + len(a)].astype(np.int64))
        at += len(a)
    return out


def feature_values(
    feature: Feature, source: Sources, queries: Queries, *, mode: Mode = "event_time"
) -> pa.Array:
    """The feature's value for each query row (see the module docstring)."""
    if mode not in ("event_time", "known_at"):
        raise ValidationError("mode", f"expected 'event_time' or 'known_at', got {mode!r}")
    events = source.events
    if feature.where is not None:
        events = events.filter(pa.array(feature.where.mask(events)))
    agg = feature.aggregator
    window = feature.window
    n_tiles = window.tiles
    q_count = len(queries.times)
    q_times = queries.times.astype(np.int64)

    keys = pc.unique(events.column(source.entity).combine_chunks()) if events.num_rows else (
        pa.array([], events.schema.field(source.entity).type))
    e_code = _int64(pc.index_in(events.column(source.entity), value_set=keys))
    q_code = np.asarray(pc.fill_null(pc.index_in(queries.entities, value_set=keys), -1),
                        dtype=np.int64)
    tau = _int64(events.column(source.event_time))
    alpha = _int64(events.column(source.append_time))
    offset = _int64(events.column(source.offset))
    if feature.column is not None:
        values = np.asarray(pc.cast(events.column(feature.column), pa.float64()), np.float64)
    else:
        values = np.zeros(len(tau))
    order_time = tau if mode == "event_time" else alpha
    tile = window.tile_of(tau)
    q_tile = window.tile_of(q_times)

    # Rows sorted by (entity, tile, order time, offset); runs of equal (entity, tile).
    order = np.lexsort((offset, order_time, tile, e_code))
    s_code, s_tile, s_time = e_code[order], tile[order], order_time[order]
    all_tiles = _dense_rank(s_tile, *[q_tile - k for k in range(n_tiles)])
    s_tile_rank, window_ranks = all_tiles[0], all_tiles[1:]
    tile_span = int(max((r.max(initial=0) for r in all_tiles), default=0)) + 1
    run = s_code * tile_span + s_tile_rank  # sorted, since rows are sorted by (code, tile)
    time_rank, q_time_rank = _dense_rank(s_time, q_times)
    time_span = int(max(time_rank.max(initial=0), q_time_rank.max(initial=0))) + 1
    composite = run * time_span + time_rank

    starts: list[I64] = []
    stops: list[I64] = []
    for k in range(n_tiles):
        q_run = q_code * tile_span + window_ranks[k]
        start = np.searchsorted(run, q_run, side="left")
        if mode == "event_time" and k > 0:
            stop = np.searchsorted(run, q_run, side="right")  # earlier tiles: all of them
        else:
            stop = np.searchsorted(composite, q_run * time_span + q_time_rank, side="right")
        known = q_code >= 0
        starts.append(np.where(known, start, 0))
        stops.append(np.where(known, np.maximum(stop, start), 0))
    start_all = np.stack(starts, axis=1).ravel()
    length = np.stack(stops, axis=1).ravel() - start_all
    query_of = np.repeat(np.arange(q_count), n_tiles)
    total = int(length.sum())
    rows = np.repeat(start_all - np.cumsum(length) + length, length) + np.arange(total)
    owner = np.repeat(query_of, length)
    picked = order[rows]
    again = np.lexsort((offset[picked], tau[picked], owner))
    picked, owner = picked[again], owner[again]
    lifted = agg.lift(values[picked], tau[picked], offset[picked])
    bounds = np.flatnonzero(np.diff(owner, prepend=-1)) if total else np.zeros(0, np.int64)
    reduced = agg.reduce(lifted, bounds)
    result = agg.empty(q_count)
    hit = owner[bounds] if total else np.zeros(0, np.int64)
    for name, column in reduced.items():
        result[name][hit] = column
    out = agg.finalize(result)
    empty_window = result["n"] == 0
    if out.ndim == 1:
        out = np.where(empty_window, agg.empty_value, out)

    last = _last_event_time(e_code, tau, order_time, q_code, q_times)
    missing = last == _NONE
    if feature.ttl_us is not None:
        missing |= q_times - last > feature.ttl_us
    if out.ndim == 2:
        values_out = [None if m else [v for v in row if not np.isnan(v)]
                      for m, row in zip(missing.tolist(), out.tolist(), strict=True)]
        return pa.array(values_out, pa.list_(pa.float64()))
    return pa.array(out, pa.float64(), mask=missing | np.isnan(out))


_NONE = np.iinfo(np.int64).min


def _last_event_time(e_code: I64, tau: I64, order_time: I64, q_code: I64, q_times: I64) -> I64:
    """Per query, the latest event time among the entity's events ordered by ``order_time``
    up to the query time (``_NONE`` when there are none)."""
    if not len(e_code):
        return np.full(len(q_code), _NONE, dtype=np.int64)
    order = np.lexsort((order_time, e_code))
    code, bound, latest = e_code[order], order_time[order], tau[order]
    # The running maximum of event time within each entity (they are contiguous).
    starts = np.flatnonzero(np.diff(code, prepend=-1))
    running = np.empty_like(latest)
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(code)], strict=True):
        running[a:b] = np.maximum.accumulate(latest[a:b])
    rank_bound, rank_q = _dense_rank(bound, q_times)
    span = int(max(rank_bound.max(initial=0), rank_q.max(initial=0))) + 1
    composite = code * span + rank_bound
    pos = np.searchsorted(composite, q_code * span + rank_q, side="right") - 1
    ok = (pos >= 0) & (q_code >= 0)
    pos = np.where(ok, pos, 0)
    ok &= code[pos] == q_code
    return np.where(ok, running[pos], _NONE)
