"""Missing values and text columns: every path computes the same, by the one rule.

A missing value (null, NaN, ±inf where the schema allows non-finite floats) moves no
aggregation of its column; ``last`` and ``approx_distinct`` work over text; a feature
whose aggregation cannot fold its column's type is refused before any event is read.
The live engine (step by step), a backfill, the point-in-time join (both modes) and the
oracle agree on random streams.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import ValidationError
from headwater.features.definitions import Entity, Feature, Filter, StreamSource
from headwater.features.engine import FeatureEngine, backfill
from headwater.features.online import values_at
from headwater.features.pointintime import Queries, Sources, point_in_time
from headwater.features.values import check_feature
from headwater.features.windows import Lifetime, Sliding, Tumbling
from headwater.log import Log, Schema
from headwater.log.schema import TIMESTAMP
from headwater.store.online.memory import MemoryOnlineStore
from headwater.testing import ManualClock, MemoryBackend
from tests.features.oracle import Event, oracle

SCHEMA = Schema.of({"user": "string", "x": "float64", "tag": "string", "ts": "timestamp"},
                   key="user", event_time="ts", nullable=("x", "tag"),
                   allow_non_finite=("x",))
LATENESS = 15
USER = Entity("user", key="user")
SOURCE = StreamSource.of("events", allowed_lateness=LATENESS)
NUMBER_FEATURES = [
    Feature.of("n", USER, SOURCE, "count", window=Sliding(12, 4)),
    Feature.of("total", USER, SOURCE, "sum", column="x"),
    Feature.of("total_12", USER, SOURCE, "sum", column="x", window=Sliding(12, 4), ttl=40),
    Feature.of("mean_10", USER, SOURCE, "mean", column="x", window=Tumbling(10)),
    Feature.of("low", USER, SOURCE, "min", column="x", window=Sliding(20, 5)),
    Feature.of("high", USER, SOURCE, "max", column="x"),
    Feature.of("last_x", USER, SOURCE, "last", column="x", window=Sliding(12, 4)),
    Feature.of("spread", USER, SOURCE, "std", column="x", window=Sliding(20, 5)),
    Feature.of("recent", USER, SOURCE, "last_n", column="x", window=Lifetime(), n=2),
    Feature.of("kinds_x", USER, SOURCE, "approx_distinct", column="x"),
]
TEXT_FEATURES = [
    Feature.of("last_tag", USER, SOURCE, "last", column="tag"),
    Feature.of("last_tag_12", USER, SOURCE, "last", column="tag", window=Sliding(12, 4),
               ttl=30),
    Feature.of("tags", USER, SOURCE, "approx_distinct", column="tag", window=Sliding(20, 5)),
    Feature.of("big_tag", USER, SOURCE, "last", column="tag", where=Filter("x", ">", 2)),
]
FEATURES = NUMBER_FEATURES + TEXT_FEATURES
USERS = ["a", "b", "c"]
X = st.one_of(st.integers(-3, 9).map(float), st.none(),
              st.sampled_from([math.nan, math.inf, -math.inf]))
TAG = st.one_of(st.none(), st.sampled_from(["ord", "lax", "cdg", "über", ""]))

Row = tuple[str, int, float | None, str | None]


@st.composite
def appends(draw: st.DrawFn) -> list[tuple[int, list[Row]]]:
    """Batches of (append time, [(user, event time, x, tag)]), some late."""
    batches, now = [], 100
    for _ in range(draw(st.integers(1, 7))):
        now += draw(st.integers(0, 9))
        rows = draw(st.lists(st.tuples(st.sampled_from(USERS), st.integers(now - 30, now),
                                       X, TAG), max_size=6))
        batches.append((now, rows))
    return batches


def build_log(batches: list[tuple[int, list[Row]]]) -> Log:
    clock = ManualClock(0)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic("events", SCHEMA, partitions=1)
    for append_time, rows in batches:
        clock.set(append_time)
        if rows:
            result = log.append("events", pa.record_batch({
                "user": pa.array([r[0] for r in rows]),
                "x": pa.array([r[2] for r in rows], pa.float64()),
                "tag": pa.array([r[3] for r in rows], pa.string()),
                "ts": pa.array([r[1] for r in rows], pa.int64()).cast(TIMESTAMP),
            }))
            assert not result.rejected
    return log


def applied(log: Log, column: str) -> list[Event]:
    """The events in log order without the late ones, with ``column`` as the value."""
    out, watermark = [], None
    for fetched in log.replay("events"):
        for row in fetched.batch.to_pylist():
            tau = row["ts"] if isinstance(row["ts"], int) else _us(row["ts"])
            late = watermark is not None and tau < watermark - LATENESS
            watermark = tau if watermark is None else max(watermark, tau)
            if not late:
                out.append(Event(row["user"], tau, _us(row["_append_time"]), row["_offset"],
                                 row[column]))
    return out


def _us(value: Any) -> int:
    from headwater.time import to_micros

    return value if isinstance(value, int) else to_micros(value)


def expected(feature: Feature, log: Log, user: str, t: int, mode: str = "known_at") -> Any:
    events = applied(log, feature.column or "x")
    if feature.where is not None:
        xs = {e.offset: e.value for e in applied(log, "x")}
        events = [e for e in events if isinstance(x := xs[e.offset], float) and x > 2]
    return oracle(feature, events, user, t, mode)  # type: ignore[arg-type]


def same(got: Any, want: Any) -> bool:
    if want is None or got is None:
        return got is None and want is None
    if isinstance(want, (list, str)):
        return bool(got == want)
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


@given(appends(), st.lists(st.integers(1, 7), min_size=1, max_size=4))
def test_missing_values_and_text_agree_on_every_path(
    tmp_path_factory: pytest.TempPathFactory, batches: Any, steps: list[int]
) -> None:
    tmp = tmp_path_factory.mktemp("missing")
    log = build_log(batches)
    rows = [r for f in log.replay("events") for r in f.batch.to_pylist()]
    online = MemoryOnlineStore()
    engine = FeatureEngine(log, FEATURES, online, state_dir=tmp / "live", checkpoint_events=4)
    processed, i = 0, 0
    while processed < len(rows):
        processed += engine.step(max_events=steps[i % len(steps)])
        i += 1
        t = _us(rows[processed - 1]["_append_time"])
        if processed < len(rows) and _us(rows[processed]["_append_time"]) == t:
            continue
        for user in USERS:
            got = values_at(FEATURES, online.read("user", user), t)
            for feature in FEATURES:
                want = expected(feature, log, user, t)
                assert same(got[feature.name], want), (feature.name, user, t, got, want)
    engine.close()
    # Resumed from its checkpoint (the text dictionary with it), it answers the same.
    resumed = FeatureEngine(log, FEATURES, online, state_dir=tmp / "live")
    resumed.step()
    resumed.close()

    end = max((_us(r["_append_time"]) for r in rows), default=0)
    refill = MemoryOnlineStore()
    backfill(log, FEATURES, refill, state_dir=tmp / "backfill")
    history = pa.Table.from_batches([f.batch for f in log.replay("events")],
                                    SCHEMA.stored_schema())
    kept = {e.offset for e in applied(log, "x")}
    history = history.filter(pa.array([o in kept for o in history.column("_offset").to_pylist()],
                                      pa.bool_()))
    times = [end - 5, end, end + 7, end + 25, end + 60]
    queries = Queries(pa.array([u for u in USERS for _ in times]),
                      np.array([t for _ in USERS for t in times], np.int64))
    for mode in ("known_at", "event_time"):
        pit = point_in_time(FEATURES, Sources(history, "user", "ts"), queries, mode=mode)
        row = 0
        for user in USERS:
            for t in times:
                for feature in FEATURES:
                    want = expected(feature, log, user, t, mode)
                    got = pit.column(feature.name)[row].as_py()
                    assert same(got, want), (mode, feature.name, user, t, got, want)
                row += 1
    for user in USERS:
        for t in times:
            if t < end:
                continue
            live = values_at(FEATURES, online.read("user", user), t)
            again = values_at(FEATURES, refill.read("user", user), t)
            for feature in FEATURES:
                want = expected(feature, log, user, t)
                assert same(live[feature.name], want), (feature.name, user, t)
                assert same(again[feature.name], want), (feature.name, user, t)


def test_a_lifetime_sum_skips_nan_and_infinity_and_counts_the_events(tmp_path: Path) -> None:
    log = build_log([(200, [("a", 190, 5.0, "x"), ("a", 191, math.nan, None),
                            ("a", 192, 7.0, "y"), ("b", 193, math.inf, "z"),
                            ("b", 194, None, None)])])
    online = MemoryOnlineStore()
    with FeatureEngine(log, FEATURES, online, state_dir=tmp_path) as engine:
        engine.run(idle_timeout_s=0)
    a = values_at(FEATURES, online.read("user", "a"), 195)
    b = values_at(FEATURES, online.read("user", "b"), 195)
    assert (a["total"], a["mean_10"], a["high"], a["n"], a["last_tag"]) == (12.0, 6.0, 7.0,
                                                                           3.0, "y")
    assert (b["total"], b["mean_10"], b["high"], b["n"], b["last_tag"]) == (0.0, None, None,
                                                                           2.0, "z")


def test_an_aggregation_that_cannot_read_its_column_is_refused_before_any_event() -> None:
    sums_text = Feature.of("tag_total", USER, SOURCE, "sum", column="tag")
    with pytest.raises(ValidationError) as refused:
        check_feature(sums_text, SCHEMA)
    assert refused.value.field == "tag_total.column"
    assert refused.value.reason == ("sum cannot aggregate 'tag', a string field of events "
                                    "(over string: count, approx_distinct, last)")
    log = build_log([(200, [("a", 190, 5.0, "x")])])
    with pytest.raises(ValidationError, match="sum cannot aggregate 'tag'"):
        FeatureEngine(log, [sums_text], MemoryOnlineStore(), state_dir="unused").step()
    with pytest.raises(ValidationError, match="has no field 'colour'"):
        check_feature(Feature.of("c", USER, SOURCE, "last", column="colour"), SCHEMA)
    with pytest.raises(ValidationError, match="has no field 'colour'"):
        check_feature(Feature.of("c", USER, SOURCE, "count", where=Filter("colour", "==", 1)),
                      SCHEMA)
    with pytest.raises(ValidationError, match="takes no number as its default"):
        check_feature(Feature.of("t", USER, SOURCE, "last", column="tag", default=0), SCHEMA)
    for feature in FEATURES:
        check_feature(feature, SCHEMA)
