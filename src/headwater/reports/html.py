"""A :class:`~headwater.reports.document.Report` as one self-contained HTML file.

Styles are inline and figures are inline SVG: the file opens anywhere, offline, and
fetches nothing. Every text is escaped.

>>> from headwater.reports.document import Report
>>> page = to_html(Report("A <b>title</b>").text("1 < 2").table(["a"], [[1.5]]))
>>> "A &lt;b&gt;title&lt;/b&gt;" in page and "1 &lt; 2" in page and "<td>1.5</td>" in page
True
"""

from __future__ import annotations

import os
from html import escape
from pathlib import Path
from typing import Final

from headwater.fsync import atomic_write
from headwater.reports.document import Block, LinePlot, Report, Table, Text, format_cell
from headwater.reports.figures import line_plot_svg

__all__ = ["to_html", "write_html"]

_STYLE: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;
margin:2rem auto;padding:0 1rem;color:#1b1f24;line-height:1.45}
h1{font-size:1.6rem;border-bottom:2px solid #2a6f97;padding-bottom:.3rem}
h2{font-size:1.2rem;margin-top:2rem;color:#2a6f97}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left}
th{background:#f3f6f9}td{font-variant-numeric:tabular-nums}
p.good{color:#1a7f37;font-weight:600}p.bad{color:#cf222e;font-weight:600}
figure{margin:1rem 0}figure svg{max-width:100%;height:auto}
"""


def _block(block: Block) -> str:
    if isinstance(block, Text):
        tone = f' class="{block.tone}"' if block.tone else ""
        return f"<p{tone}>{escape(block.text)}</p>"
    if isinstance(block, Table):
        head = "".join(f"<th>{escape(c)}</th>" for c in block.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(format_cell(v))}</td>" for v in row) + "</tr>"
            for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, LinePlot):
        caption = f"<figcaption>{escape(block.title)}</figcaption>" if block.title else ""
        return f"<figure>{line_plot_svg(block)}{caption}</figure>"
    raise TypeError(f"unknown block {block!r}")


def to_html(report: Report) -> str:
    """The whole document."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{escape(report.title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{escape(report.title)}</h1>"]
    for section in report.sections:
        if section.name:
            parts.append(f"<h2>{escape(section.name)}</h2>")
        parts.extend(_block(b) for b in section.blocks)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(report: Report, path: str | os.PathLike[str]) -> Path:
    """Write the document to ``path`` (parents created) through a temporary file, so a
    reader never sees half a report; return the path. Not fsynced: a report is made
    again from its data."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, to_html(report).encode(), fsync="never")
    return target
