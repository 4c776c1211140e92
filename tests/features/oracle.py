"""The brute-force oracle: feature values by the letter of docs/design/features.md.

Plain Python over plain lists, one query at a time, written for clarity, never for speed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import pyarrow as pa

from headwater.features.aggregations import make
from headwater.features.definitions import Feature
from headwater.features.pointintime import Mode
from headwater.features.windows import Lifetime
from headwater.log.partitioner import murmur2


@dataclass(frozen=True)
class Event:
    entity: str
    time: int
    append_time: int
    offset: int
    value: float | str | None


def present(value: float | str | None) -> bool:
    """A value there to aggregate: not null, NaN or infinite (text always is)."""
    return isinstance(value, str) or (value is not None and math.isfinite(value))


def tile(feature: Feature, t: int) -> int:
    if isinstance(feature.window, Lifetime):
        return 0  # one tile for all of time
    return t // feature.window.hop_us


def oracle(feature: Feature, events: list[Event], entity: str, t: int, mode: Mode
           ) -> float | str | list[float] | None:
    """The value by the rules; where they give none, the feature's default (rule 3)."""
    value = by_the_rules(feature, events, entity, t, mode)
    return feature.default_value if value is None else value


def by_the_rules(feature: Feature, events: list[Event], entity: str, t: int, mode: Mode
                 ) -> float | str | list[float] | None:
    """Rules 1 and 2: ``None`` for a missing value."""
    known = [e for e in events if e.entity == entity
             and (e.time <= t if mode == "event_time" else e.append_time <= t)]
    if not known:
        return None
    last = max(e.time for e in known)
    if feature.ttl_us is not None and t - last > feature.ttl_us:
        return None
    now = tile(feature, t)
    window = sorted((e for e in known if now - feature.window.tiles < tile(feature, e.time) <= now),
                    key=lambda e: (e.time, e.offset))
    kind = feature.aggregation
    if kind == "count":  # counts events, whatever their values
        return float(len(window))
    values = [e.value for e in window if present(e.value)]  # a missing value moves nothing
    if kind == "approx_distinct" and any(isinstance(v, str) for v in values):
        texts = pa.array(values, pa.string())
        values = [float(h) for h in murmur2(texts)]  # text is counted by its hash
    if kind == "approx_distinct" and not values:
        return 0.0
    if kind == "last":
        return values[-1] if values else None
    numbers = [float(v) for v in values if isinstance(v, float | int)]
    assert len(numbers) == len(values), "only last and approx_distinct read text"
    if kind == "sum":
        return float(sum(numbers))
    if kind == "last_n":
        assert feature.n is not None
        return list(reversed(numbers))[: feature.n]
    if not numbers:
        return None
    if kind == "mean":
        return sum(numbers) / len(numbers)
    if kind == "min":
        return min(numbers)
    if kind == "max":
        return max(numbers)
    if kind == "var":
        return statistics.pvariance(numbers)
    if kind == "std":
        return math.sqrt(statistics.pvariance(numbers))
    if kind == "approx_distinct":
        # HyperLogLog is order-free: the oracle folds the same sketch one event at a time.
        agg = make(kind)
        import numpy as np

        partial = agg.empty(1)
        for v in numbers:
            lifted = agg.lift(np.array([v]), np.array([0]), np.array([0]))
            partial = agg.combine(partial, lifted)
        return float(agg.finalize(partial)[0])
    raise AssertionError(kind)
