"""The brute-force oracle: feature values by the letter of docs/design/features.md.

Plain Python over plain lists, one query at a time, written for clarity, never for speed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from headwater.features.aggregations import make
from headwater.features.definitions import Feature
from headwater.features.pointintime import Mode
from headwater.features.windows import Lifetime


@dataclass(frozen=True)
class Event:
    entity: str
    time: int
    append_time: int
    offset: int
    value: float


def tile(feature: Feature, t: int) -> int:
    if isinstance(feature.window, Lifetime):
        return 0  # one tile for all of time
    return t // feature.window.hop_us


def oracle(feature: Feature, events: list[Event], entity: str, t: int, mode: Mode
           ) -> float | list[float] | None:
    """The value by the rules; where they give none, the feature's default (rule 3)."""
    value = by_the_rules(feature, events, entity, t, mode)
    return feature.default_value if value is None else value


def by_the_rules(feature: Feature, events: list[Event], entity: str, t: int, mode: Mode
                 ) -> float | list[float] | None:
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
    values = [e.value for e in window]
    kind = feature.aggregation
    if kind == "count":
        return float(len(values))
    if kind == "approx_distinct" and not values:
        return 0.0
    if kind == "sum":
        return float(sum(values))
    if kind == "last_n":
        assert feature.n is not None
        return list(reversed(values))[: feature.n]
    if not values:
        return None
    if kind == "mean":
        return sum(values) / len(values)
    if kind == "min":
        return min(values)
    if kind == "max":
        return max(values)
    if kind == "last":
        return values[-1]
    if kind == "var":
        return statistics.pvariance(values)
    if kind == "std":
        return math.sqrt(statistics.pvariance(values))
    if kind == "approx_distinct":
        # HyperLogLog is order-free: the oracle folds the same sketch one event at a time.
        agg = make(kind)
        import numpy as np

        partial = agg.empty(1)
        for v in values:
            lifted = agg.lift(np.array([v]), np.array([0]), np.array([0]))
            partial = agg.combine(partial, lifted)
        return float(agg.finalize(partial)[0])
    raise AssertionError(kind)
