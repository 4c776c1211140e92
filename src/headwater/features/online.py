"""Reading features online: evaluate an entity's online entries at a read time.

The engine writes one :class:`~headwater.features.state.OnlineEntry` per entity and
feature; a read picks the value for the read time's tile and applies the TTL, by the
rules of ``docs/design/features.md`` (as known at the read time).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any, Final

from headwater.features.definitions import Feature
from headwater.features.state import ENTRY_HEADER

__all__ = ["value_at", "values_at"]

_DOUBLE: Final = struct.Struct("<d")


def value_at(feature: Feature, entry: bytes | None, now: int) -> Any:
    """The feature's value at ``now`` from its online entry (``None`` when missing).

    A read before the entity's newest tile (events from the future) is answered as of
    that tile.
    """
    if entry is None:
        return None
    last, tile = ENTRY_HEADER.unpack_from(entry)
    if feature.ttl_us is not None and now - last > feature.ttl_us:
        return None
    window = feature.window
    k = max(window.tile_of_one(now) - tile, 0)
    if k >= window.tiles:
        return [] if feature.aggregation == "last_n" else _empty(feature)
    if feature.aggregation == "last_n":
        m = feature.n or 1
        start = ENTRY_HEADER.size + 8 * m * k
        values = struct.unpack_from(f"<{m}d", entry, start)
        return [v for v in values if not math.isnan(v)]
    (value,) = _DOUBLE.unpack_from(entry, ENTRY_HEADER.size + 8 * k)
    return None if math.isnan(value) else value


def _empty(feature: Feature) -> float | None:
    empty = feature.aggregator.empty_value
    return None if math.isnan(empty) else float(empty)


def values_at(features: list[Feature], entries: Mapping[str, bytes], now: int) -> dict[str, Any]:
    """Every feature's value at ``now`` from an entity's stored entries, by name."""
    return {f.name: value_at(f, entries.get(f.name), now) for f in features}
