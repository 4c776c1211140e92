"""Reports: the document, its HTML (self-contained, escaped, stable) and the terminal."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from rich.console import Console

import headwater.reports
from headwater.errors import ValidationError
from headwater.reports import LinePlot, Report, render, sparkline, to_html

PUBLIC = ["Block", "Cell", "LinePlot", "Report", "Section", "Series", "Table", "Text",
          "format_cell", "line_plot_svg", "render", "sparkline", "to_html", "write_html"]


def test_exported_members() -> None:
    assert sorted(headwater.reports.__all__) == sorted(PUBLIC)
    assert headwater.reports.__doc__
    for name in PUBLIC:
        assert hasattr(headwater.reports, name), name


def _report() -> Report:
    return (Report("Canary <v2>")
            .text("Rolled back: p99 latency over the guardrail.", tone="bad")
            .section("Metrics")
            .table(["metric", "champion", "challenger"], [["auc", 0.8, 0.75], ["n", 10, None]])
            .line_plot({"champion": ([0, 1, 2], [0.8, 0.81, 0.8]),
                        "challenger": ([0, 1, 2], [0.7, math.nan, 0.75])},
                       title="AUC over time", xlabel="t", ylabel="auc",
                       hlines={"guardrail": 0.72}))


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.html"
    _report().write(path)
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "Canary &lt;v2&gt;" in page
    assert page.count("<svg") == 1
    assert '<p class="bad">' in page
    # nothing is fetched when the page is viewed
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page
    assert not list(tmp_path.glob("out/.*partial"))


def test_html_is_the_same_every_time() -> None:
    assert to_html(_report()) == to_html(_report())


def test_terminal_rendering() -> None:
    console = Console(width=100, record=True, color_system=None)
    render(_report(), console)
    text = console.export_text()
    assert "Canary <v2>" in text
    assert "Metrics" in text
    assert "challenger" in text
    assert "AUC over time" in text


def test_positional_plot_labels_and_render_on_the_report() -> None:
    report = Report("r").line_plot({"a": ([0, 1], [1, 2])}, "title", "x", "y")
    plot = report.sections[-1].blocks[-1]
    assert isinstance(plot, LinePlot)
    assert (plot.title, plot.xlabel, plot.ylabel) == ("title", "x", "y")
    console = Console(width=80, record=True, color_system=None)
    report.render(console)
    assert "title" in console.export_text()


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"rows\[0\]"):
        Report("t").table(["a", "b"], [[1]])
    with pytest.raises(ValidationError, match=r"series\.a"):
        Report("t").line_plot({"a": ([1, 2], [1])})
    with pytest.raises(ValidationError, match="title"):
        Report(" ")


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([1.0, 1.0]) == "▁▁"
    assert len(sparkline([float(i) for i in range(100)], width=10)) == 10
    assert sparkline([math.nan, 0.0, 1.0]) == " ▁█"
