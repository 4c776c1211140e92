"""Training frames from pandas DataFrames: the same values as the Arrow-level join, row for
row, with the DataFrame's own columns, index and order kept and its times read exactly."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import MissingExtraError, TimestampError, ValidationError
from headwater.features import (
    DerivedFeature,
    Entity,
    Feature,
    FeatureSet,
    Lifetime,
    Sliding,
    StreamSource,
    Tumbling,
    Window,
    point_in_time,
    training_frame,
)
from headwater.features.pointintime import Mode, Queries, Sources
from headwater.features.timetravel import applied_events
from headwater.log import Log, Schema
from headwater.testing import ManualClock, MemoryBackend
from headwater.time import to_micros
from tests.models.adapters import require

require("pandas")
import pandas as pd  # noqa: E402

BASE = datetime(2024, 3, 30, 22, 0, tzinfo=UTC)  # a DST change in Europe follows
BASE_US = to_micros(BASE)
SECOND = 1_000_000
USER = Entity("user", key="user")
SHOP = Entity("shop", key="shop")
SCHEMA = Schema.of({"user": "string", "shop": "string", "amount": "float64", "ts": "timestamp"},
                   key="user", event_time="ts")
SHOP_SCHEMA = Schema.of({"shop": "string", "amount": "float64", "ts": "timestamp"},
                        key="shop", event_time="ts")
ON_TIME = StreamSource.of("payments", allowed_lateness="3650d")  # nothing is ever late
KINDS = ["count", "sum", "mean", "min", "max", "last", "std", "approx_distinct", "last_n"]
WINDOWS: list[Window] = [Lifetime(), Tumbling(600 * SECOND), Sliding(1_800 * SECOND, 300 * SECOND)]
ZONES = [UTC, ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]


def make_log(clock: ManualClock) -> Log:
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic("payments", SCHEMA, partitions=2)
    return log


def replayed(log: Log, topic: str) -> pa.Table:
    info = log.topic(topic)
    return pa.Table.from_batches([f.batch for f in log.replay(topic)],
                                 info.schema.stored_schema())


@st.composite
def appended(draw: st.DrawFn) -> tuple[Log, int]:
    """A log of payments appended in a few batches (append time moves on between them),
    event times out of order and tied; returns the log and its last append time."""
    clock = ManualClock(BASE_US)
    log = make_log(clock)
    for _ in range(draw(st.integers(0, 4))):
        rows = draw(st.lists(st.tuples(st.sampled_from("abc"), st.integers(-7_200, 7_200),
                                       st.integers(-5, 50)), max_size=12))
        log.append("payments", [{"user": u, "shop": "s", "amount": float(v),
                                 "ts": BASE_US + t * SECOND} for u, t, v in rows])
        clock.advance(draw(st.integers(0, 3_600)) * SECOND)
    return log, clock.now_us()


@given(
    appended(),
    st.lists(st.tuples(st.sampled_from("abcz"), st.integers(-9_000, 12_000)), max_size=15),
    st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True),
    st.sampled_from(WINDOWS),
    st.sampled_from([None, 900 * SECOND]),
    st.sampled_from(["event_time", "known_at"]),
    st.sampled_from(ZONES),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_the_dataframe_call_equals_point_in_time(
    log_and_end: tuple[Log, int], rows: list[tuple[str, int]], kinds: list[str],
    window: Window, ttl: int | None, mode: Mode, zone: Any, naive: bool, rng: Any,
) -> None:
    log, _ = log_and_end
    features = [Feature.of(f"f_{kind}", USER, ON_TIME, kind,
                           column=None if kind == "count" else "amount", window=window,
                           ttl=ttl, n=2 if kind == "last_n" else None) for kind in kinds]
    instants = [BASE + timedelta(seconds=t) for _, t in rows]
    local: pd.Series[Any] = pd.Series([moment.astimezone(zone) for moment in instants],
                                      dtype=f"datetime64[us, {zone}]")
    times = local.dt.tz_localize(None) if naive else local
    index = [rng.choice([0, 1, 7]) for _ in rows]  # a repeated, unordered index
    entity_df = pd.DataFrame({"user": [u for u, _ in rows], "ts": times.array,
                              "label": np.arange(len(rows)) % 2}, index=index)

    try:
        got = training_frame(entity_df, features, log=log, time="ts", mode=mode,
                             timezone=str(zone) if naive else None)
    except TimestampError:
        # a naive wall time the zone skips or repeats (a DST change) is refused, never guessed
        assert naive
        assert zone is not UTC
        return
    want = point_in_time(features, Sources(replayed(log, "payments"), "user", "ts"),
                         Queries(pa.array([u for u, _ in rows], pa.string()),
                                 np.array([to_micros(m) for m in instants], np.int64)),
                         mode=mode)
    assert list(got.columns) == ["user", "ts", "label", *(f.name for f in features)]
    assert list(got.index) == index
    assert got["label"].tolist() == entity_df["label"].tolist()
    assert got["ts"].equals(entity_df["ts"])
    for f in features:
        for g, w in zip(got[f.name].tolist(), want.column(f.name).to_pylist(), strict=True):
            assert same(g, w), (f.name, g, w)


def same(got: Any, want: Any) -> bool:
    if want is None:
        return got is None or (isinstance(got, float) and math.isnan(got))
    if isinstance(want, list):
        return [float(v) for v in got] == want
    return math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12)


def frame(**columns: Any) -> pd.DataFrame:
    return pd.DataFrame(columns)


def at(*seconds: int) -> pd.Series[Any]:
    return pd.Series([BASE + timedelta(seconds=s) for s in seconds],
                     dtype="datetime64[us, UTC]")


@pytest.fixture
def log() -> Log:
    clock = ManualClock(BASE_US)
    log = make_log(clock)
    log.append("payments", [{"user": "a", "shop": "s1", "amount": 5.0, "ts": BASE_US},
                            {"user": "a", "shop": "s2", "amount": 7.0, "ts": BASE_US + 60 * SECOND},
                            {"user": "b", "shop": "s1", "amount": 1.0, "ts": BASE_US}])
    clock.advance(3_600 * SECOND)  # these arrive an hour after they happened
    log.append("payments", [{"user": "a", "shop": "s1", "amount": 100.0,
                             "ts": BASE_US + 120 * SECOND}])
    return log


SPEND = Feature.of("spend", USER, ON_TIME, "sum", column="amount")
COUNT = Feature.of("n", USER, ON_TIME, "count", window=Sliding.of("10m", hop="1m"))
AVERAGE = Feature.of("average", USER, ON_TIME, "mean", column="amount")


def test_one_row_per_input_row_in_order_with_every_column_kept(log: Log) -> None:
    entity_df = frame(user=["a", "z", "a", "a", "b"], ts=at(90, 90, 30, 90, 10),
                      label=[1, 0, 0, 1, 0], note=["x", "y", "z", "w", "v"])
    got = training_frame(entity_df, FeatureSet("checkout", (SPEND, COUNT, AVERAGE)), log=log)
    assert got["spend"].tolist() == [12.0, 0.0, 5.0, 12.0, 1.0]  # duplicates kept
    assert got["n"].tolist() == [2.0, 0.0, 1.0, 2.0, 1.0]
    # an entity never seen is not dropped: counts and sums are 0, as serving reads them,
    # and a mean has no value
    assert math.isnan(got["average"][1])
    assert got["average"][0] == 6.0
    assert got[["user", "ts", "label", "note"]].equals(entity_df)
    assert entity_df.columns.tolist() == ["user", "ts", "label", "note"]  # the input is kept


def test_as_known_at_leaves_out_what_the_log_learnt_later(log: Log) -> None:
    entity_df = frame(user=["a", "a"], ts=at(300, 3_700))
    as_of = training_frame(entity_df, [SPEND], log=log)
    known = training_frame(entity_df, [SPEND], log=log, mode="known_at")
    assert as_of["spend"].tolist() == [112.0, 112.0]
    # the payment at 120 s was appended at 3,600 s: before then, serving could not see it,
    # and nothing at all was known at 300 s (the first batch was appended at 0 s, so it was)
    assert known["spend"].tolist() == [12.0, 112.0]


def test_naive_times_are_refused_unless_a_zone_is_named(log: Log) -> None:
    naive = frame(user=["a"], ts=pd.Series([datetime(2024, 3, 30, 23, 1)], dtype="datetime64[us]"))  # noqa: DTZ001
    with pytest.raises(TimestampError, match="naive") as info:
        training_frame(naive, [SPEND], log=log)
    assert info.value.field == "entity_df.ts"
    # 23:01 in Paris is 22:01 UTC: one minute after the first two payments
    got = training_frame(naive, [SPEND], log=log, timezone="Europe/Paris")
    assert got["spend"].tolist() == [12.0]
    assert training_frame(naive, [SPEND], log=log, timezone="UTC")["spend"].tolist() == [112.0]


@pytest.mark.parametrize("wall", [datetime(2024, 3, 31, 2, 30),  # noqa: DTZ001 (skipped)
                                  datetime(2024, 10, 27, 2, 30)])  # noqa: DTZ001 (twice)
def test_wall_times_a_zone_skips_or_repeats_are_refused(log: Log, wall: datetime) -> None:
    naive = frame(user=["a"], ts=pd.Series([wall], dtype="datetime64[us]"))
    with pytest.raises(TimestampError, match="Europe/Paris"):
        training_frame(naive, [SPEND], log=log, timezone="Europe/Paris")
    with pytest.raises(TimestampError, match="Mars/Olympus"):
        training_frame(naive, [SPEND], log=log, timezone="Mars/Olympus")


@pytest.mark.parametrize(
    ("entity_df", "field", "reason"),
    [
        (frame(user=["a"], ts=["2024-03-30T22:00:00Z"]), "entity_df.ts", "pandas.to_datetime"),
        (frame(user=["a"], ts=pd.Series([pd.NaT], dtype="datetime64[us, UTC]")),
         "entity_df.ts", "no time at row 0"),
        (frame(user=["a"], when=at(0)), "entity_df.ts", "no such column"),
        (frame(customer=["a"], ts=at(0)), "entity_df.user", "no such column"),
        (frame(user=["a", None], ts=at(0, 1)), "entity_df.user", "null key at row 1"),
        (frame(user=["a"], ts=at(0), spend=[1.0]), "entity_df", "spend: already a column"),
        (frame(user=[42.0], ts=at(0)), "entities.user", "give them as int or str"),
        (frame(user=[[1]], ts=at(0)), "entities.user", "cannot be read"),
        (frame(user=["a"], ts=pd.Series([datetime(1800, 1, 1, tzinfo=UTC)],
                                         dtype="datetime64[us, UTC]")), "entity_df.ts",
         "outside the accepted range"),
    ],
)
def test_bad_input_names_the_column(log: Log, entity_df: pd.DataFrame, field: str,
                                    reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as info:
        training_frame(entity_df, [SPEND], log=log)
    assert info.value.field == field


def test_an_empty_frame_gets_empty_feature_columns(log: Log) -> None:
    got = training_frame(frame(user=pd.Series([], dtype=str), ts=at()), [SPEND, COUNT], log=log)
    assert got.columns.tolist() == ["user", "ts", "spend", "n"]
    assert len(got) == 0


def test_features_of_two_entities_and_derived_features_with_request_values() -> None:
    clock = ManualClock(BASE_US)
    log = make_log(clock)
    log.create_topic("shop_payments", SHOP_SCHEMA)
    log.append("payments", [{"user": "a", "shop": "s1", "amount": 4.0, "ts": BASE_US}])
    log.append("shop_payments", [{"shop": "s1", "amount": 10.0, "ts": BASE_US},
                                 {"shop": "s1", "amount": 30.0, "ts": BASE_US + SECOND}])
    shop_mean = Feature.of("shop_mean", SHOP, StreamSource.of("shop_payments"), "mean",
                           column="amount")
    ratio: Callable[[Any], npt.NDArray[Any]] = lambda c: c["amount"] / c["shop_mean"]  # noqa: E731
    share = DerivedFeature("share", ("amount", "shop_mean"), ratio)
    entity_df = frame(user=["a", "a"], shop=["s1", "s1"], ts=at(0, 5), amount=[10.0, 40.0])
    got = training_frame(entity_df, [SPEND, shop_mean, share], log=log)
    assert got["spend"].tolist() == [4.0, 4.0]
    assert got["shop_mean"].tolist() == [10.0, 20.0]
    assert got["share"].tolist() == [1.0, 2.0]
    assert got.columns.tolist() == ["user", "shop", "ts", "amount", "spend", "shop_mean",
                                    "share"]


def test_a_feature_sets_helpers_feed_derived_features_and_are_left_out(log: Log) -> None:
    share: Callable[[Any], npt.NDArray[Any]] = lambda c: c["amount"] / c["spend"]  # noqa: E731
    ratio = DerivedFeature("share", ("amount", "spend"), share)
    checkout = FeatureSet("checkout", (SPEND, COUNT, ratio), helpers=("spend",))
    got = training_frame(frame(user=["a"], ts=at(90), amount=[24.0]), checkout, log=log)
    assert got.columns.tolist() == ["user", "ts", "amount", "n", "share"]
    assert got["share"].tolist() == [2.0]


def test_late_events_are_left_out_as_the_engine_leaves_them_out() -> None:
    clock = ManualClock(BASE_US)
    log = make_log(clock)
    strict = Feature.of("n", USER, StreamSource.of("payments"), "count")
    log.append("payments", [{"user": "a", "shop": "s", "amount": 1.0, "ts": BASE_US + 60 * SECOND},
                            {"user": "a", "shop": "s", "amount": 1.0, "ts": BASE_US}])  # late
    got = training_frame(frame(user=["a"], ts=at(120)), [strict], log=log)
    want = point_in_time([strict], Sources(applied_events(log, "payments", 0), "user", "ts"),
                         Queries(pa.array(["a"]), np.array([BASE_US + 120 * SECOND])))
    assert got["n"].tolist() == want.column("n").to_pylist() == [1.0]


def test_without_pandas_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                  log: Log) -> None:
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'headwater\[pandas\]'"):
        training_frame(object(), [SPEND], log=log)  # type: ignore[arg-type]
