"""headwater features: apply, list, show, run, backfill and get, end to end."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from headwater.cli import app

PROJECT = textwrap.dedent(
    """
    from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource, Tumbling
    from headwater.features import DerivedFeature
    import numpy as np

    user = Entity("user", key="user")
    payments = StreamSource.of("payments")
    spend = Feature.of("spend", user, payments, "sum", column="amount", window=Lifetime())
    count = Feature.of("payments_per_day", user, payments, "count", window=Tumbling.of("1d"))
    biggest = Feature.of("biggest", user, payments, "max", column="amount")
    share = DerivedFeature("share", ("amount", "spend"),
                           lambda c: c["amount"] / np.fmax(c["spend"], 1.0))
    checkout = FeatureSet("checkout", (spend, count, biggest, share), helpers=("spend",))
    """
)


def run(tmp: Path, *args: str, input: str | None = None) -> Result:
    env = {"HEADWATER_HOME": str(tmp / "home"), "HEADWATER_PROJECT": str(tmp / "features.py")}
    return CliRunner().invoke(app, ["--log", str(tmp / "log"), *args], input=input, env=env)


def ok(tmp: Path, *args: str, input: str | None = None) -> Result:
    result = run(tmp, *args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "features.py").write_text(PROJECT)
    ok(tmp_path, "topics", "create", "payments", "--schema",
       "user:string,amount:float64,ts:timestamp", "--key", "user", "--event-time", "ts")
    rows = "\n".join(
        f'{{"user": "{u}", "amount": {a}, "ts": "2024-05-01T0{h}:00:00Z"}}'
        for u, a, h in [("ada", 10, 1), ("ada", 30, 2), ("bob", 5, 3)]
    )
    ok(tmp_path, "produce", "payments", "-", input=rows)
    return tmp_path


def test_apply_list_show_run_get(project: Path) -> None:
    applied = ok(project, "features", "apply")
    assert "spend" in applied.stdout
    assert "new" in applied.stdout
    assert "unchanged" not in ok(project, "features", "apply").stdout
    listed = ok(project, "features", "list").stdout
    assert "payments_per_day" in listed
    assert "feature set checkout" in listed
    assert '"aggregation": "sum"' in ok(project, "features", "show", "spend").stdout
    ok(project, "features", "run", "--idle-timeout", "0")
    got = ok(project, "features", "get", "ada", "--set", "checkout",
             "--at", "2024-05-01T12:00:00Z", "--request", '{"amount": 20}').stdout
    assert "40.0" in got  # spend
    assert "2" in got  # payments today
    assert "0.5" in got  # share = 20 / 40
    # The events were appended just now: as known at 2024 there was nothing yet.
    known = ok(project, "features", "get", "ada", "--set", "checkout", "--at",
               "2024-05-01T12:00:00Z", "--mode", "known_at", "--request", '{"amount": 20}').stdout
    assert "40.0" not in known
    assert "null" in known  # the max
    assert "20.0" in known  # the share: 20 / max(0, 1), the sum's default being 0
    now = ok(project, "features", "get", "ada", "--request", '{"amount": 20}').stdout
    assert "40.0" in now  # the online store, now
    unknown = ok(project, "features", "get", "nobody", "--set", "checkout",
                 "--request", '{"amount": 1}').stdout
    rows = {line.split("│")[1].strip(): line.split("│")[2:4] for line in unknown.splitlines()
            if line.count("│") == 4}
    assert rows["biggest"][0].strip() == "null"
    assert rows["payments_per_day"][0].strip() == "0.0"
    assert "default" in rows["payments_per_day"][1]
    assert "helper" in rows["spend"][1]
    assert "default" in rows["spend"][1]
    missing = run(project, "features", "get", "ada", "--at", "2024-05-01T12:00:00Z")
    assert missing.exit_code == 2
    assert "share.inputs: missing amount" in missing.stderr


def test_events_too_late_to_apply_are_said_with_their_count(project: Path) -> None:
    """An unsorted file: a row 1.5 h behind the newest event time is late for a source
    allowing none, is not in the features, and ``features run`` says so with the count
    and what to do (not only a record in the dead-letter topic)."""
    rows = "\n".join(
        f'{{"user": "{u}", "amount": {a}, "ts": "2024-05-01T{h}Z"}}'
        for u, a, h in [("cy", 7, "05:00:00"), ("cy", 100, "03:30:00")])
    ok(project, "produce", "payments", "-", input=rows)
    ok(project, "features", "apply")
    ran = ok(project, "features", "run", "--idle-timeout", "0.5")
    said = " ".join(ran.stderr.split())
    assert "warning: 1 event of payments arrived more than 0s behind" in said
    assert "(1 in all, kept in payments.dlq)" in said
    got = ok(project, "features", "get", "cy", "--set", "checkout",
             "--at", "2024-05-01T06:00:00Z", "--request", '{"amount": 1}').stdout
    assert "7.0" in got
    assert "100" not in got  # the late 100 is not applied


def test_backfill_gives_the_same_values(project: Path) -> None:
    ok(project, "features", "backfill")
    got = ok(project, "features", "get", "bob", "--at", "2024-05-01T12:00:00Z",
             "--request", '{"amount": 5}').stdout
    assert "5.0" in got


def test_bad_projects(tmp_path: Path) -> None:
    result = run(tmp_path, "features", "apply")
    assert result.exit_code == 2
    assert "no project module" in result.stderr
    (tmp_path / "features.py").write_text("x = 1\n")
    assert "defines no features" in run(tmp_path, "features", "apply").stderr
    (tmp_path / "features.py").write_text("raise RuntimeError('boom')\n")
    assert "RuntimeError: boom" in run(tmp_path, "features", "apply").stderr
    assert run(tmp_path, "features", "list").exit_code == 2


def test_get_at_reads_the_history_and_the_log_after_it_as_processes(project: Path) -> None:
    """The engine (a process) writes the history; events appended after it stopped are
    read from the log; another process's get --at sees both, as a replay would."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HEADWATER_HOME": str(project / "home"),
           "HEADWATER_PROJECT": str(project / "features.py")}

    def headwater(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "headwater", "--log", str(project / "log"),
                               *args], env=env, input=input, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done

    def get(user: str, at: str) -> subprocess.CompletedProcess[str]:
        return headwater("features", "get", user, "--at", at, "--request", '{"amount": 1}')

    before = get("ada", "2024-05-01T12:00:00Z")
    assert "replaying all of payments: no feature history of" in before.stderr
    headwater("features", "run", "--idle-timeout", "0")
    assert list((project / "home/features/history/source=payments").glob("bucket=*"))
    headwater("produce", "payments", "-", input='{"user": "ada", "amount": 2, '
              '"ts": "2024-05-01T04:00:00Z"}\n{"user": "cy", "amount": 1, '
              '"ts": "2024-05-01T04:00:00Z"}\n')
    got = get("ada", "2024-05-01T12:00:00Z")
    assert "replaying" not in got.stderr
    assert "42.0" in got.stdout  # 10 + 30 from the history, 2 from the log after it
    assert "3" in got.stdout  # payments that day
    earlier = get("ada", "2024-05-01T02:30:00Z").stdout
    assert "40.0" in earlier
    assert "42.0" not in earlier
    assert "5.0" in get("bob", "2024-05-01T12:00:00Z").stdout
    assert "1.0" in get("cy", "2024-05-01T12:00:00Z").stdout  # only in the log


@pytest.mark.parametrize(("option", "value", "named"), [
    ("--group-timeout", "soon", "HEADWATER_GROUP_TIMEOUT"),
    ("--group-timeout", "0s", "HEADWATER_GROUP_TIMEOUT"),
    ("--checkpoint-interval", "-1s", "--checkpoint-interval"),
    ("--checkpoint-interval", "often", "--checkpoint-interval"),
])
def test_run_refuses_a_bad_timing_option(project: Path, option: str, value: str,
                                         named: str) -> None:
    ok(project, "features", "apply")
    result = run(project, "features", "run", "--idle-timeout", "0", option, value)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert named in result.stderr
