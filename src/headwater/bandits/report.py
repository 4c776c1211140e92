"""A self-contained HTML report of a bandit evaluation: tables and inline SVG line charts.

No plotting library and no network: :func:`line_chart` draws series as SVG polylines
(downsampled to at most ``points`` points each), :func:`html_report` puts titled tables
and charts in one HTML page, every text escaped.

>>> svg = line_chart({"bandit": [0.0, 1.0, 1.5], "a/b": [0.0, 2.0, 4.0]}, title="regret")
>>> svg.startswith("<svg") and svg.count("<polyline") == 2
True
>>> page = html_report("Bandits", [("Runs", ["policy", "regret"], [["ucb1", 3.5]])], [svg])
>>> "<td>ucb1</td>" in page and "<svg" in page
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["html_report", "line_chart"]

_COLOURS: Final = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
                   "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_W, _H, _PAD = 720, 320, 48


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def line_chart(series: Mapping[str, Sequence[float] | npt.NDArray[np.float64]], *,
               title: str, x_label: str = "step", points: int = 400) -> str:
    """An SVG chart of each series against its index, with a legend."""
    arrays = {name: np.asarray(values, dtype=np.float64) for name, values in series.items()}
    longest = max((len(v) for v in arrays.values()), default=0)
    finite = [v[np.isfinite(v)] for v in arrays.values() if len(v)]
    lo = min((float(v.min()) for v in finite if len(v)), default=0.0)
    hi = max((float(v.max()) for v in finite if len(v)), default=1.0)
    if hi <= lo:
        hi = lo + 1.0
    span_x = max(longest - 1, 1)

    def xy(i: int, value: float) -> str:
        x = _PAD + (_W - 2 * _PAD) * i / span_x
        y = _H - _PAD - (_H - 2 * _PAD) * (value - lo) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
             f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="12">',
             f'<text x="{_W / 2}" y="20" text-anchor="middle" font-size="14">'
             f"{escape(title)}</text>",
             f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" '
             'stroke="#333"/>',
             f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#333"/>',
             f'<text x="{_PAD - 4}" y="{_PAD + 4}" text-anchor="end">{_fmt(hi)}</text>',
             f'<text x="{_PAD - 4}" y="{_H - _PAD}" text-anchor="end">{_fmt(lo)}</text>',
             f'<text x="{_W - _PAD}" y="{_H - _PAD + 16}" text-anchor="end">'
             f"{escape(x_label)} {longest}</text>"]
    if lo < 0.0 < hi:
        zero = xy(0, 0.0).split(",")[1]
        parts.append(f'<line x1="{_PAD}" y1="{zero}" x2="{_W - _PAD}" y2="{zero}" '
                     'stroke="#bbb" stroke-dasharray="4 3"/>')
    for k, (name, values) in enumerate(arrays.items()):
        colour = _COLOURS[k % len(_COLOURS)]
        if len(values):
            index = np.unique(np.linspace(0, len(values) - 1, min(points, len(values)))
                              .astype(np.int64))
            path = " ".join(xy(int(i), float(values[i])) for i in index
                            if np.isfinite(values[i]))
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                         f'points="{path}"/>')
        y = _PAD + 16 * k
        parts.append(f'<rect x="{_W - _PAD - 150}" y="{y - 9}" width="10" height="10" '
                     f'fill="{colour}"/><text x="{_W - _PAD - 136}" y="{y}">'
                     f"{escape(name)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def html_report(title: str,
                tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[object]]]],
                charts: Sequence[str] = ()) -> str:
    """One HTML page: ``tables`` as ``(caption, header, rows)``, then the SVG ``charts``."""
    body = [f"<h1>{escape(title)}</h1>"]
    for caption, header, rows in tables:
        body.append(f"<h2>{escape(caption)}</h2><table><tr>"
                    + "".join(f"<th>{escape(str(h))}</th>" for h in header) + "</tr>")
        for row in rows:
            body.append("<tr>" + "".join(f"<td>{escape(_fmt(c))}</td>" for c in row) + "</tr>")
        body.append("</table>")
    body.extend(f"<figure>{chart}</figure>" for chart in charts)
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
             "th{background:#f4f4f4}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{escape(title)}"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")
