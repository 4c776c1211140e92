"""``headwater eval bandit``: the simulation, a replay from the log, the HTML report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from typer.testing import CliRunner

from headwater.bandits import DecisionLog, EpsilonGreedy, ensure_decisions_topic
from headwater.cli.bandits import app
from headwater.labels.schema import OUTCOMES_SCHEMA
from headwater.log import open_log

NOW = 1_700_000_000_000_000
WIDE = {"COLUMNS": "200"}


def test_the_simulation_reports_bandits_and_ab_tests(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = CliRunner(env=WIDE).invoke(app, ["--steps", "3000", "--drift-at", "1500",
                                              "--batch", "50", "--html", str(page)])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    for name in ("thompson-beta", "thompson-gaussian", "ucb1", "ab-fixed", "ab-sequential"):
        assert name in result.stdout
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") == 2
    assert "<script" not in html


def test_a_replay_from_the_log_estimates_each_fixed_action(tmp_path: Path) -> None:
    where = str(tmp_path / "log")
    rng = np.random.default_rng(0)
    policy = EpsilonGreedy(1, rng=np.random.default_rng(1), epsilon=0.5)
    ids, labels = [], []
    with open_log(where) as log:
        log.create_topic("outcomes", OUTCOMES_SCHEMA)
        with DecisionLog(log) as decisions:
            for i in range(400):
                x = rng.normal(size=1)
                d = policy.choose(x, ["down", "up"])
                decisions.record(f"r-{i}", "e", x, d, ts=NOW + i)
                reward = float((d.action == "up") == (x[0] > 0))
                policy.update(x[None, :], [d.action], [reward])
                if i % 10:  # one decision in ten never gets an outcome
                    ids.append(f"r-{i}")
                    labels.append(reward)
        log.append("outcomes", pa.table({
            "request_id": ids, "entity": ["e"] * len(ids), "label": labels,
            "ts": pa.array([NOW] * len(ids), pa.timestamp("us", tz="UTC"))}))
    page = tmp_path / "replay.html"
    result = CliRunner(env=WIDE).invoke(app, ["--source", "log", "--log", where,
                                              "--html", str(page)])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "360 decisions with a reward (40 without)" in result.stdout
    assert "always up" in result.stdout
    assert "always down" in result.stdout
    assert "<svg" in page.read_text()


def test_bad_arguments_name_the_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--rates", "0.5"])
    assert result.exit_code == 2
    assert "--rates" in result.stderr
    empty = str(tmp_path / "empty")
    with open_log(empty) as log:
        log.create_topic("outcomes", OUTCOMES_SCHEMA)
    no_topic = CliRunner().invoke(app, ["--source", "log", "--log", empty])
    assert no_topic.exit_code == 1
    assert "unknown topic 'decisions'" in no_topic.stderr
    with open_log(empty) as log:
        ensure_decisions_topic(log)
    no_outcomes = CliRunner().invoke(app, ["--source", "log", "--log", empty])
    assert no_outcomes.exit_code == 2
    assert "--outcomes" in no_outcomes.stderr
