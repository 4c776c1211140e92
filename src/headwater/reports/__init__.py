"""Reports: a title, sections of text, tables and plots, for a browser or a terminal.

Every evaluation (``headwater eval …``) and every demo describes its result as a
:class:`Report` — plain values, built with a few verbs — and hands it to a writer:
:meth:`Report.write` makes one self-contained HTML file (inline styles, figures as
inline SVG drawn by matplotlib; nothing is fetched when it is viewed) and
:func:`render` prints it in the terminal with Rich.

>>> import tempfile, pathlib
>>> report = Report("Backtest").text("Walk-forward, 3 folds.")
>>> report = report.section("Folds").table(["fold", "auc"], [[1, 0.81], [2, 0.84]])
>>> path = pathlib.Path(tempfile.mkdtemp()) / "backtest.html"
>>> report.write(path)
>>> "<h2>Folds</h2>" in path.read_text()
True
"""

from headwater.reports.document import (
    Block,
    Cell,
    LinePlot,
    Report,
    Section,
    Series,
    Table,
    Text,
    format_cell,
)
from headwater.reports.figures import line_plot_svg
from headwater.reports.html import to_html, write_html
from headwater.reports.terminal import render, sparkline

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
    "line_plot_svg",
    "render",
    "sparkline",
    "to_html",
    "write_html",
]
