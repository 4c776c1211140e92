"""``headwater demo``: the continual-learning loop with its report; ``headwater demo log``:
Elec2 through the embedded log, with every check passing."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from headwater.cli.demo import Figures
from headwater.demos.elec2 import STRATEGIES
from tests.cli.helpers import Cli

ALL_PASS = {"exactly_once": True, "no_dead_letters": True, "no_lag": True, "seek": True}


def _figures(cli: Cli, *args: str) -> Figures:
    result = cli.ok("demo", "log", "--dir", str(cli.root / "demo"), "--json", *args)
    return msgspec.json.decode(result.stdout, type=Figures)


def test_demo_json(cli: Cli) -> None:
    figures = _figures(cli, "--limit", "2000", "--batch-size", "300", "--partitions", "2")
    assert figures.events == figures.appended == figures.replayed == 2000
    assert (figures.dead_letters, figures.lag) == (0, 0)
    assert figures.checks == ALL_PASS
    assert figures.end_offsets == figures.committed
    assert sum(figures.end_offsets) == 2000
    assert figures.seek.event_time == "1996-05-27T00:00:00.000000+00:00"  # the middle day
    assert figures.seek.found == figures.seek.event_time
    assert figures.append_events_per_s > 0
    assert figures.replay_events_per_s > 0


def test_demo_keep_is_idempotent_and_fresh_starts_over(cli: Cli) -> None:
    _figures(cli, "--limit", "500")
    kept = _figures(cli, "--limit", "500", "--keep")
    assert (kept.appended, kept.duplicates, kept.events) == (0, 500, 500)
    assert kept.group == "demo-2"
    assert kept.checks == ALL_PASS
    fresh = _figures(cli, "--limit", "500")
    assert (fresh.appended, fresh.group) == (500, "demo-1")


def test_demo_table(cli: Cli) -> None:
    result = cli.ok("demo", "log", "--dir", str(cli.root / "demo"), "--limit", "300")
    assert "exactly once" in result.stdout
    assert "✓" in result.stdout
    assert "✗" not in result.stdout


def test_demo_refuses_a_directory_it_did_not_make(cli: Cli) -> None:
    other = cli.root / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    result = cli.fails(2, "demo", "log", "--dir", str(other), "--limit", "10")
    assert "not made by headwater demo" in result.stderr
    assert (other / "notes.txt").read_text() == "keep me"


def test_headwater_demo_runs_the_loop_and_writes_the_report(cli: Cli) -> None:
    result = cli.ok("demo", "--dir", str(cli.root / "demo"), "--rows", "700", "--json")
    figures = json.loads(result.stdout)
    assert figures["rows"] == 700
    assert set(figures["strategies"]) == {*STRATEGIES, "ideal"}
    assert Path(figures["report"]).exists()
    again = cli.ok("demo", "--dir", str(cli.root / "demo"), "--rows", "400")
    assert "continual" in again.stdout


def test_headwater_demo_ctr_writes_its_report(cli: Cli) -> None:
    result = cli.ok("demo", "ctr", "--dir", str(cli.root / "demo"), "--sessions", "60",
                    "--users", "10")
    assert "Cold start" in result.stdout
    assert (cli.root / "demo" / "ctr.html").exists()
