"""The package-level import graph of ``headwater``, and its cycles.

The graph is grimp's, the one import-linter checks the layers contract of
``pyproject.toml`` against: an edge ``a -> b (n)`` means ``n`` modules of ``headwater.a``
import modules of ``headwater.b`` (counted as importer/imported pairs), at the top of a
file, inside a function or under ``TYPE_CHECKING`` alike. Top-level modules (``time``,
``errors``) count as packages of their own; ``__main__`` is left out.

``python tests/package_graph.py`` prints, for each package, the packages it imports with
the counts, then the cycles (the strongly connected components of two or more packages)
and the pairs that import each other;
``docs/design/layers.md`` shows its output from before and after the layers were drawn.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping

import grimp

ROOT = "headwater"
_SKIPPED = frozenset({f"{ROOT}.__main__"})

Graph = dict[str, dict[str, int]]
"""Importing package -> imported package -> number of importing lines."""


def package_graph(root: str = ROOT) -> Graph:
    """Every import between two packages of ``root``, counted by importing module and
    imported module (a pair importing several names counts once)."""
    graph = grimp.build_graph(root, cache_dir=None)
    edges: Graph = {}
    for module in sorted(graph.modules):
        importer = _package(module, root)
        if importer is None:
            continue
        for target in graph.find_modules_directly_imported_by(module):
            imported = _package(target, root)
            if imported is not None and imported != importer:
                targets = edges.setdefault(importer, {})
                targets[imported] = targets.get(imported, 0) + 1
    return edges


def cycles(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """The strongly connected components of two or more packages, each sorted (Tarjan).

    >>> cycles({"a": {"b": 1}, "b": {"a": 1, "c": 1}, "c": {}})
    [['a', 'b']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    nodes = sorted(set(graph) | {n for targets in graph.values() for n in targets})
    for node in nodes:
        if node not in index:
            visit(node)
    return sorted(found)


def lines(graph: Mapping[str, Mapping[str, int]]) -> Iterator[str]:
    """The graph as text: each package's imports, then the cycles.

    >>> print("\\n".join(lines({"a": {"b": 2, "c": 1}, "b": {"a": 1}})))
    a -> b(2) c(1)
    b -> a(1)
    cycles: 1
      a <-> b
    packages importing each other: 1
      a <-> b
    """
    for importer in sorted(graph):
        targets = " ".join(f"{b}({n})" for b, n in sorted(graph[importer].items()))
        yield f"{importer} -> {targets}"
    found = cycles(graph)
    yield f"cycles: {len(found)}"
    for component in found:
        yield "  " + " <-> ".join(component)
    mutual = [(a, b) for a in sorted(graph) for b in sorted(graph[a])
              if a < b and a in graph.get(b, {})]
    yield f"packages importing each other: {len(mutual)}"
    for a, b in mutual:
        yield f"  {a} <-> {b}"


def _package(module: str, root: str) -> str | None:
    """The package of ``root`` that ``module`` belongs to (``None``: outside, or the
    root's own ``__init__`` and ``__main__``)."""
    parts = module.split(".")
    if parts[0] != root or len(parts) < 2 or module in _SKIPPED:
        return None
    return parts[1]


if __name__ == "__main__":
    sys.stdout.write("".join(f"{line}\n" for line in lines(package_graph())))
