"""Reading features online: evaluate an entity's online entries at a read time.

The engine writes one :class:`~headwater.features.state.OnlineEntry` per entity and
feature; a read picks the value for the read time's tile, applies the TTL and, where
the entity has no value, the feature's default (:attr:`Feature.default_value`), by the
rules of ``docs/design/features.md`` (as known at the read time).
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, Protocol

import msgspec
import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.features.definitions import DerivedFeature, Feature, FeatureSet
from headwater.features.state import ENTRY_HEADER

__all__ = ["EntityKey", "FeatureReader", "FeatureRow", "OnlineReader", "entity_key",
           "value_at", "values_at"]

EntityKey = str | int
"""An entity's key as a caller gives it: text, or an integer."""


class OnlineReader(Protocol):
    """Where the engine's entries are read from (an online store: every
    :class:`~headwater.store.online.OnlineStore` is one)."""

    def read(self, namespace: str, entity: str) -> dict[str, bytes]: ...


def entity_key(key: EntityKey, *, field: str = "entities") -> str:
    """The key as the online store holds it: an integer is its decimal text, which is how
    the engine stores the keys of an integer key column, so ``42`` and ``"42"`` name the
    same entity.

    >>> entity_key(42), entity_key("42"), entity_key("ada")
    ('42', '42', 'ada')
    """
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    raise ValidationError(field, f"an entity key is text or an integer, not {key!r}")

_DOUBLE: Final = struct.Struct("<d")
_LIFETIME_HOP: Final = 1 << 62  # a lifetime window is one tile: its tile is always 0


def value_at(feature: Feature, entry: bytes | None, now: int) -> Any:
    """The feature's value at ``now`` from its online entry: its default when the entity
    has no value (``None`` when that is null).

    A read before the entity's newest tile (events from the future) is answered as of
    that tile.
    """
    value = _Plan(feature).value(entry, now)
    return feature.default_value if value is None else value


def _empty(feature: Feature) -> float | None:
    empty = feature.aggregator.empty_value
    return None if math.isnan(empty) else float(empty)


def values_at(features: list[Feature], entries: Mapping[str, bytes], now: int) -> dict[str, Any]:
    """Every feature's value at ``now`` from an entity's stored entries, by name."""
    return {f.name: value_at(f, entries.get(f.name), now) for f in features}


class FeatureRow(NamedTuple):
    """One read of a feature set: the values by name, the features whose value is their
    default (the entity had none), and the entities that had no value for any feature
    (unknown entities)."""

    values: dict[str, Any]
    defaulted: tuple[str, ...]
    unknown: tuple[str, ...]


class FeatureReader:
    """Reads a feature set for serving: one store read per entity, defaults where an
    entity has no value, then the derived features, computed from the values and the
    request exactly as offline. The values returned are the model's inputs: the set's
    helpers feed the derived features and are then left out (:meth:`read_row` can keep
    them).

    ``entities`` maps an entity name to its key (:func:`entity_key`: text or an integer);
    ``request`` holds request values.
    """

    def __init__(self, online: OnlineReader, feature_set: FeatureSet) -> None:
        self.online = online
        self.feature_set = feature_set
        self.by_entity: dict[str, list[Feature]] = {}
        self.derived: list[DerivedFeature] = []
        for f in feature_set.features:
            if isinstance(f, Feature):
                self.by_entity.setdefault(f.entity.name, []).append(f)
            else:
                self.derived.append(f)
        self.helpers = tuple(feature_set.helpers)
        # What a read needs of each feature, worked out once: the hot path is plain tuples.
        self._plans = {entity: [_Plan.of(f) for f in features]
                       for entity, features in self.by_entity.items()}
        self._together = {entity: _Together.of(plans) for entity, plans in self._plans.items()}
        self._fields = {entity: f"entities.{entity}" for entity in self._plans}

    def read(self, entities: Mapping[str, EntityKey], now: int,
             request: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The model's inputs: every feature of the set but the helpers, by name."""
        return self.read_row(entities, now, request).values

    def keys(self, entities: Mapping[str, EntityKey]) -> list[tuple[str, str]]:
        """The store reads a row needs: ``(namespace, entity key)`` for each entity of
        the set, in the order :meth:`read_row` takes their ``entries``."""
        keys = []
        for entity in self._plans:
            key = entities.get(entity)
            if key is None:
                raise ValidationError(f"entities.{entity}", "missing: the feature set needs it")
            keys.append((entity, entity_key(key, field=self._fields[entity])))
        return keys

    def read_row(self, entities: Mapping[str, EntityKey], now: int,
                 request: Mapping[str, Any] | None = None, *, helpers: bool = False,
                 entries: Sequence[Mapping[str, bytes]] | None = None) -> FeatureRow:
        """The values (with the helpers when ``helpers``), which were defaulted, and
        which entities are unknown. ``entries``: each entity's blobs as read already
        (in the order of :meth:`keys`), for a caller that read them without blocking;
        without them the store is read here."""
        values: dict[str, Any] = {}
        defaulted: list[str] = []
        unknown: list[str] = []
        for i, (entity, plans) in enumerate(self._plans.items()):
            if entries is not None:
                found = entries[i]
            else:
                key = entities.get(entity)
                if key is None:
                    raise ValidationError(f"entities.{entity}",
                                          "missing: the feature set needs it")
                found = self.online.read(entity, entity_key(key, field=self._fields[entity]))
            together = self._together[entity]
            if together is not None:
                numbers = together.values(found, now)
                if numbers is not None:  # every feature had a number: no defaults
                    values.update(zip(together.names, numbers, strict=True))
                    continue
            known = False
            for plan in plans:
                value = plan.value(found.get(plan.name), now)
                if value is None:
                    value = plan.default
                    if value is not None:
                        defaulted.append(plan.name)
                else:
                    known = True
                values[plan.name] = value
            if not known:
                unknown.append(entity)
        if self.derived:
            columns = {k: _column([v]) for k, v in {**(request or {}), **values}.items()}
            for f in self.derived:
                result = f.compute(columns)
                values[f.name] = _scalar(result[0])
                columns[f.name] = result
        if self.helpers and not helpers:
            for name in self.helpers:
                del values[name]
        return FeatureRow(values, tuple(defaulted), tuple(unknown))


class _Plan:
    """One feature's read, with everything but the entry and the time precomputed."""

    __slots__ = ("default", "empty", "hop", "last_n", "name", "offset", "text", "tiles",
                 "ttl")

    def __init__(self, feature: Feature) -> None:
        self.name = feature.name
        self.default = feature.default_value
        self.ttl = feature.ttl_us
        self.hop = feature.window.hop_us
        self.tiles = feature.window.tiles
        self.last_n = feature.n if feature.aggregation == "last_n" else None
        self.empty: Any = [] if self.last_n else _empty(feature)
        self.offset = ENTRY_HEADER.size
        self.text = feature.aggregation == "last"  # over a text column, its entries are text

    @classmethod
    def of(cls, feature: Feature) -> _Plan:
        return cls(feature)

    def value(self, entry: bytes | None, now: int) -> Any:
        """The value by the window rules, ``None`` when there is none (before the
        default)."""
        if entry is None:
            return None
        last, tile = ENTRY_HEADER.unpack_from(entry)
        if self.ttl is not None and now - last > self.ttl:
            return None
        k = now // self.hop - tile if self.hop < _LIFETIME_HOP else 0
        if k < 0:
            k = 0
        elif k >= self.tiles:
            return self.empty
        if self.text and len(entry) & 7:  # a text entry (see ENTRY_HEADER)
            texts: list[str | None] = msgspec.json.decode(entry[self.offset:])
            return texts[k]
        if self.last_n:
            m = self.last_n
            found = struct.unpack_from(f"<{m}d", entry, self.offset + 8 * m * k)
            return [v for v in found if v == v]
        (value,) = _DOUBLE.unpack_from(entry, self.offset + 8 * k)
        return None if value != value else value


class _Together:
    """The numeric features of one entity decoded together: one ``struct`` unpack for
    the entries' headers and one for the values at the read time, instead of two per
    feature. It answers only the common case — every entry present, in the layout of
    its window, no value null and none past its TTL or window — and leaves every other
    read (``None``) to the feature-by-feature rules, so the two can never disagree.
    """

    __slots__ = (
        "_get",
        "_groups",
        "_headers",
        "_layouts",
        "_lengths",
        "_size",
        "_tiles",
        "_ttl",
        "names",
    )

    def __init__(self, plans: Sequence[_Plan]) -> None:
        self.names = tuple(p.name for p in plans)
        # A tuple of the entries by one C call (there are at least two: see ``of``).
        self._get: Callable[[Mapping[str, bytes]], tuple[bytes, ...]] = operator.itemgetter(
            *self.names)
        self._tiles = tuple(p.tiles for p in plans)
        lengths = tuple(ENTRY_HEADER.size + 8 * n for n in self._tiles)
        self._size = sum(lengths)
        # A "last" entry may be text: then each entry's length is checked (a text entry's
        # is 1 mod 8), not only their sum (numeric entries' lengths follow the windows).
        self._lengths = lengths if any(p.text for p in plans) else None
        # Each entry's newest tile, and its latest event time only where a TTL needs it.
        self._headers = struct.Struct("<" + "".join(
            f"{'q' if p.ttl is not None else '8x'}q{8 * p.tiles}x" for p in plans))
        # Features of one hop share a ``k``; each group: its hop, a getter of its tiles from
        # the newest tiles of all, its fewest tiles, its positions. Lifetime features are
        # in none: their ``k`` is always 0.
        by_hop: dict[int, list[int]] = {}
        for i, p in enumerate(plans):
            if p.hop < _LIFETIME_HOP:
                by_hop.setdefault(p.hop, []).append(i)
        self._groups = tuple((hop, operator.itemgetter(*at) if len(at) > 1 else
                              (lambda xs, i=at[0]: (xs[i],)), min(self._tiles[i] for i in at),
                              at) for hop, at in by_hop.items())
        ttls = [p.ttl for p in plans if p.ttl is not None]
        self._ttl = None
        if ttls:
            # Where each feature's tile and (with a TTL) latest event time are in a header.
            tile_at, last_at, at = [], [], 0
            for p in plans:
                if p.ttl is not None:
                    last_at.append(at)
                    at += 1
                tile_at.append(at)
                at += 1
            tiles_of, lasts_of = operator.itemgetter(*tile_at), operator.itemgetter(*last_at)

            def split(header: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
                lasts = lasts_of(header)
                return tiles_of(header), lasts if isinstance(lasts, tuple) else (lasts,)

            self._ttl = (min(ttls), split)
        self._layouts: dict[tuple[int, ...], struct.Struct] = {}

    @classmethod
    def of(cls, plans: Sequence[_Plan]) -> _Together | None:
        """The plan for these features, ``None`` unless all hold one number per tile
        (a text entry is told apart by its length, and read feature by feature)."""
        if len(plans) < 2 or any(p.last_n for p in plans):
            return None
        return cls(plans)

    def values(self, entries: Mapping[str, bytes], now: int) -> tuple[float, ...] | None:
        try:
            found = self._get(entries)
        except KeyError:
            return None
        blob = b"".join(found)
        if len(blob) != self._size or (
                self._lengths is not None and tuple(map(len, found)) != self._lengths):
            return None
        header = self._headers.unpack(blob)
        if self._ttl is None:
            newest = header
        else:  # (latest event time, newest tile) of each feature with a TTL, tile of others
            newest, lasts = self._ttl[1](header)
            if now - min(lasts) > self._ttl[0]:
                return None
        ks = []
        for hop, pick, fewest, _ in self._groups:
            tiles = pick(newest)
            if tiles.count(tiles[0]) != len(tiles):
                return None
            k = max(now // hop - tiles[0], 0)
            if k >= fewest:
                return None
            ks.append(k)
        key = tuple(ks)
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layout(key)
        found_values: tuple[float, ...] = layout.unpack(blob)
        total = sum(found_values)
        if total != total:  # a null (NaN) somewhere, or infinities of both signs
            return None
        return found_values

    def _layout(self, ks: tuple[int, ...]) -> struct.Struct:
        k_of = [0] * len(self.names)
        for (_, _, _, at), k in zip(self._groups, ks, strict=True):
            for i in at:
                k_of[i] = k
        layout = struct.Struct("<" + "".join(
            f"{ENTRY_HEADER.size + 8 * k}xd{8 * (n - k - 1)}x"
            for k, n in zip(k_of, self._tiles, strict=True)))
        if len(self._layouts) < 4096:
            self._layouts[ks] = layout
        return layout


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
