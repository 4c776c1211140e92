"""A :class:`~headwater.reports.document.Report` in the terminal, with Rich.

Text is printed as paragraphs (verdicts in green or red), tables as Rich tables, and a
line plot as one row per line: its points, first, last, min and max, and a sparkline.

>>> from rich.console import Console
>>> from headwater.reports.document import Report
>>> report = Report("Shadow").text("agreement 0.98")
>>> render(report.line_plot({"auc": ([1, 2, 3], [0.5, 0.7, 0.9])}),
...        Console(width=60, color_system=None))
Shadow
agreement 0.98
┏━━━━━━┳━━━━━━━━┳━━━━━━━┳━━━━━━┳━━━━━┳━━━━━┳━━━━━┓
┃ line ┃ points ┃ first ┃ last ┃ min ┃ max ┃     ┃
┡━━━━━━╇━━━━━━━━╇━━━━━━━╇━━━━━━╇━━━━━╇━━━━━╇━━━━━┩
│ auc  │ 3      │ 0.5   │ 0.9  │ 0.5 │ 0.9 │ ▁▄█ │
└──────┴────────┴───────┴──────┴─────┴─────┴─────┘
>>> sparkline([0.0, 0.5, 1.0])
'▁▄█'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from rich.console import Console
from rich.rule import Rule
from rich.table import Table as RichTable
from rich.text import Text as RichText

from headwater.reports.document import Block, LinePlot, Report, Table, Text, format_cell

__all__ = ["render", "sparkline"]

_BARS: Final = "▁▂▃▄▅▆▇█"
_TONES: Final = {"": "", "good": "bold green", "bad": "bold red"}


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """The values as block characters, resampled to at most ``width``; NaN as a space."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[int(i * step)] for i in range(width)]
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return " " * len(values)
    low, high = min(finite), max(finite)
    span = high - low or 1.0
    return "".join(" " if math.isnan(v) else _BARS[int((v - low) / span * (len(_BARS) - 1))]
                   for v in values)


def _block(block: Block, console: Console) -> None:
    if isinstance(block, Text):
        console.print(RichText(block.text, style=_TONES.get(block.tone, "")))
    elif isinstance(block, Table):
        table = RichTable(*block.columns)
        for row in block.rows:
            table.add_row(*(format_cell(v) for v in row))
        console.print(table)
    elif isinstance(block, LinePlot):
        table = RichTable("line", "points", "first", "last", "min", "max", "",
                          title=block.title or None)
        for name, (_, y) in block.series.items():
            finite = [v for v in y if not math.isnan(v)]
            table.add_row(name, format_cell(len(y)),
                          *(format_cell(v) for v in (
                              y[0] if y else None, y[-1] if y else None,
                              min(finite) if finite else None, max(finite) if finite else None)),
                          sparkline(y))
        console.print(table)


def render(report: Report, console: Console | None = None) -> None:
    """Print the report on ``console`` (default: standard output)."""
    console = console or Console(highlight=False)
    console.print(RichText(report.title, style="bold underline"))
    for section in report.sections:
        if section.name:
            console.print(Rule(section.name, align="left"))
        for block in section.blocks:
            _block(block, console)
