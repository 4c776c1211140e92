"""Windows: which tiles of an entity's events a feature aggregates.

Time is cut into tiles of the window's hop ``H``: tile ``j`` covers ``[j·H, (j+1)·H)``.
The window at time ``t`` holds the current tile and the ``n - 1`` before it, so its start
is aligned to the hop and its end is ``t`` itself (see ``docs/design/features.md``).

>>> w = Sliding.of("1h", hop="15m")
>>> w.tiles, w.hop_us
(4, 900000000)
>>> int(w.tile_of(np.array([3_600_000_000]))[0])
4
>>> Tumbling.of("1d").tiles, Lifetime().tiles
(1, 1)
"""

from __future__ import annotations

from typing import Final

import msgspec
import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.time import format_duration, parse_duration

__all__ = ["Lifetime", "Sliding", "Tumbling", "Window"]

_FOREVER: Final = 1 << 62  # the hop of a lifetime window: one tile holds all of time


class Sliding(msgspec.Struct, frozen=True, tag="sliding", forbid_unknown_fields=True):
    """The last ``length`` of time in tiles of ``hop`` (``length`` a multiple of ``hop``)."""

    length_us: int
    hop_us: int

    def __post_init__(self) -> None:
        if self.hop_us <= 0 or self.length_us <= 0:
            raise ValidationError("window", "length and hop must be positive, got "
                                  f"{format_duration(self.length_us)} and "
                                  f"{format_duration(self.hop_us)}")
        if self.length_us % self.hop_us:
            raise ValidationError("window.hop", "the length must be a whole number of hops, got "
                                  f"{format_duration(self.length_us)} by "
                                  f"{format_duration(self.hop_us)}")

    @classmethod
    def of(cls, length: str | int, *, hop: str | int) -> Sliding:
        return cls(parse_duration(length, field="window.length"),
                   parse_duration(hop, field="window.hop"))

    @property
    def tiles(self) -> int:
        return self.length_us // self.hop_us

    def tile_of(self, times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.floor_divide(times, self.hop_us)

    def tile_of_one(self, time: int) -> int:
        return time // self.hop_us


class Tumbling(msgspec.Struct, frozen=True, tag="tumbling", forbid_unknown_fields=True):
    """The current period of ``length`` (a window of one tile)."""

    length_us: int

    def __post_init__(self) -> None:
        if self.length_us <= 0:
            raise ValidationError("window.length", "must be positive")

    @classmethod
    def of(cls, length: str | int) -> Tumbling:
        return cls(parse_duration(length, field="window.length"))

    @property
    def hop_us(self) -> int:
        return self.length_us

    @property
    def tiles(self) -> int:
        return 1

    def tile_of(self, times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.floor_divide(times, self.length_us)

    def tile_of_one(self, time: int) -> int:
        return time // self.length_us


class Lifetime(msgspec.Struct, frozen=True, tag="lifetime", forbid_unknown_fields=True):
    """Every event so far (one tile for all of time)."""

    @property
    def hop_us(self) -> int:
        return _FOREVER

    @property
    def tiles(self) -> int:
        return 1

    def tile_of(self, times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.zeros(len(times), dtype=np.int64)

    def tile_of_one(self, time: int) -> int:
        return 0


Window = Sliding | Tumbling | Lifetime
"""Any window; a tagged union, stored as JSON in feature definitions."""
