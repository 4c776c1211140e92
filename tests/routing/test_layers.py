"""Routing sits below serving, bandits and evaluation; serving, bandits and labels form no
cycle. Every import counts, at module level or inside a function or ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

import headwater

ROOT = Path(headwater.__file__).parent


def imported_packages(package: str) -> set[str]:
    """The Headwater packages (or top-level modules) that ``package`` imports."""
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = ([f"{node.module}.{alias.name}" for alias in node.names]
                         if node.module == "headwater" else [node.module])
            found.update(name.split(".")[1] for name in names
                         if name.startswith("headwater."))
    found.discard(package)
    return found


def test_routing_and_stats_need_only_the_errors() -> None:
    assert imported_packages("routing") == {"errors"}
    assert imported_packages("stats") == {"errors"}


def test_labels_bandits_and_serving_import_downwards_only() -> None:
    assert not imported_packages("labels") & {"serving", "bandits", "evaluation", "learning"}
    assert not imported_packages("bandits") & {"serving", "evaluation", "learning"}
    assert not imported_packages("serving") & {"evaluation", "learning"}


def test_a_cycle_would_be_seen() -> None:
    assert {"serving", "bandits", "labels", "routing"} <= imported_packages("cli")
