"""The one time representation: int64 microseconds since the Unix epoch, UTC.

Inside Headwater every instant is a plain ``int`` of microseconds (event time, append
time, offsets of windows).  Aware :class:`~datetime.datetime` objects and ISO 8601
strings are accepted and produced only at the edges, and a naive datetime is always an
error, never silently assumed to be UTC.

Code never reads the wall clock directly: it takes a :class:`Clock`.

>>> from datetime import datetime, timezone
>>> to_micros(datetime(1996, 5, 7, tzinfo=timezone.utc))
831427200000000
>>> format_micros(831427200000000)
'1996-05-07T00:00:00.000000+00:00'
>>> clock = ManualClock(10)
>>> clock.advance(5)
15
>>> clock.now_us()
15
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol, runtime_checkable

from headwater.errors import TimestampError

__all__ = [
    "MAX_MICROS",
    "MIN_MICROS",
    "Clock",
    "ManualClock",
    "SystemClock",
    "format_duration",
    "format_micros",
    "from_micros",
    "parse_duration",
    "parse_timestamp",
    "to_micros",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: The earliest instant accepted as an event time (1900-01-01T00:00Z).
MIN_MICROS: Final = -2_208_988_800_000_000
#: The latest instant accepted as an event time (2200-01-01T00:00Z).
MAX_MICROS: Final = 7_258_118_400_000_000

_MICROS_PER: Final = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000,
                      "h": 3_600_000_000, "d": 86_400_000_000, "w": 604_800_000_000}


def to_micros(value: datetime, *, field: str = "timestamp") -> int:
    """Convert an aware datetime to microseconds since the epoch.

    Raises :class:`~headwater.errors.TimestampError` for a naive datetime.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise TimestampError(field, "naive datetime: a timezone is required")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    """The aware UTC datetime for ``us`` microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=us)


def format_micros(us: int) -> str:
    """ISO 8601 text with microseconds and an explicit ``+00:00`` offset."""
    return from_micros(us).isoformat(timespec="microseconds")


def parse_timestamp(value: object, *, field: str = "timestamp") -> int:
    """Read an instant from the edge: an aware datetime, ISO 8601 text with an offset,
    or an ``int`` already in microseconds.

    The result is checked against [:data:`MIN_MICROS`, :data:`MAX_MICROS`).
    """
    if isinstance(value, bool):
        raise TimestampError(field, "expected a timestamp, got bool")
    if isinstance(value, int):
        us = value
    elif isinstance(value, datetime):
        us = to_micros(value, field=field)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise TimestampError(field, f"not an ISO 8601 timestamp: {value!r}") from None
        us = to_micros(parsed, field=field)
    else:
        raise TimestampError(field, f"expected a timestamp, got {type(value).__name__}")
    check_range(us, field=field)
    return us


def check_range(us: int, *, field: str = "timestamp") -> None:
    """Raise :class:`~headwater.errors.TimestampError` outside the accepted range."""
    if not MIN_MICROS <= us < MAX_MICROS:
        raise TimestampError(field, f"{us} is outside the accepted range 1900..2200")


def format_duration(us: int) -> str:
    """A duration in the units :func:`parse_duration` reads, largest first.

    >>> format_duration(604_800_000_000), format_duration(5_400_000_000), format_duration(0)
    ('7d', '1h30m', '0s')
    """
    if us == 0:
        return "0s"
    sign, us = ("-", -us) if us < 0 else ("", us)
    parts = []
    for unit, size in (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000),
                       ("s", 1_000_000), ("ms", 1_000), ("us", 1)):
        count, us = divmod(us, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def parse_duration(text: str | int, *, field: str = "duration") -> int:
    """Microseconds in a duration such as ``"500ms"``, ``"30m"``, ``"7d"`` or an int (µs).

    >>> parse_duration("1h30m")
    5400000000
    """
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise TimestampError(field, "a duration cannot be negative")
        return text
    if not isinstance(text, str) or not text.strip():
        raise TimestampError(field, f"expected a duration such as '30m', got {text!r}")
    total, number = 0, ""
    rest = text.strip().lower()
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch.isdigit():
            number += ch
            i += 1
            continue
        unit = "us" if rest.startswith("us", i) else "ms" if rest.startswith("ms", i) else ch
        if unit not in _MICROS_PER or not number:
            raise TimestampError(field, f"cannot read duration {text!r}: use e.g. 500ms, 30s, 2h")
        total += int(number) * _MICROS_PER[unit]
        number = ""
        i += len(unit)
    if number:
        raise TimestampError(field, f"duration {text!r} lacks a unit (us, ms, s, m, h, d, w)")
    return total


@runtime_checkable
class Clock(Protocol):
    """Where "now" comes from; injected everywhere time is read."""

    def now_us(self) -> int:
        """Microseconds since the epoch."""
        ...


class SystemClock:
    """The wall clock of this machine."""

    def now_us(self) -> int:
        return time.time_ns() // 1_000


class ManualClock:
    """A clock that moves only when told to, for tests and simulations."""

    def __init__(self, start_us: int = 0) -> None:
        self._now = start_us

    def now_us(self) -> int:
        return self._now

    def set(self, us: int) -> None:
        """Jump to ``us``; a clock may be set backwards, as real clocks are."""
        self._now = us

    def advance(self, us: int) -> int:
        """Move forward by ``us`` microseconds and return the new time."""
        self._now += us
        return self._now
