"""The live state of one feature: a ring of tile partials per entity, in NumPy arrays.

Entity ``i`` keeps the partials of its ``n`` newest tiles in row ``i`` of each state
array (tile ``j`` in slot ``j mod n``) and the latest event time it has seen. A batch of
events is applied in one vectorised pass: events are sorted by (slot, tile, time,
offset), a slot moving to a newer tile is reset, events of tiles that already left the
window are skipped (no window at or after the slot's tile can hold them), and each
slot's events are reduced and combined in with the feature's aggregation.

An entity's *online entry* is what a read needs, precomputed at write time: its latest
event time, its newest tile ``B``, and the value the window takes when the read time is
in tile ``B + k`` for ``k = 0 … n-1`` (from ``B + n`` on the window is empty). Between
events a value only changes at tile boundaries, so a read is a lookup that decays
exactly as the window slides.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from headwater.features.aggregations import Aggregation, Partial
from headwater.features.definitions import Feature

__all__ = ["NO_TIME", "FeatureState", "OnlineEntry"]

NO_TIME: Final = np.iinfo(np.int64).min
_NO_TILE: Final = -(1 << 62)
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class OnlineEntry(msgspec.Struct, array_like=True, frozen=True):
    """One feature of one entity, as the online store keeps it."""

    last: int
    """The latest event time applied (µs)."""
    tile: int
    """``B``: the newest tile holding events."""
    values: list[Any]
    """The value for read times in tile ``B + k``, ``k = 0 … n-1`` (null as ``None``)."""


_encode = msgspec.msgpack.Encoder().encode


class FeatureState:
    """Rings of tile partials for every entity of one feature."""

    def __init__(self, feature: Feature, capacity: int = 1024) -> None:
        self.feature = feature
        self.agg: Aggregation = feature.aggregator
        self.n = feature.window.tiles
        self.capacity = 0
        self.tiles = np.zeros((0, self.n), np.int64)
        self.partial: Partial = {}
        self.last = np.zeros(0, np.int64)
        self._grow(capacity)

    def _grow(self, capacity: int) -> None:
        old = self.capacity
        if capacity <= old:
            return
        size = max(capacity, 2 * old)
        tiles = np.full((size, self.n), _NO_TILE, np.int64)
        tiles[:old] = self.tiles
        empty = self.agg.empty(size * self.n)
        partial = {k: v.reshape(size, self.n, *v.shape[1:]) for k, v in empty.items()}
        for k, v in self.partial.items():
            partial[k][:old] = v
        last = np.full(size, NO_TIME, np.int64)
        last[:old] = self.last
        self.tiles, self.partial, self.last, self.capacity = tiles, partial, last, size

    def apply(self, ids: I64, times: I64, offsets: I64, values: F64) -> None:
        """Fold events (entity ids, event times, offsets, values) into the rings."""
        if not len(ids):
            return
        self._grow(int(ids.max()) + 1)
        np.maximum.at(self.last, ids, times)
        tiles = self.feature.window.tile_of(times)
        flat = ids * self.n + np.mod(tiles, self.n)
        order = np.lexsort((offsets, times, tiles, flat))
        flat, tiles = flat[order], tiles[order]
        times, offsets, values = times[order], offsets[order], values[order]
        starts = np.flatnonzero(np.diff(flat, prepend=-1))
        ends = np.append(starts[1:], len(flat)) - 1
        slots = flat[starts]
        ring_tiles = self.tiles.reshape(-1)
        newest = np.maximum(ring_tiles[slots], tiles[ends])
        moved = newest > ring_tiles[slots]
        if moved.any():
            identity = self.agg.empty(int(moved.sum()))
            for k, v in self.partial.items():
                v.reshape(-1, *v.shape[2:])[slots[moved]] = identity[k]
        ring_tiles[slots] = newest
        run = np.repeat(np.arange(len(slots)), np.diff(np.append(starts, len(flat))))
        keep = tiles == newest[run]  # events of tiles that already left the window go
        if not keep.all():
            flat, times, offsets, values = flat[keep], times[keep], offsets[keep], values[keep]
            starts = np.flatnonzero(np.diff(flat, prepend=-1))
            slots = flat[starts]
        reduced = self.agg.reduce(self.agg.lift(values, times, offsets), starts)
        flat_view = {k: v.reshape(-1, *v.shape[2:]) for k, v in self.partial.items()}
        current = {k: v[slots] for k, v in flat_view.items()}
        merged = self.agg.combine(current, reduced)
        for k, v in flat_view.items():
            v[slots] = merged[k]

    def entries(self, ids: I64) -> list[OnlineEntry]:
        """The online entries of entities ``ids`` (see the module docstring)."""
        newest = self.tiles[ids].max(axis=1)
        acc = self.agg.empty(len(ids))
        by_distance: list[F64 | npt.NDArray[Any]] = []
        for d in range(self.n):  # tile B - d, from the newest back
            tile = newest - d
            slot = np.mod(tile, self.n)
            present = self.tiles[ids, slot] == tile
            older = {k: np.where(_expand(present, v[ids, slot]), v[ids, slot],
                                 self.agg.empty(1)[k][0])
                     for k, v in self.partial.items()}
            acc = self.agg.combine(older, acc)
            by_distance.append(self._values(acc))
        rows = [by_distance[self.n - 1 - k] for k in range(self.n)]
        values = [[_value(column[i]) for column in rows] for i in range(len(ids))]
        last = self.last[ids].tolist()
        return [OnlineEntry(last[i], int(newest[i]), values[i]) for i in range(len(ids))]

    def _values(self, partial: Partial) -> npt.NDArray[Any]:
        out = self.agg.finalize(partial)
        if out.ndim == 1:
            out = np.where(partial["n"] > 0, out, self.agg.empty_value)
        return out

    def encode(self, ids: I64) -> list[bytes]:
        return [_encode(entry) for entry in self.entries(ids)]

    # -- snapshot and restore ---------------------------------------------------------

    def snapshot(self, size: int) -> dict[str, npt.NDArray[Any]]:
        """The state of entities ``0 … size-1`` as plain arrays (saved with ``np.savez``)."""
        out: dict[str, npt.NDArray[Any]] = {"tiles": self.tiles[:size], "last": self.last[:size]}
        out.update({f"partial.{k}": v[:size] for k, v in self.partial.items()})
        return out

    def restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        size = len(arrays["last"])
        self._grow(max(size, 1))
        self.tiles[:size] = arrays["tiles"]
        self.last[:size] = arrays["last"]
        for k, v in self.partial.items():
            v[:size] = arrays[f"partial.{k}"]


def _expand(mask: npt.NDArray[np.bool_], like: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def _value(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return [float(v) for v in x if not np.isnan(v)]
    value = float(x)
    return None if np.isnan(value) else value
