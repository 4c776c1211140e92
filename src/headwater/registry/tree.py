"""The lineage tree of a model: every version under the one it was trained from.

Continual learning makes long chains (each version the parent of the next) with a few
branches, so the tree is also cut into *lines* for drawing: a line is a chain of
versions, each the parent of the next, drawn at one indentation; a line starts at a
root or branches off a version of another line. At every version the line continues
into the child with the largest subtree (the lowest number on a tie), so the main line
of descent stays straight and indentation grows at most logarithmically with the
number of versions.

>>> from headwater.registry.records import Artifact, ModelVersion
>>> from headwater.registry.lineage import Lineage
>>> def v(n, parent=None):
...     return ModelVersion(model="m", version=n, artifact=Artifact(sha256="", files=1, bytes=1),
...                         lineage=Lineage(parent=parent), status_at=0)
>>> tree = LineageTree.build("m", [v(1), v(2, 1), v(3, 2), v(4, 1), v(5)], {"champion": 3})
>>> tree.roots, tree.children[1], tree.aliases[3]
((1, 5), (2, 4), ('champion',))
>>> [(line.branch_of, line.versions) for line in tree.lines()]
[(None, (1, 2, 3)), (1, (4,)), (None, (5,))]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

import msgspec

from headwater.registry.records import ModelVersion

__all__ = ["Line", "LineageTree"]


class Line(NamedTuple):
    """A chain of versions drawn at one indentation, branching off ``branch_of``
    (``None``: it starts at a root)."""

    branch_of: int | None
    versions: tuple[int, ...]


class LineageTree(msgspec.Struct, frozen=True, kw_only=True):
    """All versions of a model (or a part of them), linked parent to children."""

    model: str
    versions: dict[int, ModelVersion]
    children: dict[int, tuple[int, ...]]
    """Each version's children, by number."""
    roots: tuple[int, ...]
    """Versions whose parent is not in the tree, by number."""
    aliases: dict[int, tuple[str, ...]]
    """The aliases pointing at each version that has any."""

    @classmethod
    def build(cls, model: str, versions: Iterable[ModelVersion],
              aliases: Mapping[str, int]) -> LineageTree:
        """The tree of ``versions``; a version whose parent is not among them is a root."""
        by_number = {v.version: v for v in sorted(versions, key=lambda v: v.version)}
        children: dict[int, list[int]] = {n: [] for n in by_number}
        roots = []
        for number, version in by_number.items():
            if version.parent in by_number:
                children[version.parent].append(number)
            else:
                roots.append(number)
        marks: dict[int, list[str]] = {}
        for alias, number in sorted(aliases.items()):
            if number in by_number:
                marks.setdefault(number, []).append(alias)
        return cls(model=model, versions=by_number,
                   children={n: tuple(c) for n, c in children.items()}, roots=tuple(roots),
                   aliases={n: tuple(a) for n, a in marks.items()})

    def sizes(self) -> dict[int, int]:
        """How many versions each version's subtree holds (itself included)."""
        order: list[int] = []
        pending = list(self.roots)
        while pending:
            number = pending.pop()
            order.append(number)
            pending.extend(self.children[number])
        sizes: dict[int, int] = {}
        for number in reversed(order):
            sizes[number] = 1 + sum(sizes[c] for c in self.children[number])
        return sizes

    def lines(self) -> list[Line]:
        """The tree cut into lines, each after the line it branches off."""
        sizes = self.sizes()
        result: list[Line] = []
        pending: list[tuple[int | None, int]] = [(None, r) for r in reversed(self.roots)]
        while pending:
            branch_of, number = pending.pop()
            chain = [number]
            branches: list[tuple[int | None, int]] = []
            while self.children[number]:
                kids = self.children[number]
                heaviest = max(kids, key=lambda c: (sizes[c], -c))
                branches.extend((number, c) for c in kids if c != heaviest)
                chain.append(heaviest)
                number = heaviest
            result.append(Line(branch_of, tuple(chain)))
            pending.extend(reversed(branches))
        return result
