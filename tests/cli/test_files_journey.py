"""Files users have, through ``headwater produce`` run as its own process.

A CSV not made for Headwater: integer carrier ids, naive local timestamps (and a date
alone), an amount written ``1,5``, a ``NaN``, a line with a missing field and a line
with bytes that are not UTF-8. Every row is either appended with the right value or in
the dead-letter topic with its line and reason, and the exit code says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pyarrow as pa
import pytest

from headwater.config import Settings
from headwater.log import open_log
from headwater.time import to_micros

PARIS = ZoneInfo("Europe/Paris")
CSV = (
    b"carrier,amount,ts,note\n"                       # line 1
    b"42,12.5,2024-03-01 08:00:00,first\n"            # 2
    b"7,3,2024-03-01 09:30:00,\n"                     # 3
    b'42,"1,5",2024-03-01 10:00:00,comma\n'           # 4: a decimal comma
    b"7,NaN,2024-03-01 11:00:00,nan\n"                # 5: not a finite number
    b"42,4.25,2024-03-02,a date alone\n"              # 6
    b"9,1.0\n"                                        # 7: a field short
    b"\n"                                             # 8: blank
    b"7,2.5,2024-03-02 12:00:00,caf\xe9\n"            # 9: Latin-1, not UTF-8
    b"42,8,2024-03-31 02:30:00,skipped hour\n"        # 10: never happened in Paris
    b"9,6.75,2024-03-03 00:00:00,last\n"              # 11
)
LINE_9_OFFSET = CSV.index(b"caf\xe9") + 3  # the byte offset of \xe9 in the file


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return to_micros(datetime(year, month, day, hour, minute, tzinfo=PARIS))


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


class Headwater:
    """``python -m headwater --log <dir> …`` as a separate process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log_dir = root / "log"

    def __call__(self, *args: str) -> Run:
        env = {**os.environ, "HEADWATER_FSYNC": "never", "COLUMNS": "200",
               "HEADWATER_HOME": str(self.root / "home")}
        done = subprocess.run([sys.executable, "-m", "headwater", "--log", str(self.log_dir),
                               *args], capture_output=True, text=True, env=env, timeout=120,
                              check=False)
        return Run(done.returncode, done.stdout, done.stderr)

    def write(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.write_bytes(data)
        return str(path)

    def events(self, topic: str) -> list[dict[str, Any]]:
        with open_log(str(self.log_dir), settings=Settings()) as log:
            batches = [f.batch for f in log.replay(topic)]
            schema = log.topic(topic).schema.stored_schema()
        rows: list[dict[str, Any]] = pa.Table.from_batches(batches, schema=schema).to_pylist()
        return rows


@pytest.fixture
def headwater(tmp_path: Path) -> Headwater:
    return Headwater(tmp_path)


def test_a_user_csv_is_appended_or_dead_lettered_row_by_row(headwater: Headwater) -> None:
    path = headwater.write("payments.csv", CSV)
    run = headwater("produce", "payments", path, "--create", "--key", "carrier",
                    "--event-time", "ts", "--timezone", "Europe/Paris")
    assert run.code == 3, run
    assert "5 of 9 rows rejected, kept in payments.dlq" in run.stderr
    # The vote: one "1,5" does not turn the amounts into text, and it is reported.
    assert "amount" in run.stderr
    assert "float64" in run.stderr
    assert "1 (e.g. line 4: '1,5')" in run.stderr
    with open_log(str(headwater.log_dir), settings=Settings()) as log:
        schema = log.topic("payments").schema
    assert [(f.name, f.type) for f in schema.fields] == [
        ("carrier", "int64"), ("amount", "float64"), ("ts", "timestamp"), ("note", "string")]

    appended = sorted(headwater.events("payments"), key=lambda e: str(e["ts"]))
    assert [(e["carrier"], e["amount"], e["note"]) for e in appended] == [
        (42, 12.5, "first"), (7, 3.0, None), (42, 4.25, "a date alone"), (9, 6.75, "last")]
    assert [to_micros(e["ts"]) for e in appended] == [
        paris(2024, 3, 1, 8), paris(2024, 3, 1, 9, 30), paris(2024, 3, 2), paris(2024, 3, 3)]

    dead = {e["index"]: e for e in headwater.events("payments.dlq")}
    assert sorted(dead) == [4, 5, 7, 9, 10]  # file lines, as in the summary
    assert (dead[4]["field"], dead[4]["reason"]) == ("amount", "expected float64, got '1,5'")
    assert dead[5]["field"] == "amount"
    assert dead[5]["reason"] == "not a finite number (nan); the field does not allow_non_finite"
    assert (dead[7]["field"], dead[7]["reason"]) == ("$", "expected 4 fields, got 2")
    assert dead[7]["payload"] == b"9,1.0"
    assert dead[9]["field"] == "note"
    assert dead[9]["reason"] == (f"invalid UTF-8 in column 'note' at byte offset "
                                 f"{LINE_9_OFFSET} of the file")
    assert dead[9]["payload"] == b"7,2.5,2024-03-02 12:00:00,caf\xe9"
    assert dead[10]["field"] == "ts"
    assert "never happened in Europe/Paris" in str(dead[10]["reason"])
    assert msgspec.json.decode(dead[10]["payload"]) == {  # the row as the file has it
        "carrier": "42", "amount": "8", "ts": "2024-03-31 02:30:00", "note": "skipped hour"}
    # The summary numbers rows the same way.
    for line in (4, 5, 7, 9, 10):
        assert f"│ {line} " in run.stdout, run.stdout

    # The dead letters read back as JSON, not base64.
    tail = headwater("tail", "payments.dlq", "--format", "jsonl", "-n", "20")
    assert tail.code == 0, tail
    shown = {row["index"]: row for row in map(msgspec.json.decode, tail.stdout.splitlines())}
    assert shown[4]["payload"] == {"carrier": "42", "amount": "1,5",  # its time as read
                                   "ts": "2024-03-01T09:00:00Z", "note": "comma"}
    assert shown[9]["payload"] == "7,2.5,2024-03-02 12:00:00,caf\\xe9"
    table = headwater("tail", "payments.dlq")
    assert '"amount": "1,5"' in table.stdout or '"amount":"1,5"' in table.stdout


def test_allow_rejects_exits_zero_and_still_says_so(headwater: Headwater) -> None:
    path = headwater.write("payments.csv", CSV)
    run = headwater("produce", "payments", path, "--create", "--key", "carrier",
                    "--event-time", "ts", "--timezone", "UTC", "--allow-rejects")
    assert run.code == 0, run
    assert "warning: 4 of 9 rows rejected" in run.stderr  # 02:30 exists in UTC
    assert len(headwater.events("payments")) == 5


def test_naive_times_without_a_timezone_are_refused_with_the_option(
        headwater: Headwater) -> None:
    path = headwater.write("payments.csv", CSV)
    run = headwater("produce", "payments", path, "--create", "--key", "carrier",
                    "--event-time", "ts")
    assert run.code == 3, run
    dead = {e["index"]: e["reason"] for e in headwater.events("payments.dlq")}
    assert dead[2] == ("'2024-03-01 08:00:00' has no UTC offset: give --timezone (e.g. "
                       "--timezone UTC) to read times without one")
    assert headwater.events("payments") == []


def test_non_finite_amounts_are_kept_where_the_schema_allows_them(headwater: Headwater) -> None:
    text = b"carrier,amount,ts\n1,inf,2024-03-01T00:00:00Z\n2,1e999,2024-03-01T00:00:00Z\n"
    path = headwater.write("odd.csv", text)
    refused = headwater("produce", "strict", path, "--create", "--key", "carrier",
                        "--event-time", "ts")
    assert refused.code == 3
    assert [e["reason"] for e in headwater.events("strict.dlq")] == [
        "not a finite number (inf); the field does not allow_non_finite"] * 2
    allowed = headwater("produce", "loose", path, "--create", "--key", "carrier",
                        "--event-time", "ts", "--allow-non-finite", "amount")
    assert allowed.code == 0, allowed
    assert [e["amount"] for e in headwater.events("loose")] == [float("inf")] * 2
    described = headwater("topics", "describe", "loose")
    assert "float64 (NaN/inf allowed)" in described.stdout


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 1_000), ("us", 1_000_000),
                                             ("ns", 1_000_000_000)])
def test_integer_times_are_read_in_the_unit_their_magnitude_tells(
        headwater: Headwater, unit: str, scale: int) -> None:
    seconds = [1_709_280_000, 1_709_283_600]  # 2024-03-01T08:00Z and 09:00Z
    rows = "".join(f"{i},1.5,{s * scale}\n" for i, s in enumerate(seconds))
    path = headwater.write("epoch.csv", f"carrier,amount,ts\n{rows}".encode())
    run = headwater("produce", "epoch", path, "--create", "--key", "carrier",
                    "--event-time", "ts")
    assert run.code == 0, run
    names = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
    assert f"ts: integer times read as {names[unit]} since the epoch" in run.stderr
    times = [to_micros(e["ts"]) for e in headwater.events("epoch")]
    assert sorted(times) == [s * 1_000_000 for s in seconds]


def test_integer_times_too_small_to_tell_need_the_unit(headwater: Headwater) -> None:
    path = headwater.write("small.jsonl", b'{"carrier": 1, "amount": 1.0, "ts": 25}\n')
    run = headwater("produce", "small", path, "--create", "--key", "carrier",
                    "--event-time", "ts")
    assert run.code == 2
    assert "give --time-unit s, ms, us or ns" in run.stderr
    given = headwater("produce", "small", path, "--create", "--key", "carrier",
                      "--event-time", "ts", "--time-unit", "s")
    assert given.code == 0, given
    assert [to_micros(e["ts"]) for e in headwater.events("small")] == [
        25_000_000]
    seconds = headwater.write("seconds.jsonl", b'{"carrier": 2, "amount": 1.0, '
                              b'"ts": 1709280000}\n')
    explicit = headwater("produce", "small", seconds, "--time-unit", "ms")
    assert explicit.code == 0, explicit
    assert sorted(to_micros(e["ts"]) for e in headwater.events("small")) == [
        25_000_000, 1_709_280_000_000]


def _cells(table: str) -> dict[str, str]:
    """The feature -> value rows of a printed table."""
    rows = [line.split("│") for line in table.splitlines() if line.startswith("│")]
    return {cells[1].strip(): cells[2].strip() for cells in rows}


FEATURES = """
from headwater.features import Entity, Feature, FeatureSet, StreamSource

carrier = Entity("carrier", key="carrier")
payments = StreamSource.of("payments")
notes = FeatureSet("notes", (
    Feature.of("last_note", carrier, payments, "last", column="note"),
    Feature.of("distinct_notes", carrier, payments, "approx_distinct", column="note"),
    Feature.of("total", carrier, payments, "sum", column="amount"),
))
"""


def test_features_are_checked_against_the_topic_and_text_aggregates(
        headwater: Headwater) -> None:
    text = (b"carrier,amount,ts,note\n"
            b"42,1.5,2024-03-01T08:00:00Z,late\n"
            b"42,2.5,2024-03-01T09:00:00Z,on time\n"
            b"42,NaN,2024-03-01T09:30:00Z,\n"
            b"7,4.0,2024-03-01T10:00:00Z,late\n")
    path = headwater.write("payments.csv", text)
    produced = headwater("produce", "payments", path, "--create", "--key", "carrier",
                         "--event-time", "ts", "--allow-non-finite", "amount")
    assert produced.code == 0, produced
    wrong = headwater.write("wrong.py", FEATURES.encode() + b"\nbad = Feature.of('note_total',"
                            b" carrier, payments, 'sum', column='note')\n")
    refused = headwater("features", "apply", "--project", wrong)
    assert refused.code == 2
    assert refused.stderr.strip() == (
        "error: note_total.column: sum cannot aggregate 'note', a string field of payments "
        "(over string: count, approx_distinct, last)")
    project = headwater.write("features.py", FEATURES.encode())
    assert headwater("features", "apply", "--project", project).code == 0
    ran = headwater("features", "run", "--project", project, "--idle-timeout", "1")
    assert ran.code == 0, ran
    got = headwater("features", "get", "42", "--project", project, "--set", "notes",
                    "--at", "2024-03-02T00:00:00Z")
    assert got.code == 0, got
    rows = _cells(got.stdout)
    # the NaN amount is skipped; the null note is not a value of last or distinct
    assert rows == {"last_note": "on time", "distinct_notes": "2.0", "total": "4.0"}
    online = headwater("features", "get", "42", "--project", project, "--set", "notes")
    assert online.code == 0, online
    now = _cells(online.stdout)
    assert now == rows  # the online store answers as the log does
