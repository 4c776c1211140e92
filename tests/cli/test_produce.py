"""``headwater produce``: CSV, Parquet and JSON lines in; rejections to the dead-letter topic."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq

from tests.cli.helpers import Cli, lines_of

CSV = """user,amount,ts
ada,3.5,2024-01-01T00:00:00Z
bob,1,2024-01-01T01:00:00+01:00
cy,2.25,1704067200000000
"""


def _figure(stdout: str, name: str) -> int:
    match = re.search(rf"^{name}\s+([\d,]+)", stdout, re.MULTILINE)
    assert match, stdout
    return int(match.group(1).replace(",", ""))


def test_produce_csv(payments: Cli) -> None:
    path = payments.write("payments.csv", CSV)
    result = payments.ok("produce", "payments", str(path))
    assert _figure(result.stdout, "accepted") == 3
    assert _figure(result.stdout, "rejected") == 0
    events = payments.events("payments").sort_by("user")
    assert events.column("user").to_pylist() == ["ada", "bob", "cy"]
    assert events.column("amount").to_pylist() == [3.5, 1.0, 2.25]
    micros = events.column("ts").cast(pa.int64()).to_pylist()
    assert micros == [1_704_067_200_000_000] * 3  # ISO with Z, with an offset, and µs


def test_produce_parquet_in_batches(payments: Cli) -> None:
    table = pa.table({
        "user": [f"u{i}" for i in range(25)],
        "amount": [float(i) for i in range(25)],
        "ts": pa.array([i * 1_000_000 for i in range(25)], pa.timestamp("us", "UTC")),
    })
    path = payments.root / "payments.parquet"
    pq.write_table(table, path, row_group_size=7)
    result = payments.ok("produce", "payments", str(path), "--batch-size", "10")
    assert _figure(result.stdout, "batches") == 3
    assert _figure(result.stdout, "accepted") == 25
    events = payments.events("payments").sort_by("amount")
    assert events.select(["user", "amount", "ts"]).to_pydict() == table.to_pydict()


def test_produce_json_lines_from_stdin(payments: Cli) -> None:
    rows = [{"user": "ada", "amount": 1.5, "ts": "2024-01-01T00:00:00Z"},
            {"user": "bob", "amount": 2, "ts": 1_704_067_200_000_000}]
    result = payments.ok("produce", "payments", "-", input=lines_of(rows))
    assert _figure(result.stdout, "accepted") == 2
    assert sorted(payments.events("payments").column("user").to_pylist()) == ["ada", "bob"]


def test_bad_rows_go_to_the_dead_letter_topic(payments: Cli) -> None:
    path = payments.write("bad.csv", CSV + "dee,lots,2024-01-01T00:00:00Z\n"
                          "eve,1.0,2024-01-01T00:00:00\n" "fay,2.0\n")
    result = payments.fails(3, "produce", "payments", str(path))
    assert "3 of 6 rows rejected" in result.stderr
    assert _figure(result.stdout, "accepted") == 3
    assert _figure(result.stdout, "rejected") == 3
    assert "payments.dlq" in result.stdout
    assert "expected float64, got 'lots'" in result.stdout
    assert "has no UTC offset: give --timezone" in result.stdout  # the naive timestamp
    assert "expected 3 fields, got 2" in result.stdout
    dead = payments.events("payments.dlq")
    assert sorted(dead.column("field").to_pylist()) == ["$", "amount", "ts"]
    assert sorted(dead.column("index").to_pylist()) == [5, 6, 7]  # file lines
    assert b"lots" in b"".join(dead.column("payload").to_pylist())


def test_bad_json_lines_are_kept_as_dead_letters(payments: Cli) -> None:
    text = ('{"user": "ada", "amount": 1.5, "ts": "2024-01-01T00:00:00Z"}\n'
            "{not json\n"
            '{"user": "bob", "amount": 1.5, "ts": "2024-01-01T00:00:00"}\n'
            '["a list"]\n')
    result = payments.fails(3, "produce", "payments", "-", input=text)
    assert _figure(result.stdout, "accepted") == 1
    assert _figure(result.stdout, "rejected") == 3
    assert "invalid JSON" in result.stdout
    dead = payments.events("payments.dlq").sort_by("index")
    assert dead.column("index").to_pylist() == [2, 3, 4]  # file lines
    assert dead.column("field").to_pylist() == ["$", "ts", "$"]


def test_producer_id_makes_a_rerun_idempotent(payments: Cli) -> None:
    rows = [{"user": f"u{i}", "amount": float(i), "ts": i} for i in range(10)]
    half = payments.write("half.jsonl", lines_of(rows[:6]))  # a run that stopped early
    full = payments.write("full.jsonl", lines_of([*rows, {"user": "x", "amount": "?", "ts": 0}]))
    args = ("--producer-id", "loader-1", "--batch-size", "3", "--time-unit", "us",
            "--allow-rejects")
    payments.ok("produce", "payments", str(half), *args)
    first = payments.ok("produce", "payments", str(full), *args)
    again = payments.ok("produce", "payments", str(full), *args)
    assert _figure(first.stdout, "accepted") == 4
    assert _figure(first.stdout, "duplicates") == 6
    assert _figure(again.stdout, "accepted") == 0
    assert _figure(again.stdout, "duplicates") == 10
    amounts = payments.events("payments").column("amount").to_pylist()
    assert sorted(amounts) == [float(i) for i in range(10)]
    assert len(payments.events("payments.dlq")) == 1


def test_create_and_rename_columns(cli: Cli) -> None:
    path = cli.write("clicks.csv", "who,page,when\nada,home,2024-01-01T00:00:00Z\n")
    cli.ok("produce", "clicks", str(path), "--create", "--key", "who", "--event-time", "when",
           "--partitions", "3")
    with cli.open() as log:
        info = log.topic("clicks")
    assert info.partitions == 3
    assert info.schema.key == "who"
    # A file naming the key and event-time columns differently, mapped by the options.
    other = cli.write("more.csv", "user,page,ts\nbob,about,2024-01-01T00:00:01Z\n")
    cli.ok("produce", "clicks", str(other), "--key", "user", "--event-time", "ts")
    assert sorted(cli.events("clicks").column("who").to_pylist()) == ["ada", "bob"]


def test_partitions_for_an_existing_topic_are_refused_not_ignored(cli: Cli) -> None:
    path = cli.write("clicks.csv", "who,page,when\nada,home,2024-01-01T00:00:00Z\n")
    cli.ok("produce", "clicks", str(path), "--create", "--key", "who", "--event-time", "when")
    refused = cli.fails(2, "produce", "clicks", str(path), "--create", "--key", "who",
                        "--event-time", "when", "--partitions", "2")
    assert "--partitions" in refused.stderr
    assert "exists with 1 partition(s), not 2" in " ".join(refused.stderr.split())
    cli.ok("produce", "clicks", str(path), "--partitions", "1")  # what it has: fine


def test_zero_padded_ids_keep_their_zeros(cli: Cli) -> None:
    """``007`` is an identifier, not the number 7: a key (or any column) holding a
    zero-padded integer is text, so ``007`` and ``7`` stay two accounts."""
    path = cli.write("k.csv", "acct,branch,amount,ts\n007,02139,1.5,2026-12-07T10:00:00Z\n"
                              "7,10001,2.0,2026-12-07T10:00:01Z\n")
    cli.ok("produce", "acc", str(path), "--create", "--key", "acct", "--event-time", "ts")
    with cli.open() as log:
        types = {f.name: f.type for f in log.topic("acc").schema.fields}
    assert (types["acct"], types["branch"], types["amount"]) == ("string", "string", "float64")
    events = cli.events("acc")
    assert events.column("acct").to_pylist() == ["007", "7"]
    assert events.column("branch").to_pylist() == ["02139", "10001"]


def test_bad_inputs(payments: Cli) -> None:
    path = payments.write("ok.csv", CSV)
    missing = payments.fails(1, "produce", "nope", str(path))
    assert missing.stderr.strip() == "error: unknown topic 'nope'"
    no_file = payments.fails(2, "produce", "payments", str(payments.root / "gone.csv"))
    assert no_file.stderr.startswith("error: FILE: no such file")
    txt = payments.write("events.txt", CSV)
    assert payments.fails(2, "produce", "payments", str(txt)).stderr.startswith("error: --format")
    no_column = payments.fails(2, "produce", "payments", str(path), "--event-time", "when")
    assert no_column.stderr.startswith("error: --event-time")
    create = payments.fails(2, "produce", "new", str(path), "--create")
    assert create.stderr.startswith("error: --event-time")
    payments.fails(2, "produce", "payments", str(path), "--format", "xml")  # usage error
