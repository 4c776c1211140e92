"""``headwater replay``: a topic's history into Parquet, CSV or JSON lines."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from headwater.time import SystemClock
from tests.cli.helpers import Cli, json_lines

HOUR = 3_600_000_000
T0 = 1_704_067_200_000_000  # 2024-01-01T00:00Z


@pytest.fixture
def produced(payments: Cli) -> pa.Table:
    """100 events, one an hour from 2024-01-01, produced from a Parquet file."""
    table = pa.table({
        "user": [f"u{i % 9}" for i in range(100)],
        "amount": [float(i) for i in range(100)],
        "ts": pa.array([T0 + i * HOUR for i in range(100)], pa.timestamp("us", "UTC")),
    })
    pq.write_table(table, payments.root / "in.parquet")
    payments.ok("produce", "payments", str(payments.root / "in.parquet"), "--batch-size", "30")
    return table


def test_replay_to_parquet_equals_what_was_produced(payments: Cli, produced: pa.Table) -> None:
    out = payments.root / "out.parquet"
    result = payments.ok("replay", "payments", "--out", str(out))
    assert "100" in result.stdout
    assert "events/s" in result.stdout
    replayed = pq.read_table(out)
    assert replayed.column_names == ["user", "amount", "ts", "_offset", "_append_time"]
    events = replayed.select(["user", "amount", "ts"]).sort_by("amount")
    assert events.to_pydict() == produced.to_pydict()


def test_replay_between_event_times(payments: Cli, produced: pa.Table) -> None:
    out = payments.root / "window.jsonl"
    payments.ok("replay", "payments", "--from-time", "2024-01-01T10:00:00Z",
                "--to-time", "2024-01-01T20:00:00+00:00", "--out", str(out))
    rows = json_lines(out.read_text())
    assert sorted(float(str(r["amount"])) for r in rows) == [float(i) for i in range(10, 20)]


def test_replay_one_partition_from_an_offset_to_csv(payments: Cli, produced: pa.Table) -> None:
    with payments.open() as log:
        end = log.end_offsets("payments")[1]
    out = payments.root / "p1.csv"
    payments.ok("replay", "payments", "--partition", "1", "--from-offset", "3", "--out", str(out))
    table = pa_csv.read_csv(out)
    assert table.column("_offset").to_pylist() == list(range(3, end))
    # What replay writes can be produced again.
    payments.ok("produce", "copy", str(out), "--create", "--event-time", "ts", "--key", "user")
    assert len(payments.events("copy")) == end - 3


def test_replay_without_out_counts(payments: Cli, produced: pa.Table) -> None:
    result = payments.ok("replay", "payments", "--to-time", "2024-01-01T05:00:00Z")
    assert "events      5" in result.stdout


def test_replay_bad_inputs(payments: Cli) -> None:
    naive = payments.fails(2, "replay", "payments", "--from-time", "2024-01-01T00:00:00")
    assert naive.stderr.startswith("error: --from-time: naive datetime")
    bad_out = payments.fails(2, "replay", "payments", "--out", "x.xlsx")
    assert bad_out.stderr.startswith("error: --out")
    partition = payments.fails(2, "replay", "payments", "--partition", "5")
    assert partition.stderr.startswith("error: --partition: 'payments' has partitions 0..1")


def test_replay_between_times_relative_to_now(payments: Cli) -> None:
    """``now-2h`` is read against the wall clock, as a user means it."""
    now = SystemClock().now_us()
    table = pa.table({
        "user": ["a", "b", "c"], "amount": [1.0, 2.0, 3.0],
        "ts": pa.array([now - 5 * HOUR, now - HOUR, now + HOUR], pa.timestamp("us", "UTC")),
    })
    pq.write_table(table, payments.root / "recent.parquet")
    payments.ok("produce", "payments", str(payments.root / "recent.parquet"))
    out = payments.root / "recent.jsonl"
    payments.ok("replay", "payments", "--from-time", "now-2h", "--to-time", "now",
                "--out", str(out))
    assert [r["amount"] for r in json_lines(out.read_text())] == [2.0]
    bad = payments.fails(2, "replay", "payments", "--from-time", "now-2 hours")
    assert "--from-time: cannot read duration" in bad.stderr
