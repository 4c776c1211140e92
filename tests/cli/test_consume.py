"""``headwater consume`` (consumer groups, commits) and ``headwater tail``."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli.helpers import Cli, json_lines

ROWS = [{"user": f"u{i}", "amount": float(i), "ts": i * 1_000_000} for i in range(7)]


def _fill(cli: Cli) -> None:
    with cli.open() as log:
        log.append("payments", ROWS)


def _amounts(stdout: str) -> list[float]:
    return sorted(float(str(row["amount"])) for row in json_lines(stdout))


def test_consume_commits_and_resumes(payments: Cli) -> None:
    _fill(payments)
    first = payments.ok("consume", "payments", "--group", "g", "--max", "4", "--format", "jsonl")
    rest = payments.ok("consume", "payments", "--group", "g", "--format", "jsonl")
    again = payments.ok("consume", "payments", "--group", "g", "--format", "jsonl")
    assert len(json_lines(first.stdout)) == 4
    assert sorted(_amounts(first.stdout) + _amounts(rest.stdout)) == [float(i) for i in range(7)]
    assert again.stdout == ""
    assert "consumed 0 events" in again.stderr
    with payments.open() as log:
        assert sum(log.lag("g", "payments").values()) == 0
    row = json_lines(first.stdout)[0]
    assert set(row) == {"_partition", "_offset", "_append_time", "user", "amount", "ts"}
    assert str(row["ts"]).endswith("+00:00")


def test_no_commit_and_reset_latest(payments: Cli) -> None:
    _fill(payments)
    for _ in range(2):
        result = payments.ok("consume", "payments", "--group", "peek", "--no-commit",
                             "--format", "jsonl")
        assert len(json_lines(result.stdout)) == 7
    latest = payments.ok("consume", "payments", "--group", "new", "--reset", "latest")
    assert "consumed 0 events" in latest.stderr


def test_consume_table_and_unknown_topic(payments: Cli) -> None:
    _fill(payments)
    table = payments.ok("consume", "payments", "--group", "g").stdout
    assert "partition" in table
    assert "u6" in table
    assert "1970-01-01T00:00:06" in table
    result = payments.fails(1, "consume", "nope", "--group", "g")
    assert result.stderr.strip() == "error: unknown topic 'nope'"


def test_tail_shows_the_last_events_of_each_partition(payments: Cli) -> None:
    _fill(payments)
    with payments.open() as log:
        ends = log.end_offsets("payments")
    rows = json_lines(payments.ok("tail", "payments", "-n", "2", "--format", "jsonl").stdout)
    expected = {(p, o) for p, end in enumerate(ends) for o in range(max(0, end - 2), end)}
    assert {(row["_partition"], row["_offset"]) for row in rows} == expected
    assert payments.ok("tail", "payments", "-n", "0").stdout == ""


def test_tail_follow_prints_new_events(payments: Cli) -> None:
    """A real ``tail --follow`` process: the late event is appended only once the process
    has printed the last event of each partition, so it can only arrive by following."""
    _fill(payments)
    with payments.open() as log:
        partitions = sum(1 for end in log.end_offsets("payments") if end > 0)
    command = [sys.executable, "-m", "headwater", "--log", str(payments.log_dir), "tail",
               "payments", "-n", "1", "--follow", "--timeout", "60", "--format", "jsonl"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as tail:
        assert tail.stdout is not None
        first = [json.loads(tail.stdout.readline()) for _ in range(partitions)]
        with payments.open() as log:
            log.append("payments", [{"user": "late", "amount": 99.0, "ts": 0}])
        followed = json.loads(tail.stdout.readline())
        tail.terminate()
    assert {row["user"] for row in first} <= {row["user"] for row in ROWS}
    assert followed["user"] == "late"
    assert followed["amount"] == 99.0
