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
exactly as the window slides. Entries are fixed-layout bytes built for a whole batch of
entities in one array.
"""

from __future__ import annotations

import struct
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from headwater.features.aggregations import Aggregation, Partial
from headwater.features.definitions import Feature

__all__ = ["ENTRY_HEADER", "NO_TIME", "FeatureState"]

NO_TIME: Final = np.iinfo(np.int64).min
_NO_TILE: Final = -(1 << 62)
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


ENTRY_HEADER: Final = struct.Struct("<qq")
"""An online entry: the latest event time and the newest tile ``B`` (two int64), then the
value for read times in tile ``B + k``, ``k = 0 … n-1``, as float64 (``NaN`` for null;
``last_n`` stores its ``m`` values per ``k``, newest first, ``NaN``-padded)."""


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
        ring_tiles = self.tiles.reshape(-1)
        before = ring_tiles[flat]
        np.maximum.at(ring_tiles, flat, tiles)  # each slot moves to its newest tile
        after = ring_tiles[flat]
        flat_view = {k: v.reshape(-1, *v.shape[2:]) for k, v in self.partial.items()}
        moved = after > before
        if moved.any():  # a slot that moves to a newer tile starts empty
            identity = self.agg.empty(1)
            for k, v in flat_view.items():
                v[flat[moved]] = identity[k][0]
        keep = tiles == after  # events of tiles that already left the window go
        if not keep.all():
            flat, times, offsets, values = flat[keep], times[keep], offsets[keep], values[keep]
        if not self.agg.ordered:
            self.agg.fold(flat_view, flat, values)
            return
        order = np.lexsort((offsets, times, flat))
        flat, times, offsets, values = flat[order], times[order], offsets[order], values[order]
        starts = np.flatnonzero(np.diff(flat, prepend=-1))
        slots = flat[starts]
        reduced = self.agg.reduce(self.agg.lift(values, times, offsets), starts)
        current = {k: v[slots] for k, v in flat_view.items()}
        merged = self.agg.combine(current, reduced)
        for k, v in flat_view.items():
            v[slots] = merged[k]

    def values(self, ids: I64) -> tuple[I64, npt.NDArray[np.float64]]:
        """For entities ``ids``: the newest tile ``B`` and the value for read times in tile
        ``B + k`` (``k = 0 … n-1``), one row per entity."""
        tiles = self.tiles[ids]
        newest = tiles.max(axis=1)
        distance = newest[:, None] - tiles  # 0 for tile B, n-1 for the oldest kept
        rows, cols = np.nonzero((distance >= 0) & (distance < self.n))
        by_age = self.agg.empty(len(ids) * self.n)
        target = rows * self.n + distance[rows, cols]
        for k, v in self.partial.items():  # each ring reordered newest first, in one scatter
            by_age[k][target] = v[ids[rows], cols]
        ordered = {k: v.reshape(len(ids), self.n, *v.shape[1:]) for k, v in by_age.items()}
        acc = self.agg.empty(len(ids))
        by_distance: list[npt.NDArray[np.float64]] = []
        for d in range(self.n):  # tile B - d, from the newest back
            acc = self.agg.combine({k: v[:, d] for k, v in ordered.items()}, acc)
            by_distance.append(self._finalize(acc))
        return newest, np.stack(by_distance[::-1], axis=1)

    def _finalize(self, partial: Partial) -> npt.NDArray[np.float64]:
        out = self.agg.finalize(partial)
        if out.ndim == 1:
            out = np.where(partial["n"] > 0, out, self.agg.empty_value)
        return out

    def encode(self, ids: I64) -> list[bytes]:
        """The online entries of entities ``ids`` (layout: :data:`ENTRY_HEADER`)."""
        m = len(ids)
        if not m:
            return []
        newest, values = self.values(ids)
        rows = np.empty((m, 2 + values[0].size), np.int64)
        rows[:, 0] = self.last[ids]
        rows[:, 1] = newest
        rows[:, 2:] = values.reshape(m, -1).view(np.int64)
        width = rows.shape[1] * 8
        data = rows.tobytes()
        return [data[i * width: (i + 1) * width] for i in range(m)]

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


