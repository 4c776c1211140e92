"""Reading features online: evaluate an entity's online entries at a read time.

The engine writes one :class:`~headwater.features.state.OnlineEntry` per entity and
feature; a read picks the value for the read time's tile and applies the TTL, by the
rules of ``docs/design/features.md`` (as known at the read time).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.features.definitions import DerivedFeature, Feature, FeatureSet
from headwater.features.state import ENTRY_HEADER

if TYPE_CHECKING:
    from headwater.store.online.protocol import OnlineStore

__all__ = ["FeatureReader", "value_at", "values_at"]

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


class FeatureReader:
    """Reads a feature set for serving: one store read per entity, then the derived
    features, computed from the values and the request exactly as offline.

    ``entities`` maps an entity name to its key; ``request`` holds request values.
    """

    def __init__(self, online: OnlineStore, feature_set: FeatureSet) -> None:
        self.online = online
        self.feature_set = feature_set
        self.by_entity: dict[str, list[Feature]] = {}
        self.derived: list[DerivedFeature] = []
        for f in feature_set.features:
            if isinstance(f, Feature):
                self.by_entity.setdefault(f.entity.name, []).append(f)
            else:
                self.derived.append(f)

    def read(self, entities: Mapping[str, str], now: int,
             request: Mapping[str, Any] | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for entity, features in self.by_entity.items():
            key = entities.get(entity)
            if key is None:
                raise ValidationError(f"entities.{entity}", "missing: the feature set needs it")
            values.update(values_at(features, self.online.read(entity, key), now))
        if self.derived:
            columns = {k: _column([v]) for k, v in {**(request or {}), **values}.items()}
            for f in self.derived:
                result = f.compute(columns)
                values[f.name] = _scalar(result[0])
                columns[f.name] = result
        return values


def _column(values: list[Any]) -> npt.NDArray[Any]:
    """A column as derived features see it: numbers (null as NaN) or objects."""
    if all(v is None or isinstance(v, (int, float)) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(values, dtype=object)


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
