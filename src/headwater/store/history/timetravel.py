"""Time travel: the part of a source's history a point-in-time query needs.

To evaluate features at query times ``T`` by the rules of ``docs/design/features.md``, the
join needs, for each feature:

- the events in each query's window: event times from the start of the window's oldest
  tile (a lifetime window: all of them);
- with a TTL, whether the entity's latest event is within the TTL of the query: event
  times from ``min(T) - TTL`` on (for ``last`` over a lifetime window, that is all it
  needs: the latest event decides both the value and the TTL);
- without a TTL, whether the entity has any event at all, since an empty window of a
  known entity is ``0`` for ``count`` but null for an unknown one: the whole past.

The scan starts at the earliest of these. As of event time it ends after ``max(T)``; as
known at ``T``, an event counts once appended whatever its event time (a producer clock
running ahead), so the scan keeps every event time and filters by append time instead.

>>> import numpy as np
>>> from headwater.features.definitions import Entity, Feature, StreamSource
>>> from headwater.features.windows import Lifetime, Sliding
>>> user, payments = Entity("user", key="user"), StreamSource.of("payments")
>>> spend = Feature.of("spend", user, payments, "sum", column="amount",
...                    window=Sliding(100, 10), ttl=30)
>>> needed_rows([spend], np.array([1000, 2000]), "event_time")
Filters(start=910, end=2001, appended_by=None, entities=None, through=None)
>>> latest = Feature.of("latest", user, payments, "last", column="amount", ttl=30)
>>> needed_rows([latest], np.array([1000, 2000]), "known_at")
Filters(start=970, end=None, appended_by=2000, entities=None, through=None)
>>> count = Feature.of("n", user, payments, "count")
>>> needed_rows([count], np.array([5]), "event_time").start is None  # no TTL: the whole past
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.features.definitions import Feature, StreamSource
from headwater.features.pointintime import Mode
from headwater.features.windows import Lifetime
from headwater.store.history.scan import Filters

__all__ = ["check_features", "needed_columns", "needed_rows"]


def check_features(features: Sequence[Feature], source: str) -> None:
    """Every feature is computed from the stream ``source``, or a ValidationError."""
    for feature in features:
        if not isinstance(feature, Feature):
            raise ValidationError("features", f"expected Feature, got {type(feature).__name__}")
        if not isinstance(feature.source, StreamSource) or feature.source.topic != source:
            raise ValidationError(f"{feature.name}.source",
                                  f"is not the stream {source!r} this history is of")


def needed_columns(features: Sequence[Feature]) -> list[str]:
    """The source columns the features aggregate or filter on, in first-use order."""
    names = [name for f in features
             for name in (f.column, f.where.column if f.where is not None else None) if name]
    return list(dict.fromkeys(names))


def _start(feature: Feature, earliest: int) -> int | None:
    """The earliest event time ``feature`` needs for queries at or after ``earliest``."""
    window = feature.window
    if feature.ttl_us is None:
        return None
    if isinstance(window, Lifetime):
        return earliest - feature.ttl_us if feature.aggregation == "last" else None
    tile = earliest // window.hop_us
    return min((tile - window.tiles + 1) * window.hop_us, earliest - feature.ttl_us)


def needed_rows(features: Sequence[Feature], times: npt.NDArray[np.int64], mode: Mode) -> Filters:
    """The rows of the history a point-in-time join of ``features`` at ``times`` reads."""
    if not len(times):
        return Filters(start=0, end=0)
    earliest, latest = int(times.min()), int(times.max())
    starts = [_start(f, earliest) for f in features]
    bounded = [s for s in starts if s is not None]
    start = None if len(bounded) < len(starts) else min(bounded, default=earliest)
    if mode == "known_at":
        return Filters(start=start, appended_by=latest)
    return Filters(start=start, end=latest + 1)
