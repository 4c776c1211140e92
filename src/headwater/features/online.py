"""Reading features online: evaluate an entity's online entries at a read time.

The engine writes one :class:`~headwater.features.state.OnlineEntry` per entity and
feature; a read picks the value for the read time's tile and applies the TTL, by the
rules of ``docs/design/features.md`` (as known at the read time).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import numpy as np

from headwater.features.definitions import Feature
from headwater.features.state import OnlineEntry

__all__ = ["decode_entry", "value_at", "values_at"]

_decode = msgspec.msgpack.Decoder(OnlineEntry).decode


def decode_entry(data: bytes) -> OnlineEntry:
    return _decode(data)


def value_at(feature: Feature, entry: OnlineEntry | None, now: int) -> Any:
    """The feature's value at ``now`` from its online entry (``None`` when missing).

    A read before the entity's newest tile (events from the future) is answered as of
    that tile.
    """
    if entry is None:
        return None
    if feature.ttl_us is not None and now - entry.last > feature.ttl_us:
        return None
    k = int(feature.window.tile_of(np.array([now], np.int64))[0]) - entry.tile
    if k < len(entry.values):
        return entry.values[max(k, 0)]
    if feature.aggregation == "last_n":
        return []
    empty = feature.aggregator.empty_value
    return None if np.isnan(empty) else float(empty)


def values_at(features: list[Feature], entries: Mapping[str, bytes], now: int) -> dict[str, Any]:
    """Every feature's value at ``now`` from an entity's stored entries, by name."""
    out: dict[str, Any] = {}
    for feature in features:
        data = entries.get(feature.name)
        out[feature.name] = value_at(feature, None if data is None else _decode(data), now)
    return out
