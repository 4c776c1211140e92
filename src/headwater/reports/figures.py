"""Figures as inline SVG, drawn by matplotlib without pyplot or a display.

A :class:`~headwater.reports.document.LinePlot` becomes an ``<svg>`` element: text is
drawn as paths (no font is needed where the report is viewed) and nothing in it
depends on when it was drawn, so the same plot gives the same bytes. matplotlib is
imported on the first figure only.

>>> from headwater.reports.document import LinePlot
>>> svg = line_plot_svg(LinePlot({"a": ((0.0, 1.0), (0.5, 0.75))}, "t", "x", "y"))
>>> svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
True
"""

from __future__ import annotations

import io
import re
from typing import Final

from headwater.reports.document import LinePlot

__all__ = ["line_plot_svg"]

_HEAD: Final = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_SIZE: Final = (7.0, 3.2)  # inches


def line_plot_svg(plot: LinePlot) -> str:
    """The plot as an ``<svg>`` element (no XML declaration, no doctype)."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.hashsalt": "headwater", "svg.fonttype": "path"}):
        figure = Figure(figsize=_SIZE, layout="constrained")
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        for name, (x, y) in plot.series.items():
            axes.plot(x, y, label=name, linewidth=1.4, marker="o" if len(x) <= 20 else None,
                      markersize=3)
        for i, (name, value) in enumerate(plot.hlines.items()):
            axes.axhline(value, color=f"C{len(plot.series) + i}", linestyle="--",
                         linewidth=1.0, label=name)
        axes.set_title(plot.title, fontsize=10)
        axes.set_xlabel(plot.xlabel, fontsize=9)
        axes.set_ylabel(plot.ylabel, fontsize=9)
        axes.tick_params(labelsize=8)
        axes.grid(True, alpha=0.3)
        if len(plot.series) + len(plot.hlines) > 1:
            axes.legend(fontsize=8, frameon=False)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return _HEAD.sub("", buffer.getvalue(), count=1)
