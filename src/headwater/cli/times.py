"""Times as files hold them, read into the log's microseconds.

A file's time column may hold ISO 8601 text with an offset (``2024-03-01T08:00:00Z``),
text without one (``2024-03-01 08:00:00``) or a date alone (``2024-03-01``), or integers
counting seconds, milliseconds, microseconds or nanoseconds since the epoch. The rules:

- text without an offset, and a date alone (midnight), is a wall time in ``--timezone``;
  without that option it is refused, never assumed to be UTC. An ambiguous wall time
  (the hour a clock goes back) reads as its first occurrence; a wall time that never
  happened (the hour a clock skips) is refused;
- integers are in ``--time-unit``; without it the unit is told from the magnitude of the
  first integers read (``1.7e9`` is seconds, ``1.7e12`` milliseconds, ``1.7e15``
  microseconds, ``1.7e18`` nanoseconds, which is the year 2023 in each unit), the choice
  is said once, and a column too small to tell is refused with the option to give.

A value that cannot be read is refused with the reason, for the dead-letter topic.

>>> reader = TimeReader(timezone="Europe/Paris", unit="s")
>>> micros, reasons = reader.read_texts(pa.array(["2024-01-01", "1704067200", "x"]), "ts")
>>> micros.to_pylist(), reasons
([1704063600000000, 1704067200000000, None], {2: "not a time: 'x'"})
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ValidationError
from headwater.time import MAX_MICROS, MIN_MICROS, to_micros

__all__ = ["TIME_UNITS", "TimeReader", "TimeUnit", "detect_unit"]

TimeUnit = Literal["s", "ms", "us", "ns"]
TIME_UNITS: Final = get_args(TimeUnit)
_PER_UNIT: Final[dict[str, tuple[int, int]]] = {  # (multiply, divide) to get µs
    "s": (1_000_000, 1), "ms": (1_000, 1), "us": (1, 1), "ns": (1, 1_000)}
_NAMES: Final = {"s": "seconds", "ms": "milliseconds", "us": "microseconds",
                 "ns": "nanoseconds"}
#: The smallest magnitude each unit is told by: 1e8 s is 1973-03-03, and each next
#: unit starts where the previous would pass the year 5138.
_SMALLEST: Final = (("ns", 10**17), ("us", 10**14), ("ms", 10**11), ("s", 10**8))
_INTEGER: Final = r"^\s*[+-]?\d+\s*$"
_TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
_UTC: Final = ZoneInfo("UTC")


def detect_unit(largest: int) -> TimeUnit | None:
    """The unit integer times up to ``largest`` (in magnitude) are counted in, or
    ``None`` when they are too small to tell.

    >>> detect_unit(1_709_280_000), detect_unit(1_709_280_000_000), detect_unit(25)
    ('s', 'ms', None)
    """
    for unit, smallest in _SMALLEST:
        if largest >= smallest:
            return unit  # type: ignore[return-value]
    return None


class TimeReader:
    """Reads a file's time columns; ``say`` is told the unit it detects, once."""

    def __init__(self, *, timezone: str | None = None, unit: TimeUnit | None = None,
                 say: Callable[[str], None] = lambda _: None) -> None:
        self.zone: ZoneInfo | None = None
        if timezone is not None:
            try:
                self.zone = ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValidationError(
                    "--timezone", f"unknown time zone {timezone!r}; use a name such as "
                    "UTC or Europe/Paris") from None
        self.timezone = timezone
        if unit is not None and unit not in TIME_UNITS:
            raise ValidationError("--time-unit", f"expected one of {', '.join(TIME_UNITS)}")
        self.unit = unit
        self._say = say

    # -- integers -------------------------------------------------------------------

    def unit_for(self, values: np.ndarray, field: str) -> TimeUnit:
        """The unit of integer times (detected from ``values`` the first time)."""
        if self.unit is not None:
            return self.unit
        largest = int(np.abs(values).max()) if len(values) else 0
        unit = detect_unit(largest)
        if unit is None:
            raise ValidationError(
                "--time-unit", f"{field} holds integers (the largest is {largest}) too small to "
                "tell whether they count seconds, milliseconds, microseconds or nanoseconds: "
                "give --time-unit s, ms, us or ns")
        self.unit = unit
        self._say(f"{field}: integer times read as {_NAMES[unit]} since the epoch (told by "
                  f"their magnitude, e.g. {largest}); --time-unit sets the unit")
        return unit

    def from_integers(self, values: np.ndarray, field: str) -> tuple[np.ndarray, np.ndarray]:
        """Integer times in µs, and which of them are in the accepted range."""
        values = values.astype(np.int64, copy=False)
        multiply, divide = _PER_UNIT[self.unit_for(values, field)]
        limit = MAX_MICROS * divide // multiply  # beyond it, the product could overflow
        ok = (values < limit) & (values > -limit)
        micros = np.where(ok, values, 0) * multiply // divide
        ok &= (micros >= MIN_MICROS) & (micros < MAX_MICROS)
        return micros, ok

    # -- text -----------------------------------------------------------------------

    def read_texts(self, column: pa.Array, field: str) -> tuple[pa.Array, dict[int, str]]:
        """Text times as int64 µs (null where refused or null), and why each refused
        value (by position) was refused."""
        reasons: dict[int, str] = {}
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        try:  # the common case: ISO text with an offset, one vectorised cast
            return pc.cast(column, _TIMESTAMP).view(pa.int64()), reasons
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        if self.timezone is not None:  # wall times without an offset, vectorised
            try:
                local = pc.assume_timezone(pc.cast(column, pa.timestamp("us")),
                                           timezone=self.timezone, ambiguous="earliest",
                                           nonexistent="raise")
                return local.view(pa.int64()), reasons
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass  # mixed, or a skipped wall time: value by value below
        integer = np.asarray(pc.fill_null(pc.match_substring_regex(column, _INTEGER), False))
        out = np.zeros(len(column), np.int64)
        valid = np.zeros(len(column), bool)
        if integer.any():
            texts = pc.utf8_trim_whitespace(column.filter(pa.array(integer)))
            try:
                numbers = np.asarray(pc.cast(texts, pa.int64()), np.int64)
            except pa.ArrowInvalid:  # beyond int64: refused one by one below
                numbers = None
            if numbers is not None:
                micros, ok = self.from_integers(numbers, field)
                where = np.flatnonzero(integer)
                out[where], valid[where] = micros, ok
                for i in where[~ok].tolist():
                    reasons[i] = f"{column[i].as_py().strip()} is outside the accepted " \
                                 "range 1900..2200"
        for i, text in enumerate(column.to_pylist()):
            if text is None or valid[i] or i in reasons:
                continue
            try:
                out[i] = self.parse_text(text)
                valid[i] = True
            except ValueError as exc:
                reasons[i] = str(exc)
        return pa.array(out, pa.int64(), mask=~valid), reasons

    def parse_text(self, text: str) -> int:
        """One text time in µs; :class:`ValueError` with the reason otherwise."""
        stripped = text.strip()
        if stripped.endswith(("Z", "z")):
            stripped = stripped[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(stripped)
        except ValueError:
            raise ValueError(f"not a time: {text!r}") from None
        if parsed.tzinfo is None:
            if self.zone is None:
                raise ValueError(f"{text!r} has no UTC offset: give --timezone (e.g. "
                                 "--timezone UTC) to read times without one")
            parsed = _localize(parsed, self.zone, text)
        us = to_micros(parsed)
        if not MIN_MICROS <= us < MAX_MICROS:
            raise ValueError(f"{text!r} is outside the accepted range 1900..2200")
        return us

    def localize(self, column: pa.Array) -> pa.Array:
        """A naive timestamp (or date) column as UTC µs, read in ``--timezone``."""
        if pa.types.is_date(column.type):
            column = pc.cast(column, pa.timestamp("us"))
        if self.zone is None or self.timezone is None:
            return column
        naive = pc.cast(column, pa.timestamp("us"))
        return pc.assume_timezone(naive, timezone=self.timezone, ambiguous="earliest",
                                  nonexistent="raise").cast(_TIMESTAMP)


def _localize(naive: datetime, zone: ZoneInfo, text: str) -> datetime:
    """A wall time in ``zone``: an ambiguous one as its first occurrence (``fold=0``);
    one the clock skipped is refused."""
    aware = naive.replace(tzinfo=zone)
    if aware.astimezone(_UTC).astimezone(zone).replace(tzinfo=None) != naive:
        raise ValueError(f"{text!r} never happened in {zone.key} (the clock skipped it)")
    return aware
