"""Point-in-time evaluation: each feature as of a moment, for many (entity, time) rows.

Given the events of a source (the feature history: every applied event with its event
time, append time and offset) and query rows (entity, time), it returns exactly one
value per query row, in the query's order, duplicates kept; where the entity has no
value, the feature's default (:attr:`~headwater.features.Feature.default_value`, null
when it has none). The rules are those of ``docs/design/features.md``, in two modes:

- ``"event_time"``: events with event time ``<= t``: training data without leakage;
- ``"known_at"``: events appended by ``t``: exactly what serving could see at ``t``.

How, as of event time: events are sorted by (entity, time, offset). A tile is a range of
times, so a query's window (its ``n`` tiles up to ``t``) is one contiguous range of that
order, found by two binary searches; ``count`` and ``last`` read its length and its last
row, ``sum``, ``mean``, ``min`` and ``max`` reduce it in place (``ufunc.reduceat``), and the
other aggregations gather its rows, already in ``(time, offset)`` order.

As known at ``t``: events are sorted by (entity, tile, append time, offset), so the events
of one entity in one tile known by ``t`` are one contiguous range; a query's window is at
most ``n`` such ranges, whose rows are gathered, put in ``(time, offset)`` order where the
aggregation depends on order, and reduced. Either way the reduction is the feature's
aggregation, the same monoid the live engine folds events into.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ValidationError
from headwater.features.aggregations import Aggregation, Partial
from headwater.features.definitions import DerivedFeature, Feature, FeatureSet
from headwater.features.values import TextCodes, column_values, is_text, present
from headwater.features.windows import Lifetime
from headwater.log.schema import APPEND_TIME, OFFSET

__all__ = ["Mode", "Queries", "Sources", "feature_values", "model_inputs", "point_in_time",
           "with_derived"]

Mode = Literal["event_time", "known_at"]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
_NONE: Final = np.iinfo(np.int64).min
_KEY_LIMIT: Final = 1 << 62  # composite keys stay below this
_RANGE_UFUNCS: Final = {"sum": np.add, "mean": np.add, "min": np.minimum, "max": np.maximum}
_ORDER_FREE: Final = ("count", "min", "max", "approx_distinct")  # no need to sort rows


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


def model_inputs(feature_set: FeatureSet, frame: pa.Table) -> pa.Table:
    """The model's inputs offline, as serving builds them
    (:class:`~headwater.features.online.FeatureReader`): ``frame`` holds the set's
    features (from :func:`point_in_time`) and any request values; the derived features
    are added and the set's helpers left out."""
    derived = [f for f in feature_set.features if isinstance(f, DerivedFeature)]
    frame = with_derived(derived, frame)
    return frame.drop_columns(list(feature_set.helpers)) if feature_set.helpers else frame


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


def _pair_keys(codes: I64, times: I64, n_codes: int, q_codes: I64,
               q_times: list[I64]) -> tuple[I64, list[I64], I64]:
    """(entity code, time) pairs as int64 keys that sort like the pairs: the rows' keys,
    the keys of each array of query times (query codes ``>= 0``), and each query entity's
    smallest key. ``code * width + time - low + 1`` with query times clipped to the
    entity's slot when that cannot overflow, else dense ranks of the times."""
    low, high = (int(times.min()), int(times.max())) if len(times) else (0, 0)
    width = high - low + 3
    if (n_codes + 1) * width < _KEY_LIMIT:
        needles = [q_codes * width + np.clip(t - low + 1, 0, width - 1) for t in q_times]
        return codes * width + (times - low + 1), needles, q_codes * width
    ranks = _dense_rank(times, *q_times)
    width = int(max(r.max(initial=0) for r in ranks)) + 3
    needles = [q_codes * width + r + 1 for r in ranks[1:]]
    return codes * width + ranks[0] + 1, needles, q_codes * width


def _sort_rows(keys: I64, offset: I64) -> tuple[I64, I64]:
    """The order of rows by (key, offset) and the sorted keys: an argsort of the keys,
    then the (rare) runs of equal keys put in offset order."""
    order = np.argsort(keys)
    ordered = keys[order]
    tie = np.flatnonzero(ordered[1:] == ordered[:-1])
    if len(tie):
        at = np.unique(np.concatenate([tie, tie + 1]))
        rows = order[at]
        order[at] = rows[np.lexsort((offset[rows], keys[rows]))]
    return order, ordered


def _reduce_ranges(agg: Aggregation, order: I64, values: F64, tau: I64, offset: I64,
                   lo: I64, hi: I64) -> Partial:
    """For each ``i``, the partial of sorted rows ``lo[i]:hi[i]`` (sorted row ``j`` is row
    ``order[j]``), gathering only what the aggregation needs."""
    n = hi - lo
    if agg.kind == "count":
        return {"n": n}
    # A missing value moves nothing (see values.py): ``n`` counts the values present.
    sorted_present = present(values[order])
    counted = np.concatenate([[0], np.cumsum(sorted_present)])
    if agg.kind in _RANGE_UFUNCS:
        identity = agg.empty(len(lo))
        name = "sum" if agg.kind in ("sum", "mean") else "v"
        neutral = float(agg.empty(1)[name][0])
        # reduceat over (lo, hi) pairs in ascending lo walks O(rows) between the pairs
        by_lo = np.argsort(lo, kind="stable")
        pairs = np.stack([lo[by_lo], hi[by_lo]], axis=1).ravel()
        reduced = np.empty(len(lo))
        if len(pairs):
            filled = np.where(sorted_present, values[order], neutral)
            reduced[by_lo] = _RANGE_UFUNCS[agg.kind].reduceat(np.append(filled, 0.0),
                                                              pairs)[::2]
        n = counted[hi] - counted[lo]
        return {"n": n, name: np.where(n > 0, reduced, identity[name])}
    if agg.kind == "last":
        # the latest present row at or before each sorted row
        latest = np.maximum.accumulate(np.where(sorted_present, np.arange(len(order)), -1))
        at = latest[np.maximum(hi - 1, 0)] if len(order) else np.full(len(lo), -1)
        has = (hi > lo) & (at >= lo)
        end = order[np.maximum(at, 0)] if len(order) else np.zeros(len(lo), np.int64)
        empty = agg.empty(len(lo))
        return {"n": counted[hi] - counted[lo], "t": np.where(has, tau[end], empty["t"]),
                "o": np.where(has, offset[end], empty["o"]),
                "v": np.where(has, values[end], empty["v"])}
    total = int(n.sum())
    rows = order[np.repeat(lo - np.cumsum(n) + n, n) + np.arange(total)]
    owner = np.repeat(np.arange(len(lo)), n)
    return _reduce_rows(agg, values, tau, offset, rows, owner, len(lo))


def _reduce_rows(agg: Aggregation, values: F64, tau: I64, offset: I64, rows: I64,
                 owner: I64, size: int) -> Partial:
    """The partial of each owner's rows (grouped by owner, in (time, offset) order)."""
    if agg.kind != "count":  # a missing value moves nothing (see values.py)
        kept = present(values[rows])
        if not kept.all():
            rows, owner = rows[kept], owner[kept]
    total = len(rows)
    lifted = agg.lift(values[rows], tau[rows], offset[rows])
    bounds = np.flatnonzero(np.diff(owner, prepend=-1)) if total else np.zeros(0, np.int64)
    reduced = agg.reduce(lifted, bounds)
    result = agg.empty(size)
    hit = owner[bounds] if total else np.zeros(0, np.int64)
    for name, column in reduced.items():
        result[name][hit] = column
    return result


def feature_values(
    feature: Feature, source: Sources, queries: Queries, *, mode: Mode = "event_time"
) -> pa.Array:
    """The feature's value for each query row (see the module docstring)."""
    if mode not in ("event_time", "known_at"):
        raise ValidationError("mode", f"expected 'event_time' or 'known_at', got {mode!r}")
    events = source.events
    if events.column(source.entity).null_count:  # an event without the entity has none
        events = events.filter(pc.is_valid(events.column(source.entity)))
    if feature.where is not None:
        events = events.filter(pa.array(feature.where.mask(events)))
    agg = feature.aggregator
    q_times = queries.times.astype(np.int64)

    keys = pc.unique(events.column(source.entity).combine_chunks()) if events.num_rows else (
        pa.array([], events.schema.field(source.entity).type))
    e_code = _int64(pc.index_in(events.column(source.entity), value_set=keys))
    q_code = np.asarray(pc.fill_null(pc.index_in(queries.entities, value_set=keys), -1),
                        dtype=np.int64)
    tau = _int64(events.column(source.event_time))
    offset = _int64(events.column(source.offset))
    column = None if feature.column is None else events.column(feature.column)
    codes = TextCodes() if (column is not None and agg.kind == "last"
                            and is_text(column.type)) else None
    values = column_values(agg.kind, column, len(tau), codes)
    if mode == "event_time":
        result, last = _as_of_event_time(feature, agg, e_code, len(keys), tau, offset, values,
                                         q_code, q_times)
    else:
        alpha = _int64(events.column(source.append_time))
        result, last = _as_known_at(feature, agg, e_code, len(keys), tau, alpha, offset,
                                    values, q_code, q_times)
    out = agg.finalize(result)
    if out.ndim == 1:
        out = np.where(result["n"] == 0, agg.empty_value, out)
    missing = last == _NONE
    if feature.ttl_us is not None:
        missing |= q_times - last > feature.ttl_us
    if out.ndim == 2:
        values_out = [None if m else [v for v in row if not np.isnan(v)]
                      for m, row in zip(missing.tolist(), out.tolist(), strict=True)]
        return pa.array(values_out, pa.list_(pa.float64()))
    if codes is not None:  # text has no default (see values.check_feature)
        texts = codes.decode(out)
        return pa.array([None if m else t for m, t in zip(missing.tolist(), texts, strict=True)],
                        pa.string())
    missing |= np.isnan(out)
    default = feature.default_value
    if default is None:
        return pa.array(out, pa.float64(), mask=missing)
    return pa.array(np.where(missing, default, out), pa.float64())


def _as_of_event_time(feature: Feature, agg: Aggregation, e_code: I64, n_codes: int, tau: I64,
                      offset: I64, values: F64, q_code: I64, q_times: I64
                      ) -> tuple[Partial, I64]:
    """Each query's partial and the latest event time up to it (``_NONE``: no event)."""
    if not len(tau):
        return agg.empty(len(q_times)), np.full(len(q_times), _NONE, np.int64)
    window = feature.window
    known = q_code >= 0
    code = np.where(known, q_code, 0)
    bounds = [q_times]
    if not isinstance(window, Lifetime):  # the first time of the window's oldest tile
        bounds.append((window.tile_of(q_times) - window.tiles + 1) * window.hop_us)
    rows, needles, entity_first = _pair_keys(e_code, tau, n_codes, code, bounds)
    order, ordered = _sort_rows(rows, offset)
    # Ascending needles make searchsorted an order of magnitude faster; this one order
    # sorts all three (entity start, window start, window end).
    by_key = np.argsort(needles[0])
    first, hi, lo = (np.empty(len(q_times), np.int64) for _ in range(3))
    first[by_key] = np.searchsorted(ordered, entity_first[by_key], side="left")
    hi[by_key] = np.searchsorted(ordered, needles[0][by_key], side="right")
    if len(needles) > 1:
        lo[by_key] = np.searchsorted(ordered, needles[1][by_key], side="left")
    else:
        lo[:] = first
    lo = np.where(known, lo, 0)
    hi = np.where(known, np.maximum(hi, lo), 0)
    seen = known & (hi > first)  # the entity has an event at or before t
    last = np.where(seen, tau[order[np.maximum(hi - 1, 0)]], _NONE)
    return _reduce_ranges(agg, order, values, tau, offset, lo, hi), last


def _as_known_at(feature: Feature, agg: Aggregation, e_code: I64, n_codes: int, tau: I64,
                 alpha: I64, offset: I64, values: F64, q_code: I64, q_times: I64
                 ) -> tuple[Partial, I64]:
    """Each query's partial and the latest event time known at it (``_NONE``: none)."""
    window = feature.window
    n_tiles, q_count = window.tiles, len(q_times)
    tile = window.tile_of(tau)
    q_tile = window.tile_of(q_times)

    # Rows sorted by (entity, tile, append time, offset); runs of equal (entity, tile).
    order = np.lexsort((offset, alpha, tile, e_code))
    s_code, s_tile, s_time = e_code[order], tile[order], alpha[order]
    all_tiles = _dense_rank(s_tile, *[q_tile - k for k in range(n_tiles)])
    s_tile_rank, window_ranks = all_tiles[0], all_tiles[1:]
    tile_span = int(max((r.max(initial=0) for r in all_tiles), default=0)) + 1
    run = s_code * tile_span + s_tile_rank  # sorted, since rows are sorted by (code, tile)
    time_rank, q_time_rank = _dense_rank(s_time, q_times)
    time_span = int(max(time_rank.max(initial=0), q_time_rank.max(initial=0))) + 1
    composite = run * time_span + time_rank

    known = q_code >= 0
    by_key = np.argsort((q_code * tile_span + window_ranks[0]) * time_span + q_time_rank)
    starts: list[I64] = []
    stops: list[I64] = []
    for k in range(n_tiles):
        q_run = (q_code * tile_span + window_ranks[k])[by_key]
        start, stop = np.empty(q_count, np.int64), np.empty(q_count, np.int64)
        start[by_key] = np.searchsorted(run, q_run, side="left")
        stop[by_key] = np.searchsorted(composite, q_run * time_span + q_time_rank[by_key],
                                       side="right")
        starts.append(np.where(known, start, 0))
        stops.append(np.where(known, np.maximum(stop, start), 0))
    start_all = np.stack(starts, axis=1).ravel()
    length = np.stack(stops, axis=1).ravel() - start_all
    query_of = np.repeat(np.arange(q_count), n_tiles)
    total = int(length.sum())
    rows = np.repeat(start_all - np.cumsum(length) + length, length) + np.arange(total)
    owner = np.repeat(query_of, length)
    picked = order[rows]
    if agg.kind not in _ORDER_FREE:
        again = np.lexsort((offset[picked], tau[picked], owner))
        picked, owner = picked[again], owner[again]
    result = _reduce_rows(agg, values, tau, offset, picked, owner, q_count)
    return result, _last_event_time(e_code, n_codes, tau, alpha, q_code, q_times)


def _last_event_time(e_code: I64, n_codes: int, tau: I64, order_time: I64, q_code: I64,
                     q_times: I64) -> I64:
    """Per query, the latest event time among the entity's events ordered by ``order_time``
    up to the query time (``_NONE`` when there are none)."""
    if not len(e_code):
        return np.full(len(q_code), _NONE, dtype=np.int64)
    known = q_code >= 0
    rows, (needle,), _ = _pair_keys(e_code, order_time, n_codes, np.where(known, q_code, 0),
                                    [q_times])
    order = np.argsort(rows, kind="stable")
    ordered, code, latest = rows[order], e_code[order], tau[order]
    # The running maximum of event time within each entity (they are contiguous): one
    # accumulate over code * span + time, which only grows from one entity to the next.
    low = int(tau.min())
    span = int(tau.max()) - low + 1
    if (n_codes + 1) * span < _KEY_LIMIT:
        shift = code * span
        running = np.maximum.accumulate(shift + (latest - low)) - shift + low
    else:
        running = np.empty_like(latest)
        starts = np.flatnonzero(np.diff(code, prepend=-1))
        for a, b in zip(starts.tolist(), [*starts[1:].tolist(), len(code)], strict=True):
            running[a:b] = np.maximum.accumulate(latest[a:b])
    by_key = np.argsort(needle)
    pos = np.empty(len(needle), np.int64)
    pos[by_key] = np.searchsorted(ordered, needle[by_key], side="right") - 1
    ok = (pos >= 0) & known
    pos = np.where(ok, pos, 0)
    ok &= code[pos] == q_code
    return np.where(ok, running[pos], _NONE)
