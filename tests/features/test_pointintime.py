"""The point-in-time join equals the brute-force oracle on random streams."""

from __future__ import annotations

import math
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.features.definitions import Entity, Feature, Filter, StreamSource
from headwater.features.pointintime import Mode, Queries, Sources, feature_values, point_in_time
from headwater.features.windows import Lifetime, Sliding, Tumbling, Window
from tests.features.oracle import Event, oracle

USER = Entity("user", key="user")
SOURCE = StreamSource.of("events")
KINDS = ["count", "sum", "mean", "min", "max", "last", "var", "std", "approx_distinct", "last_n"]
WINDOWS: list[Window] = [Lifetime(), Tumbling(10), Sliding(12, 4), Sliding(30, 10), Sliding(5, 5)]


def table(events: list[Event]) -> pa.Table:
    return pa.table({
        "user": pa.array([e.entity for e in events], pa.string()),
        "ts": pa.array([e.time for e in events], pa.int64()),
        "_append_time": pa.array([e.append_time for e in events], pa.int64()),
        "_offset": pa.array([e.offset for e in events], pa.int64()),
        "x": pa.array([e.value for e in events], pa.float64()),
    })


@st.composite
def streams(draw: st.DrawFn) -> list[Event]:
    """Events in log order: offsets increase, append times never go back, event times
    wander (out of order) and repeat (ties)."""
    n = draw(st.integers(0, 40))
    events, append = [], 0
    for offset in range(n):
        append += draw(st.integers(0, 3))
        time = draw(st.integers(-5, 60))
        value = float(draw(st.integers(-4, 9)))
        events.append(Event(draw(st.sampled_from("abc")), time, append, offset, value))
    return events


def same(got: Any, want: Any) -> bool:
    if want is None or got is None:
        return got is None and want is None
    if isinstance(want, list):
        return bool(got == want)
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


@given(
    streams(),
    st.lists(st.tuples(st.sampled_from("abcz"), st.integers(-10, 80)), min_size=1, max_size=15),
    st.sampled_from(KINDS),
    st.sampled_from(WINDOWS),
    st.sampled_from([None, 7, 25]),
    st.sampled_from(["event_time", "known_at"]),
    st.sampled_from([msgspec.UNSET, None, -2.5]),
)
def test_point_in_time_equals_the_oracle(
    events: list[Event], queries: list[tuple[str, int]], kind: str, window: Window,
    ttl: int | None, mode: Mode, default: float | msgspec.UnsetType | None,
) -> None:
    feature = Feature.of("f", USER, SOURCE, kind, column=None if kind == "count" else "x",
                         window=window, ttl=ttl, n=3 if kind == "last_n" else None,
                         default=msgspec.UNSET if kind == "last_n" else default)
    got = feature_values(
        feature, Sources(table(events), "user", "ts"),
        Queries(pa.array([q[0] for q in queries]), np.array([q[1] for q in queries])), mode=mode,
    ).to_pylist()
    want = [oracle(feature, events, entity, t, mode) for entity, t in queries]
    assert len(got) == len(queries)
    for g, w, q in zip(got, want, queries, strict=True):
        assert same(g, w), (q, g, w)


def test_missing_rows_come_back_as_the_default_and_duplicates_are_kept() -> None:
    events = [Event("a", 10, 10, 0, 1.0), Event("a", 20, 20, 1, 2.0)]
    queries = Queries(pa.array(["a", "a", "b", "a", "a"]), np.array([21, 21, 21, 40, 5]))
    source = Sources(table(events), "user", "ts")
    # within the TTL, the same row twice, an unknown entity, past the TTL, before any event
    spend = Feature.of("spend", USER, SOURCE, "sum", column="x", window=Lifetime(), ttl=5)
    assert feature_values(spend, source, queries).to_pylist() == [3.0, 3.0, 0.0, 0.0, 0.0]
    spend = Feature.of("spend", USER, SOURCE, "sum", column="x", window=Lifetime(), ttl=5,
                       default=None)
    assert feature_values(spend, source, queries).to_pylist() == [3.0, 3.0, None, None, None]
    top = Feature.of("top", USER, SOURCE, "max", column="x", window=Lifetime(), ttl=5)
    assert point_in_time([top], source, queries).column("top").to_pylist() == [
        2.0, 2.0, None, None, None]


def test_known_at_excludes_what_arrived_later() -> None:
    # The event at time 10 was appended only at time 50 (it came late).
    events = [Event("a", 10, 50, 0, 5.0), Event("a", 12, 12, 1, 1.0)]
    feature = Feature.of("n", USER, SOURCE, "count", window=Lifetime())
    queries = Queries(pa.array(["a", "a"]), np.array([20, 60]))
    source = Sources(table(events), "user", "ts")
    assert feature_values(feature, source, queries, mode="event_time").to_pylist() == [2, 2]
    assert feature_values(feature, source, queries, mode="known_at").to_pylist() == [1, 2]


def test_filters_apply_before_aggregating() -> None:
    events = [Event("a", 1, 1, 0, 5.0), Event("a", 2, 2, 1, -1.0), Event("a", 3, 3, 2, 7.0)]
    feature = Feature.of("pos", USER, SOURCE, "sum", column="x", where=Filter("x", ">", 0))
    got = feature_values(feature, Sources(table(events), "user", "ts"),
                         Queries(pa.array(["a"]), np.array([10])))
    assert got.to_pylist() == [12.0]


def test_sliding_windows_decay_between_events() -> None:
    events = [Event("a", 0, 0, 0, 1.0), Event("a", 5, 5, 1, 1.0)]
    feature = Feature.of("n", USER, SOURCE, "count", window=Sliding(10, 5))
    got = feature_values(feature, Sources(table(events), "user", "ts"),
                         Queries(pa.array(["a"] * 4), np.array([5, 9, 10, 15])))
    # window at t = tiles tile(t)-1 .. tile(t); 5-wide tiles
    assert got.to_pylist() == [2.0, 2.0, 1.0, 0.0]


@pytest.mark.parametrize("mode", ["event_time", "known_at"])
def test_no_events_at_all(mode: Mode) -> None:
    feature = Feature.of("n", USER, SOURCE, "count")
    got = feature_values(feature, Sources(table([]), "user", "ts"),
                         Queries(pa.array(["a"]), np.array([1])), mode=mode)
    assert got.to_pylist() == [0.0]  # nothing happened: a count's default
    feature = Feature.of("n", USER, SOURCE, "count", default=None)
    got = feature_values(feature, Sources(table([]), "user", "ts"),
                         Queries(pa.array(["a"]), np.array([1])), mode=mode)
    assert got.to_pylist() == [None]
