"""A report as plain values: a title, then sections of text, tables and line plots.

A :class:`Report` is built with a few verbs and rendered by the writers, never by
itself: :func:`~headwater.reports.html.to_html` (one self-contained HTML file, figures
as inline SVG) and :func:`~headwater.reports.terminal.render` (Rich, for the terminal).
Blocks go into the section opened last (before any, into the report's head).

>>> report = Report("Prequential evaluation")
>>> report.text("Test-then-train over 100 examples.").section("Metrics").table(
...     ["metric", "value"], [["accuracy", 0.91234], ["log_loss", None]])
Report('Prequential evaluation', sections=2)
>>> report.line_plot({"accuracy": ([1, 2, 3], [0.5, 0.75, 0.8])}, title="Accuracy",
...                  xlabel="examples", ylabel="accuracy").sections[-1].name
'Metrics'
>>> [type(b).__name__ for b in report.sections[-1].blocks]
['Table', 'LinePlot']
>>> format_cell(0.91234), format_cell(None), format_cell(12345678), format_cell(True)
('0.9123', '-', '12,345,678', 'yes')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TypeAlias

from headwater.errors import ValidationError

__all__ = [
    "Block",
    "Cell",
    "LinePlot",
    "Report",
    "Section",
    "Series",
    "Table",
    "Text",
    "format_cell",
]

#: A table cell: text, a number, a boolean or nothing.
Cell: TypeAlias = str | int | float | bool | None
#: One line of a plot: x values and y values of one length.
Series: TypeAlias = tuple[Sequence[float], Sequence[float]]


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text."""

    text: str
    tone: str = ""  # "", "good" or "bad": how a writer may colour it


@dataclass(frozen=True)
class Table:
    """Columns and rows of cells."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class LinePlot:
    """Named lines over a shared x axis; ``hlines`` are horizontal reference lines."""

    series: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]]
    title: str
    xlabel: str
    ylabel: str
    hlines: Mapping[str, float] = field(default_factory=dict)


Block: TypeAlias = Text | Table | LinePlot


@dataclass
class Section:
    """A named run of blocks (the report's head has the name ``""``)."""

    name: str
    blocks: list[Block] = field(default_factory=list)


def format_cell(value: Cell) -> str:
    """How every writer prints a cell: floats to 4 significant digits, ints with
    thousands separators, booleans as yes/no, ``None`` as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _floats(field_name: str, values: Sequence[float]) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ValidationError(field_name, f"expected numbers: {exc}") from None


class Report:
    """A report under construction; every verb returns the report, so calls chain."""

    def __init__(self, title: str) -> None:
        if not isinstance(title, str) or not title.strip():
            raise ValidationError("title", "a report needs a title")
        self.title = title
        self.sections: list[Section] = [Section("")]

    def section(self, name: str) -> Self:
        """Open a new section; the blocks that follow go into it."""
        if not isinstance(name, str) or not name.strip():
            raise ValidationError("section", "a section needs a name")
        self.sections.append(Section(name))
        return self

    def text(self, text: str, *, tone: str = "") -> Self:
        """A paragraph; ``tone`` ``"good"`` or ``"bad"`` marks a verdict."""
        if tone not in ("", "good", "bad"):
            raise ValidationError("tone", f"expected '', 'good' or 'bad', got {tone!r}")
        self.sections[-1].blocks.append(Text(str(text), tone))
        return self

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> Self:
        """A table; every row has one cell per column."""
        names = tuple(str(c) for c in columns)
        body = tuple(tuple(row) for row in rows)
        for i, row in enumerate(body):
            if len(row) != len(names):
                raise ValidationError(f"rows[{i}]", f"expected {len(names)} cells, got "
                                      f"{len(row)}")
        self.sections[-1].blocks.append(Table(names, body))
        return self

    def line_plot(self, series: Mapping[str, Series], title: str = "", xlabel: str = "",
                  ylabel: str = "", *, hlines: Mapping[str, float] | None = None) -> Self:
        """A line plot: ``{name: (x, y)}``; ``hlines`` adds labelled horizontal lines."""
        lines: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {}
        for name, (x, y) in series.items():
            xs, ys = _floats(f"series.{name}.x", x), _floats(f"series.{name}.y", y)
            if len(xs) != len(ys):
                raise ValidationError(f"series.{name}", f"{len(xs)} x values but {len(ys)} "
                                      "y values")
            lines[str(name)] = (xs, ys)
        marks = {str(k): float(v) for k, v in (hlines or {}).items()}
        self.sections[-1].blocks.append(LinePlot(lines, title, xlabel, ylabel, marks))
        return self

    def to_html(self) -> str:
        """The report as one self-contained HTML document."""
        from headwater.reports.html import to_html

        return to_html(self)

    def write(self, path: Any) -> None:
        """Write the HTML document to ``path`` (a string or a path)."""
        from headwater.reports.html import write_html

        write_html(self, path)

    def render(self, console: Any = None) -> None:
        """Print the report in the terminal (a Rich ``Console``; default: standard output)."""
        from headwater.reports.terminal import render

        render(self, console)

    def __repr__(self) -> str:
        return f"Report({self.title!r}, sections={len(self.sections)})"
