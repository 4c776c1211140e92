"""The payments data set: made up around the clock's now, the same rows for the same seed,
chargebacks that follow their payments, and files ``headwater produce`` reads back whole."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater import open_log
from headwater.datasets import payments
from headwater.errors import ValidationError
from headwater.time import ManualClock, parse_timestamp, to_micros

NOW = parse_timestamp("2025-06-01T12:34:56Z")
DAY = 86_400_000_000


def times(table: pa.Table, name: str = "ts") -> np.ndarray:
    return np.asarray(table.column(name).cast(pa.int64()))


def test_rows_lie_in_the_days_up_to_now_in_time_order() -> None:
    data = payments.load(clock=ManualClock(NOW + 123_456))  # now is cut to the second
    pay, back = data.payments, data.chargebacks
    ts = times(pay)
    assert pay.column_names == ["payment_id", "user", "merchant", "amount", "ts"]
    assert 7_000 < pay.num_rows < 13_000
    assert ts.min() >= NOW - 28 * DAY
    assert ts.max() < NOW
    assert (np.diff(ts) >= 0).all()
    assert (ts % 1_000_000 == 0).all()
    assert pay.column("payment_id").to_pylist() == list(range(1, pay.num_rows + 1))
    amounts = np.asarray(pay.column("amount"))
    assert (amounts > 0).all()
    assert np.allclose(amounts, np.round(amounts, 2))
    assert set(pay.column("merchant").to_pylist()) == set(payments.MERCHANTS)
    assert len(set(pay.column("user").to_pylist())) == 150

    paid_at = dict(zip(pay.column("payment_id").to_pylist(), ts.tolist(), strict=True))
    owner = dict(zip(pay.column("payment_id").to_pylist(), pay.column("user").to_pylist(),
                     strict=True))
    arrived = times(back)
    assert back.num_rows > 50
    assert (np.diff(arrived) >= 0).all()
    assert arrived.max() <= NOW  # a chargeback from the future is not known yet
    for pid, user, at in zip(back.column("payment_id").to_pylist(),
                             back.column("user").to_pylist(), arrived.tolist(), strict=True):
        assert owner[pid] == user
        assert DAY <= at - paid_at[pid] <= 20 * DAY + 1_000_000


@given(st.integers(1, 60), st.integers(0, 3))
def test_the_same_seed_gives_the_same_rows_shifted_with_the_clock(days: int, seed: int) -> None:
    first = payments.load(clock=ManualClock(NOW), seed=seed, users=10, days=3)
    later = payments.load(clock=ManualClock(NOW + days * DAY), seed=seed, users=10, days=3)
    assert first.payments.drop_columns("ts") == later.payments.drop_columns("ts")
    assert (times(later.payments) - times(first.payments) == days * DAY).all()
    # more chargebacks may have arrived by the later now, never fewer or others
    known = first.chargebacks.column("payment_id").to_pylist()
    assert later.chargebacks.column("payment_id").to_pylist()[:len(known)] == known


def test_stolen_cards_pay_in_bursts() -> None:
    data = payments.load(clock=ManualClock(NOW))
    pay = data.payments
    fraud = np.isin(np.asarray(pay.column("payment_id")),
                    np.asarray(data.chargebacks.column("payment_id")))
    amounts = np.asarray(pay.column("amount"))
    assert amounts[fraud].mean() > 3 * amounts[~fraud].mean()
    # the previous payment of the same user came within the hour, far more often for fraud
    users = np.asarray(pay.column("user").to_pylist(), dtype=object)
    ts = times(pay)
    gap = np.full(len(ts), np.iinfo(np.int64).max)
    last: dict[str, int] = {}
    for i, (user, t) in enumerate(zip(users.tolist(), ts.tolist(), strict=True)):
        if user in last:
            gap[i] = t - last[user]
        last[user] = t
    soon = gap < 3_600_000_000
    assert soon[fraud].mean() > 0.6 > 0.2 > soon[~fraud].mean()


@pytest.mark.parametrize(("name", "value"), [("days", 0), ("users", -1), ("users", True)])
def test_bad_sizes_are_refused(name: str, value: int) -> None:
    with pytest.raises(ValidationError, match=name):
        payments.load(**{name: value})  # type: ignore[arg-type]


def headwater(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    return subprocess.run([sys.executable, "-m", "headwater", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_written_files_go_into_topics_whole(tmp_path: Path) -> None:
    """The journey: write the files, create the topics, produce them, as a user does."""
    done = headwater("datasets", "write", "payments", "data", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with (tmp_path / "data" / "payments.csv").open() as file:
        rows = list(csv.DictReader(file))
    with (tmp_path / "data" / "chargebacks.csv").open() as file:
        chargebacks = list(csv.DictReader(file))
    assert f"payments.csv ({len(rows):,} rows)" in done.stderr
    assert " " in rows[0]["ts"]
    assert not rows[0]["ts"].endswith("Z")  # an export's wall times: naive, in UTC
    assert chargebacks[0]["ts"].endswith("Z")
    for topic, schema in (("payments", "payment_id:int64,user:string,merchant:string,"
                           "amount:float64,ts:timestamp"),
                          ("chargebacks", "payment_id:int64,user:string,ts:timestamp")):
        made = headwater("topics", "create", topic, "--schema", schema, "--key", "user",
                         "--event-time", "ts", cwd=tmp_path)
        assert made.returncode == 0, made.stderr
    # naive times are never taken for UTC unasked: every row is refused, naming the option
    refused = headwater("produce", "scratch", "data/payments.csv", "--create",
                        "--event-time", "ts", cwd=tmp_path)
    assert refused.returncode == 3
    assert "timezone" in refused.stdout + refused.stderr
    for topic, zone in (("payments", ["--timezone", "UTC"]), ("chargebacks", [])):
        produced = headwater("produce", topic, f"data/{topic}.csv", *zone, cwd=tmp_path)
        assert produced.returncode == 0, produced.stderr
    with open_log(str(tmp_path / ".headwater" / "log")) as log:
        stored = pa.Table.from_batches([f.batch for f in log.replay("payments")])
        assert stored.num_rows == len(rows)
        assert not list(log.replay("payments.dlq"))
        assert not list(log.replay("chargebacks.dlq"))
        by_id = {r["payment_id"]: r for r in rows}
        for event in stored.select(["payment_id", "user", "amount", "ts"]).to_pylist():
            row = by_id[str(event["payment_id"])]
            assert event["user"] == row["user"]
            assert event["amount"] == float(row["amount"])
            assert to_micros(event["ts"]) == parse_timestamp(row["ts"] + "+00:00")
        back = pa.Table.from_batches([f.batch for f in log.replay("chargebacks")])
        assert back.num_rows == len(chargebacks)


def test_an_unknown_data_set_is_refused(tmp_path: Path) -> None:
    done = headwater("datasets", "write", "weather", cwd=tmp_path)
    assert done.returncode == 2
    assert "no data set 'weather'; choose one of payments, elec2" in done.stderr
    listed = headwater("datasets", "list", cwd=tmp_path)
    assert "payments.csv, chargebacks.csv" in listed.stdout
