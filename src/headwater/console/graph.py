"""The lineage of a model's versions as an SVG graph: one lane per trainer, versions in
the order they were made, an edge from each parent to its child.

A node links to the version's page; its tooltip says what made it (trainer, trigger,
reason), the slice it learnt from and its status. Rejected versions are red, archived
ones grey, and versions an alias points at carry the alias' name. The layout is a
plain grid (lane by trainer, column by version), so the page needs no layout library
and no script to draw it.

>>> from headwater.registry import Lineage
>>> from headwater.registry.records import Artifact, ModelVersion
>>> art = Artifact(sha256="0" * 64, files=1, bytes=1)
>>> vs = [ModelVersion(model="m", version=1, artifact=art, lineage=Lineage(), status_at=0),
...       ModelVersion(model="m", version=2, artifact=art, lineage=Lineage(parent=1),
...                    status_at=0)]
>>> svg = lineage_svg("m", vs, {"champion": 2})
>>> svg.count('class="node'), svg.count('class="edge"'), "champion" in svg
(2, 1, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Final
from urllib.parse import quote

from headwater.registry import ModelVersion

__all__ = ["lineage_svg"]

_COLUMN: Final = 46
_LANE: Final = 64
_LEFT: Final = 150
_TOP: Final = 30
_RADIUS: Final = 11


def lineage_svg(model: str, versions: Sequence[ModelVersion],
                aliases: Mapping[str, int]) -> str:
    """The SVG of ``versions`` of ``model`` (in version order), ``aliases`` marked."""
    ordered = sorted(versions, key=lambda v: v.version)
    lanes: dict[str, int] = {}
    for v in ordered:
        lanes.setdefault(v.lineage.created_by.trainer, len(lanes))
    where = {v.version: (_LEFT + i * _COLUMN, _TOP + lanes[v.lineage.created_by.trainer] * _LANE)
             for i, v in enumerate(ordered)}
    named: dict[int, list[str]] = {}
    for alias, version in sorted(aliases.items()):
        named.setdefault(version, []).append(alias)
    width = _LEFT + len(ordered) * _COLUMN + 40
    height = _TOP + max(len(lanes), 1) * _LANE
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="lineage of {escape(model)}">']
    for trainer, lane in lanes.items():
        parts.append(f'<text class="lane" x="8" y="{_TOP + lane * _LANE + 4}">'
                     f"{escape(trainer)}</text>")
    for v in ordered:
        parent = v.lineage.parent
        if parent is None or parent not in where:
            continue
        (x0, y0), (x1, y1) = where[parent], where[v.version]
        middle = (x0 + x1) / 2
        parts.append(f'<path class="edge" d="M{x0 + _RADIUS},{y0} C{middle},{y0} {middle},{y1} '
                     f'{x1 - _RADIUS},{y1}"/>')
    for v in ordered:
        x, y = where[v.version]
        made = v.lineage.created_by
        examples = v.lineage.training.examples if v.lineage.training else 0
        tip = [f"v{v.version} by {made.trainer} ({made.trigger})",
               f"parent: v{v.lineage.parent}" if v.lineage.parent else "no parent",
               f"slice: {examples} examples", f"status: {v.status}"]
        if made.reason:
            tip.append(made.reason)
        if v.status_reason:
            tip.append(v.status_reason)
        href = f"/models/{quote(model, safe='')}/{v.version}"
        parts.append(
            f'<a href="{href}"><g class="node {v.status}" data-version="{v.version}">'
            f"<title>{escape(chr(10).join(tip))}</title>"
            f'<circle cx="{x}" cy="{y}" r="{_RADIUS}"/>'
            f'<text x="{x}" y="{y + 26}" text-anchor="middle">v{v.version}</text>')
        for i, alias in enumerate(named.get(v.version, ())):
            parts.append(f'<text class="alias" x="{x}" y="{y - 16 - 12 * i}" '
                         f'text-anchor="middle">{escape(alias)}</text>')
        parts.append("</g></a>")
    parts.append("</svg>")
    return "".join(parts)
