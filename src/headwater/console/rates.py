"""Rates from counters read at intervals, and the recent history the charts draw.

The console reads counters (events in a topic, requests answered) each time a page
polls; :class:`Rates` keeps the last readings of each and answers the rate over the
latest interval and a bounded series of ``(time, rate)`` points. It holds plain values
and takes the time it is given, so it is tested without a clock.

>>> rates = Rates(points=3)
>>> rates.observe("events", 0, at_us=0)
>>> rates.observe("events", 50, at_us=10_000_000)
>>> rates.rate("events")
5.0
>>> rates.observe("events", 20, at_us=20_000_000)  # a counter that went back: a restart
>>> rates.rate("events")
0.0
>>> rates.series("events")
([10.0, 20.0], [5.0, 0.0])
"""

from __future__ import annotations

from collections import deque
from typing import Final

__all__ = ["Rates"]

_US: Final = 1_000_000


class Rates:
    """Per named counter: the latest reading and the last ``points`` rates."""

    def __init__(self, *, points: int = 120) -> None:
        self.points = points
        self._last: dict[str, tuple[int, float]] = {}
        self._series: dict[str, deque[tuple[int, float]]] = {}

    def observe(self, name: str, value: float, *, at_us: int) -> None:
        """Record ``value`` of counter ``name`` read at ``at_us``. A reading no later than
        the previous one is ignored; a counter that went down (its process restarted)
        counts as a rate of 0 for that interval."""
        last = self._last.get(name)
        if last is not None and at_us <= last[0]:
            return
        self._last[name] = (at_us, value)
        if last is None:
            return
        then, before = last
        rate = max(0.0, value - before) * _US / (at_us - then)
        series = self._series.setdefault(name, deque(maxlen=self.points))
        series.append((at_us, rate))

    def rate(self, name: str) -> float | None:
        """The rate per second over the latest interval (``None`` before two readings)."""
        series = self._series.get(name)
        return series[-1][1] if series else None

    def series(self, name: str) -> tuple[list[float], list[float]]:
        """The recent rates of ``name``: times (seconds since the epoch) and rates."""
        points = self._series.get(name, ())
        return [t / _US for t, _ in points], [r for _, r in points]
