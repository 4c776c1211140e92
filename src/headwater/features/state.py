"""The live state of features: rings of tile partials per entity, in NumPy arrays.

Entity ``i`` keeps the partials of its ``n`` newest tiles in row ``i`` of each state
array (tile ``j`` in slot ``j mod n``) and the latest event time it has seen. Which tile
each slot holds, and the latest event time, depend only on the events and the window,
not on the aggregation, so features that read the same events (same source and filter)
into the same tiles share one :class:`TileRing`: the bookkeeping is done once per batch
for all of them, and each :class:`FeatureState` only folds its own partials.

A batch of events is applied in one vectorised pass: a slot moving to a newer tile is
reset, events of tiles that already left the window are skipped (no window at or after
the slot's tile can hold them), and each slot's events are reduced and combined in with
the feature's aggregation (sorted by (slot, time, offset) where order matters).

An entity's *online entry* is what a read needs, precomputed at write time: its latest
event time, its newest tile ``B``, and the value the window takes when the read time is
in tile ``B + k`` for ``k = 0 … n-1`` (from ``B + n`` on the window is empty). Between
events a value only changes at tile boundaries, so a read is a lookup that decays
exactly as the window slides. Entries are fixed-layout bytes built for a whole batch of
entities in one array.

>>> from headwater.features.definitions import Entity, Feature, StreamSource
>>> from headwater.features.windows import Sliding
>>> user, source = Entity("user", key="user"), StreamSource.of("tx")
>>> ring = TileRing(Sliding(20, 10))
>>> count = FeatureState(Feature.of("n", user, source, "count", window=Sliding(20, 10)),
...                      ring=ring)
>>> total = FeatureState(Feature.of("s", user, source, "sum", column="x",
...                                 window=Sliding(20, 10)), ring=ring)
>>> ids, times = np.array([0, 0, 1]), np.array([5, 12, 7])
>>> placed = ring.place(ids, times)
>>> for state in (count, total):
...     state.fold(placed, times, np.arange(3), np.array([1.0, 2.0, 4.0]))
>>> newest, values = total.values(np.array([0, 1]))
>>> newest.tolist(), values.tolist()  # for read times in tiles B and B + 1
([1, 0], [[3.0, 2.0], [4.0, 4.0]])
"""

from __future__ import annotations

import struct
from typing import Any, Final, NamedTuple, cast

import msgspec
import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.features.aggregations import Aggregation, Partial
from headwater.features.definitions import Feature
from headwater.features.values import TextCodes, present
from headwater.features.windows import Window

__all__ = ["ENTRY_HEADER", "NO_TIME", "Ages", "FeatureState", "Placement", "TileRing",
           "entries", "text_entries"]

NO_TIME: Final = np.iinfo(np.int64).min
_NO_TILE: Final = -(1 << 62)
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


ENTRY_HEADER: Final = struct.Struct("<qq")
"""An online entry: the latest event time and the newest tile ``B`` (two int64), then the
value for read times in tile ``B + k``, ``k = 0 … n-1``, as float64 (``NaN`` for null;
``last_n`` stores its ``m`` values per ``k``, newest first, ``NaN``-padded). A text value
(``last`` over a text column) is stored instead as a JSON array of the ``n`` texts (null
for none), padded with spaces so that the entry's length is ``1 mod 8``: a float entry's
length is a multiple of 8, so a reader tells them apart by the length alone."""


class Placement(NamedTuple):
    """Where a batch's events go in a ring, worked out once for every feature sharing it."""

    slots: I64
    """The flat slot (``entity * n + tile mod n``) of each kept event."""
    keep: Mask | None
    """Which events are kept (``None``: all): those of tiles still in their slot."""
    reset: I64
    """Slots that moved to a newer tile, so start empty (repeats allowed)."""


class Ages(NamedTuple):
    """For some entities, where their tiles are, newest first."""

    newest: I64
    """The newest tile ``B`` of each entity."""
    slots: I64
    """``(m, n)``: the flat slot holding tile ``B - d`` in column ``d``, or ``-1`` where
    no slot holds it (a feature's partials keep an identity there)."""


class TileRing:
    """Which tile each slot holds, and the latest event time, for every entity.

    The tile bookkeeping of all the features that read the same events into the same
    tiles; each of them keeps its partials in a :class:`FeatureState` on the ring.
    """

    def __init__(self, window: Window, capacity: int = 1024) -> None:
        self.window = window
        self.n = window.tiles
        self.capacity = 0
        self.tiles = np.zeros((0, self.n), np.int64)
        self.last = np.zeros(0, np.int64)
        back = np.arange(self.n)
        self._back = back  # d, for tile B - d
        self._slots = np.mod(back[:, None] - back, self.n)  # [B mod n, d]: slot of B - d
        self.grow(capacity)

    def grow(self, capacity: int) -> None:
        """Make room for entities ``0 … capacity-1`` (at least doubling, to a power of
        two: a few more entities than the first batch's fit without copying it all)."""
        old = self.capacity
        if capacity <= old:
            return
        size = max(1 << (capacity - 1).bit_length(), 2 * old)
        tiles = np.empty((size, self.n), np.int64)
        tiles[:old] = self.tiles
        tiles[old:] = _NO_TILE
        last = np.empty(size, np.int64)
        last[:old] = self.last
        last[old:] = NO_TIME
        self.tiles, self.last, self.capacity = tiles, last, size

    def place(self, ids: I64, times: I64) -> Placement:
        """Advance the slots and latest times for events (entity ids, event times), in
        any order; return where the events go."""
        self.grow(int(ids.max()) + 1 if len(ids) else 0)
        np.maximum.at(self.last, ids, times)
        tiles = self.window.tile_of(times)
        flat = ids * self.n + np.mod(tiles, self.n) if self.n > 1 else ids
        ring = self.tiles.reshape(-1)
        before = ring[flat]
        np.maximum.at(ring, flat, tiles)  # each slot moves to its newest tile
        after = ring[flat]
        reset = flat[after > before]
        keep: Mask | None = tiles == after  # events of tiles that already left the window go
        if keep is not None and keep.all():
            keep = None
        return Placement(flat if keep is None else flat[keep], keep, reset)

    def ages(self, ids: I64) -> Ages:
        """Where the tiles of entities ``ids`` are, from their newest back."""
        n = self.n
        if n == 1:
            return Ages(self.tiles[ids, 0], ids[:, None])
        newest = self.tiles[ids].max(axis=1)
        index = self._slots[np.mod(newest, n)]
        index += (ids * n)[:, None]
        gone = self.tiles.reshape(-1).take(index) != newest[:, None] - self._back
        if gone.any():
            np.putmask(index, gone, -1)
        return Ages(newest, index)

    def live(self, size: int) -> I64:
        """The flat slots of entities ``0 … size-1`` that a read can still see: those
        holding one of their entity's ``n`` newest tiles. The others are never read
        again (a slot is reset when it moves to a newer tile), so a checkpoint keeps
        only these."""
        tiles = self.tiles[:size]
        newest = tiles.max(axis=1, initial=_NO_TILE)
        return np.flatnonzero((tiles > (newest - self.n)[:, None]) & (tiles != _NO_TILE))

    def snapshot(self, size: int) -> dict[str, npt.NDArray[Any]]:
        """The ring of entities ``0 … size-1``: its live slots (:meth:`live`), their
        tiles, and the latest event times."""
        slots = self.live(size)
        return {"slots": slots, "tiles": self.tiles.reshape(-1)[slots],
                "last": self.last[:size]}

    def restore_live(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        """Load a :meth:`snapshot`: slots it does not name hold no tile."""
        size = len(arrays["last"])
        self.grow(max(size, 1))
        self.tiles[:size] = _NO_TILE
        self.tiles.reshape(-1)[arrays["slots"]] = arrays["tiles"]
        self.last[:size] = arrays["last"]

    def restore(self, tiles: I64, last: I64) -> None:
        size = len(last)
        self.grow(max(size, 1))
        self.tiles[:size] = tiles
        self.last[:size] = last


class FeatureState:
    """Rings of tile partials for every entity of one feature.

    ``ring`` is the tile bookkeeping, shared with other features of the same window and
    events (a ring of its own when not given).
    """

    def __init__(self, feature: Feature, capacity: int = 1024, *,
                 ring: TileRing | None = None) -> None:
        if ring is not None and ring.window != feature.window:
            raise ValidationError("ring", f"{feature.name}: the ring is for another window")
        self.feature = feature
        self.agg: Aggregation = feature.aggregator
        self.ring = TileRing(feature.window, capacity) if ring is None else ring
        self.n = self.ring.n
        self.capacity = 0
        self.partial: Partial = {}
        """One row per entity, one column per slot."""
        self.codes: TextCodes | None = None
        """For ``last`` over text: the dictionary its folded codes come from."""
        self._flat: Partial = {}  # the same, one row per slot, then one identity row
        self._grow(self.ring.capacity)

    @property
    def tiles(self) -> I64:
        """The tile each slot holds (the ring's), one row per entity."""
        return self.ring.tiles

    @property
    def last(self) -> I64:
        """The latest event time of each entity (the ring's)."""
        return self.ring.last

    def _grow(self, capacity: int) -> None:
        old = self.capacity
        if capacity <= old:
            return
        flat = self.agg.empty(capacity * self.n + 1)
        partial = {k: v[:-1].reshape(capacity, self.n, *v.shape[1:]) for k, v in flat.items()}
        for k, v in self.partial.items():
            partial[k][:old] = v
        self.partial, self._flat, self.capacity = partial, flat, capacity

    def apply(self, ids: I64, times: I64, offsets: I64, values: F64) -> None:
        """Fold events (entity ids, event times, offsets, values) into the rings."""
        if not len(ids):
            return
        placed = self.ring.place(ids, times)
        if placed.keep is not None:
            times, offsets, values = times[placed.keep], offsets[placed.keep], values[placed.keep]
        self.fold(placed, times, offsets, values)

    def fold(self, placed: Placement, times: I64, offsets: I64, values: F64) -> None:
        """Fold the kept events of a placement by the ring (their times, offsets and
        values, already restricted to ``placed.keep``) into the partials."""
        self._grow(self.ring.capacity)
        flat_view = {k: v[:-1] for k, v in self._flat.items()}
        if len(placed.reset):  # a slot that moves to a newer tile starts empty
            identity = self.agg.empty(1)
            for k, v in flat_view.items():
                v[placed.reset] = identity[k][0]
        flat = placed.slots
        if self.agg.kind != "count":  # a missing value moves nothing (see values.py)
            kept = present(values)
            if not kept.all():
                flat, times, offsets, values = (flat[kept], times[kept], offsets[kept],
                                                values[kept])
        if not len(flat):
            return
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

    def values(self, ids: I64, ages: Ages | None = None) -> tuple[I64, npt.NDArray[np.float64]]:
        """For entities ``ids``: the newest tile ``B`` and the value for read times in tile
        ``B + k`` (``k = 0 … n-1``), one row per entity. ``ages``: the ring's
        :meth:`TileRing.ages` of ``ids``, when already known."""
        if ages is None:
            ages = self.ring.ages(ids)
        self._grow(self.ring.capacity)
        m, n = len(ids), self.n
        # Newest first; a tile no slot holds reads the identity row at the end (-1).
        by_age = {k: v.take(ages.slots, axis=0) for k, v in self._flat.items()}
        acc = self.agg.accumulate(by_age)  # tiles B … B - d in column d
        # An empty window finalizes to the aggregation's empty value (0 for the counting
        # ones, NaN for the others): every aggregation's finalize sees to it.
        out = self.agg.finalize({k: v.reshape(m * n, *v.shape[2:]) for k, v in acc.items()})
        out = out.reshape(m, n, *out.shape[1:])
        return ages.newest, out[:, ::-1]

    def encode(self, ids: I64, ages: Ages | None = None) -> list[bytes]:
        """The online entries of entities ``ids`` (layout: :data:`ENTRY_HEADER`)."""
        if not len(ids):
            return []
        newest, values = self.values(ids, ages)
        if self.codes is not None:
            return text_entries(self.ring.last[ids], newest, values, self.codes)
        return entries(self.ring.last[ids], newest, values)

    # -- snapshot and restore ---------------------------------------------------------

    def snapshot(self, size: int) -> dict[str, npt.NDArray[Any]]:
        """The state of entities ``0 … size-1`` as plain arrays (saved with ``np.savez``)."""
        self._grow(self.ring.capacity)
        out: dict[str, npt.NDArray[Any]] = {"tiles": self.tiles[:size], "last": self.last[:size]}
        out.update({f"partial.{k}": v[:size] for k, v in self.partial.items()})
        return out

    def partials(self, slots: I64) -> dict[str, npt.NDArray[Any]]:
        """The partials of flat ``slots`` (the ring's live ones, see
        :meth:`TileRing.snapshot`): what a checkpoint keeps of this feature."""
        self._grow(self.ring.capacity)
        return {k: v.take(slots, axis=0) for k, v in self._flat.items()}

    def restore_partials(self, size: int, slots: I64, arrays: dict[str, npt.NDArray[Any]]
                         ) -> None:
        """Load :meth:`partials` of entities ``0 … size-1`` (after the ring's
        :meth:`TileRing.restore_live`): the other slots start empty."""
        self._grow(self.ring.capacity)
        identity = self.agg.empty(1)
        for k, v in self._flat.items():
            v[: size * self.n] = identity[k][0]
            v[slots] = arrays[k]

    def restore(self, arrays: dict[str, npt.NDArray[Any]]) -> None:
        """Load a :meth:`snapshot` (the ring's part too: features sharing a ring
        snapshot the same tiles and times)."""
        size = len(arrays["last"])
        self.ring.restore(arrays["tiles"], arrays["last"])
        self._grow(self.ring.capacity)
        for k, v in self.partial.items():
            v[:size] = arrays[f"partial.{k}"]


def text_entries(last: I64, newest: I64, codes: npt.NDArray[np.float64],
                 texts: TextCodes) -> list[bytes]:
    """Online entries of text values (layout: :data:`ENTRY_HEADER`), from each entity's
    latest event time, newest tile and value codes.

    >>> import pyarrow as pa
    >>> words = TextCodes()
    >>> entry = text_entries(np.array([7]), np.array([2]), words.encode(pa.array(["ord"]))
    ...                      .reshape(1, 1), words)[0]
    >>> ENTRY_HEADER.unpack_from(entry), entry[16:], len(entry) % 8
    ((7, 2), b'["ord"]  ', 1)
    """
    out = []
    for t, b, row in zip(last.tolist(), newest.tolist(), codes, strict=True):
        body = ENTRY_HEADER.pack(t, b) + msgspec.json.encode(texts.decode(row))
        out.append(body + b" " * ((1 - len(body)) % 8))
    return out


def entries(last: I64, newest: I64, values: npt.NDArray[np.float64]) -> list[bytes]:
    """Online entries (layout: :data:`ENTRY_HEADER`), one per row, from each entity's
    latest event time, newest tile and values.

    >>> entry = entries(np.array([7]), np.array([2]), np.array([[1.5, 0.0]]))[0]
    >>> ENTRY_HEADER.unpack_from(entry), struct.unpack_from("<2d", entry, 16)
    ((7, 2), (1.5, 0.0))
    """
    m = len(last)
    rows = np.empty((m, 2 + values[0].size), np.int64)
    rows[:, 0] = last
    rows[:, 1] = newest
    rows[:, 2:] = values.reshape(m, -1).view(np.int64)
    record = np.dtype((np.void, rows.shape[1] * 8))
    return cast("list[bytes]", rows.view(record).ravel().tolist())  # void rows are bytes
