"""``headwater topics create | list | describe`` and the global options."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from headwater.cli import app
from headwater.log import Retention
from tests.cli.helpers import Cli


def test_create_list_describe(payments: Cli) -> None:
    with payments.open() as log:
        info = log.topic("payments")
        assert info.partitions == 2
        assert info.schema.key == "user"
        assert info.schema.event_time == "ts"
        assert [f.type for f in info.schema.fields] == ["string", "float64", "timestamp"]
        log.append("payments", [{"user": "ada", "amount": 1.0, "ts": 0}])

    listed = payments.ok("topics", "list").stdout
    assert "payments " in listed
    assert "payments.dlq" in listed

    described = payments.ok("topics", "describe", "payments").stdout
    assert "forever" in described
    assert "0 in payments.dlq" in described
    for word in ("user", "float64", "event time", "partitions", "no consumer groups"):
        assert word in described


def test_create_with_nullable_and_retention(cli: Cli) -> None:
    cli.ok("topics", "create", "clicks", "--schema", "page:string,ref:string,at:timestamp",
           "--event-time", "at", "--nullable", "ref", "--retention", "7d",
           "--retention-bytes", "1000000")
    with cli.open() as log:
        info = log.topic("clicks")
    assert info.retention == Retention(max_age_us=7 * 86_400_000_000, max_bytes=1_000_000)
    assert [f.nullable for f in info.schema.fields] == [False, True, False]
    assert "7d, 1,000,000 bytes per partition" in cli.ok("topics", "describe", "clicks").stdout


def test_create_from_file(cli: Cli) -> None:
    path = cli.root / "sample.parquet"
    pq.write_table(pa.table({"user": ["a"], "n": pa.array([1], pa.int32()),
                             "at": ["2024-01-01T00:00:00Z"]}), path)
    cli.ok("topics", "create", "sample", "--from-file", str(path), "--event-time", "at",
           "--key", "user")
    with cli.open() as log:
        schema = log.topic("sample").schema
    assert [(f.name, f.type) for f in schema.fields] == [
        ("user", "string"), ("n", "int32"), ("at", "timestamp")]


def test_create_from_a_csv_votes_the_types_and_allows_non_finite_where_asked(cli: Cli) -> None:
    path = cli.write("sample.csv", "id,amount,ok,at\n1,2.5,true,2024-01-01T00:00:00Z\n"
                     "2,\"1,5\",false,2024-01-01T00:00:00Z\n3,nan,true,2024-01-01T00:00:00Z\n")
    result = cli.ok("topics", "create", "sample", "--from-file", str(path), "--event-time",
                    "at", "--key", "id", "--allow-non-finite", "amount")
    assert "1 (e.g. line 3: '1,5')" in result.stderr
    with cli.open() as log:
        schema = log.topic("sample").schema
    assert [(f.name, f.type) for f in schema.fields] == [
        ("id", "int64"), ("amount", "float64"), ("ok", "bool"), ("at", "timestamp")]
    assert schema.field("amount").allow_non_finite
    refused = cli.fails(2, "topics", "create", "other", "--schema", "n:int64,ts:timestamp",
                        "--event-time", "ts", "--allow-non-finite", "n")
    assert refused.stderr.startswith("error: --allow-non-finite: n is int64")


def test_describe_shows_groups_and_lag(payments: Cli) -> None:
    with payments.open() as log:
        log.append("payments", [{"user": u, "amount": 1.0, "ts": 0} for u in "abcde"])
        with log.consumer("readers", "payments") as consumer:
            consumer.poll(max_events=2)
            consumer.commit()
    described = payments.ok("topics", "describe", "payments").stdout
    assert "readers" in described
    assert "│ 3 " in described


def test_bad_schema_type_names_the_field(cli: Cli) -> None:
    result = cli.fails(2, "topics", "create", "t", "--schema", "user:string,amount:flaot",
                       "--event-time", "user")
    assert "error: --schema amount: unknown type 'flaot'" in result.stderr


def test_bad_inputs_exit_2_with_the_option_named(cli: Cli) -> None:
    spec = "a:string,ts:timestamp"
    cases = {
        "--schema": ["--schema", "a string", "--event-time", "ts"],
        "--retention": ["--schema", spec, "--event-time", "ts", "--retention", "7 fortnights"],
        "--nullable": ["--schema", spec, "--event-time", "ts", "--nullable", "b"],
        "FILE": ["--from-file", "missing.csv", "--event-time", "ts"],
        "--event-time": ["--schema", spec, "--event-time", "when"],
        "--key": ["--schema", spec, "--event-time", "ts", "--key", "user"],
        "fields.ts": ["--schema", "a:string,ts:int64", "--event-time", "ts"],
    }
    for option, args in cases.items():
        result = cli.fails(2, "topics", "create", "t", *args)
        assert result.stderr.startswith(f"error: {option}"), (option, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_topic_exits_1(cli: Cli) -> None:
    result = cli.fails(1, "topics", "describe", "nope")
    assert result.stderr.strip() == "error: unknown topic 'nope'"


def test_log_location_defaults_to_settings(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = CliRunner().invoke(
        app, ["topics", "create", "t", "--schema", "ts:timestamp", "--event-time", "ts"],
        env={"HEADWATER_HOME": str(home), "HEADWATER_LOG_URL": None},
    )
    assert result.exit_code == 0, result.output
    assert (home / "log").is_dir()


def test_bad_settings_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--log", str(tmp_path), "topics", "list"],
                                env={"HEADWATER_FSYNC": "sometimes"})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: HEADWATER_* settings")
