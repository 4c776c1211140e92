"""The package graph script reads the real imports (the layers contract is checked by
``lint-imports`` in CI; this checks the script that draws the graph of
``docs/design/layers.md``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.package_graph import cycles, package_graph

SCRIPT = Path(__file__).with_name("package_graph.py")


def test_the_graph_holds_the_imports_of_the_code() -> None:
    graph = package_graph()
    assert graph["store"]["features"] >= 1  # the history evaluates feature definitions
    assert "store" not in graph["features"]
    assert "testing" not in graph["log"]
    assert set(graph["time"]) == {"errors"}
    assert "errors" not in graph  # the root of everything imports nothing of ours
    assert all(n >= 1 for targets in graph.values() for n in targets.values())
    assert "__main__" not in graph


def test_the_script_prints_the_graph_and_its_cycles() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          check=True, timeout=120)
    lines = done.stdout.splitlines()
    assert "time -> errors(1)" in lines
    found = cycles(package_graph())
    assert f"cycles: {len(found)}" in lines
    assert all("  " + " <-> ".join(c) in lines for c in found)
