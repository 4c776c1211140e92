"""What a long-running command says while it runs: a periodic status line with counts
and rates on standard error (``--quiet`` silences it), and its Prometheus metrics on
``--metrics-port`` (:mod:`headwater.cli.metrics`, imported only when asked for).

>>> from headwater.time import ManualClock
>>> clock, seen = ManualClock(0), {"events": 0}
>>> lines = []
>>> line = StatusLine("engine", lambda: dict(seen), every_us=10_000_000, clock=clock,
...                   say=lines.append)
>>> seen["events"] = 1500; clock.advance(10_000_000); line.tick()
10000000
>>> lines
['engine: 1,500 events (150.0/s)']
>>> clock.advance(5_000_000); line.tick(); lines[1:]  # not yet: every 10 s
15000000
[]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import typer

from headwater.cli.common import format_count, status
from headwater.time import Clock, SystemClock

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

__all__ = ["MetricsPortOption", "StatusLine", "TrainerCounts", "metrics_on"]

MetricsPortOption = Annotated[int | None, typer.Option(
    "--metrics-port", min=0, help="Serve Prometheus metrics on http://127.0.0.1:PORT/metrics "
    "(needs 'headwater[serve]').")]


@dataclass
class TrainerCounts:
    """What a trainer's loop counts: versions published and rejected, trigger fires by
    kind, the last publication (µs), reverts of the live model to its checkpoint, and a
    reader of the rows learnt."""

    rows: Callable[[], int]
    published: int = 0
    rejected: int = 0
    fires: dict[str, int] = field(default_factory=dict)
    last_published_us: int | None = None
    reverts: int = 0



class StatusLine:
    """Every ``every_us``, one line: each count read from ``counts``, with its rate since
    the previous line. Silent when ``quiet``."""

    def __init__(self, name: str, counts: Callable[[], Mapping[str, int]], *, every_us: int,
                 quiet: bool = False, clock: Clock | None = None,
                 say: Callable[[str], Any] | None = None) -> None:
        self.name = name
        self.counts = counts
        self.every_us = every_us
        self.quiet = quiet
        self.clock: Clock = clock or SystemClock()
        self.say = say or (lambda text: status().print(text, markup=False, soft_wrap=True))
        self._at = self.clock.now_us()
        self._last = dict(counts())

    def tick(self) -> None:
        """Print the line if ``every_us`` has passed since the last one."""
        if self.clock.now_us() - self._at >= self.every_us:
            self.print()

    def print(self) -> None:
        """Print the line now."""
        now, counts = self.clock.now_us(), dict(self.counts())
        seconds = max(now - self._at, 1) / 1e6
        parts = []
        for what, n in counts.items():
            rate = (n - self._last.get(what, 0)) / seconds
            parts.append(f"{format_count(n)} {what} ({rate:,.1f}/s)")
        self._at, self._last = now, counts
        if not self.quiet:
            self.say(f"{self.name}: {', '.join(parts)}")


@contextmanager
def metrics_on(port: int | None, collector: Callable[[], Collector]) -> Iterator[None]:
    """Serve the metrics ``collector()`` reads on ``port`` for the ``with`` block
    (nothing, and no import of prometheus-client, when ``port`` is ``None``)."""
    if port is None:
        yield
        return
    from headwater.cli.metrics import exposed

    with exposed(port, collector()):
        status().print(f"metrics on http://127.0.0.1:{port}/metrics")
        yield
