"""Output read by scripts and CI: tables whole when piped, ``--format json|csv`` with the
table's values, and read-only commands that leave no ``.headwater/`` behind."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from tests.processes import environment

LONG = "a_topic_name_long_enough_that_eighty_columns_would_cut_it_in_a_table_cell"


def run(home: Path, *args: str, code: int = 0, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = environment(home)
    del env["COLUMNS"]  # piped, as in CI: no terminal says how wide
    done = subprocess.run([sys.executable, "-m", "headwater", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == code, (args, done.stdout, done.stderr)
    return done


def test_a_piped_table_keeps_its_columns_whole(tmp_path: Path) -> None:
    home = tmp_path / "home"
    data = tmp_path / "events.csv"
    data.write_text("user,ts\nann,2026-01-01T00:00:00Z\nbob,2026-01-01T00:01:00Z\n"
                    "ann,2026-01-01T00:02:00Z\n")
    run(home, "produce", LONG, str(data), "--create", "--key", "user", "--event-time", "ts")
    table = run(home, "topics", "list").stdout
    assert LONG in table  # not "a_topic_name_long…" over two lines
    rows = list(csv.DictReader(io.StringIO(run(home, "topics", "list", "--format",
                                               "csv").stdout)))
    assert {r["name"]: r["events"] for r in rows} == {LONG: "3", f"{LONG}.dlq": "0"}
    [listed] = [t for t in json.loads(run(home, "topics", "list", "--format", "json").stdout)
                if t["name"] == LONG]
    assert listed == {"name": LONG, "partitions": 1, "events": 3, "key": "user",
                      "event time": "ts"}


def test_models_list_as_data(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert json.loads(run(home, "models", "list", "--format", "json").stdout) == []
    run(home, "models", "register", "churn", "--builtin", "logistic", "--promote",
        "--reason", "first")
    run(home, "models", "register", "churn", "--builtin", "logistic", "--reason", "second")
    [churn] = json.loads(run(home, "models", "list", "--format", "json").stdout)
    assert (churn["model"], churn["versions"], churn["latest"], churn["aliases"]) == (
        "churn", 2, 2, {"champion": 1})
    [row] = list(csv.DictReader(io.StringIO(run(home, "models", "list", "--format",
                                                "csv").stdout)))
    assert (row["versions"], row["aliases"]) == ("2", "champion=1")


def test_read_only_commands_create_nothing(tmp_path: Path) -> None:
    home = tmp_path / "nowhere"
    listed = run(home, "models", "list", cwd=tmp_path)
    assert f"no models (no model store at {home / 'registry'})" in " ".join(
        listed.stdout.split())
    refused = run(home, "report", "--model", "churn", code=2, cwd=tmp_path)
    assert "no model store at" in refused.stderr
    elsewhere = tmp_path / "other-registry"
    named = run(home, "report", "--model", "churn", "--registry", str(elsewhere), code=2,
                cwd=tmp_path)
    assert str(elsewhere) in " ".join(named.stderr.split())
    assert not home.exists()
    assert not elsewhere.exists()
    assert not (tmp_path / ".headwater").exists()
