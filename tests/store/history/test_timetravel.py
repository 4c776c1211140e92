"""Point-in-time values read from the history equal the oracle, and avoid the known
failures of other feature stores."""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from headwater.errors import ValidationError
from headwater.features.definitions import Entity, Feature, Filter, StreamSource
from headwater.features.pointintime import Mode, Queries
from headwater.features.windows import Lifetime, Sliding, Tumbling, Window
from headwater.store.history import FeatureHistory
from tests.features.oracle import Event, oracle
from tests.features.test_pointintime import KINDS, same, streams
from tests.store.history.helpers import DAY, HOUR, rows

# The oracle's streams use times -5..60; one unit is ten minutes here, so the events
# spread over a dozen hourly partitions and windows cross partition edges.
UNIT = 600_000_000
USER = Entity("user", key="user")
EVENTS = StreamSource.of("events")
WINDOWS: list[Window] = [Lifetime(), Tumbling(10 * UNIT), Sliding(12 * UNIT, 4 * UNIT),
                         Sliding(30 * UNIT, 10 * UNIT), Sliding(5 * UNIT, 5 * UNIT)]


def scaled(events: list[Event]) -> list[Event]:
    return [Event(e.entity, e.time * UNIT, e.append_time * UNIT, e.offset, e.value)
            for e in events]


def store(history: FeatureHistory, events: list[Event], cut: int, compact: bool) -> None:
    """Write ``events`` as the engine would: entity ``c`` in partition 1, the rest in 0,
    each partition's events in checkpoints of ``cut`` events."""
    for partition in (0, 1):
        mine = [e for e in events if (e.entity == "c") == (partition == 1)]
        for checkpoint, first in enumerate(range(0, len(mine), cut)):
            part = mine[first: first + cut]
            history.write("events", rows(
                [e.entity for e in part], [e.time for e in part], [e.offset for e in part],
                partition=partition, appended=[e.append_time for e in part],
                x=pa.array([e.value for e in part], pa.float64())),
                checkpoint=checkpoint, task=f"events-{partition}")
    if not events:
        history.write("events", rows([], [], []), checkpoint=0, task="events-0")
    if compact:
        history.compact("events")


@given(
    streams(),
    st.lists(st.tuples(st.sampled_from("abcz"), st.integers(-10, 80)), min_size=1, max_size=15),
    st.sampled_from(KINDS),
    st.sampled_from(WINDOWS),
    st.sampled_from([None, 7 * UNIT, 25 * UNIT]),
    st.sampled_from(["event_time", "known_at"]),
    st.integers(1, 8),
    st.booleans(),
)
def test_values_at_equal_the_oracle(
    events: list[Event], queries: list[tuple[str, int]], kind: str, window: Window,
    ttl: int | None, mode: Mode, cut: int, compact: bool,
) -> None:
    events = scaled(events)
    queries = [(entity, t * UNIT) for entity, t in queries]
    feature = Feature.of("f", USER, EVENTS, kind, column=None if kind == "count" else "x",
                         window=window, ttl=ttl, n=3 if kind == "last_n" else None)
    with tempfile.TemporaryDirectory() as root:
        history = FeatureHistory(root, granularity="hour")
        store(history, events, cut, compact)
        got = history.values_at(
            [feature], "events",
            Queries(pa.array([q[0] for q in queries]), np.array([q[1] for q in queries])),
            mode=mode,
        ).column("f").to_pylist()
    want = [oracle(feature, events, entity, t, mode) for entity, t in queries]
    for g, w, q in zip(got, want, queries, strict=True):
        assert same(g, w), (q, g, w)


@pytest.fixture
def history(tmp_path: Path) -> FeatureHistory:
    history = FeatureHistory(tmp_path, buckets=1)
    # user a: amounts 1 (day 0), 2 (day 1), 4 (day 1 + 1 h); user b: 10 on day 5
    history.write("events", rows(["a", "a", "a", "b"], [0, DAY, DAY + HOUR, 5 * DAY],
                                 [0, 1, 2, 3], x=[1.0, 2.0, 4.0, 10.0]),
                  checkpoint=0, task="events-0")
    return history


def spend(name: str = "spend", **options: object) -> Feature:
    """A sum, null where the entity has no value (not the default 0) unless ``default``
    says otherwise: these tests check which rows have a value."""
    options.setdefault("default", None)
    return Feature.of(name, USER, EVENTS, "sum", column="x", **options)  # type: ignore[arg-type]


def values(history: FeatureHistory, features: list[Feature], entities: list[str],
           times: list[int], mode: Mode = "event_time") -> dict[str, list[object]]:
    got: dict[str, list[object]] = history.values_at(
        features, "events", Queries(pa.array(entities), np.array(times)), mode=mode).to_pydict()
    return got


def test_a_label_with_no_value_within_the_ttl_comes_back_with_the_default(
        history: FeatureHistory) -> None:
    by_default = spend(ttl="1d", default=msgspec.UNSET)
    got = values(history, [by_default, replace(by_default, name="total"),
                           spend(ttl="1d", name="nullable")],
                 ["a", "a", "b"], [DAY + 2 * HOUR, 10 * DAY, DAY])
    # a within the TTL; a long after its last event; b before its first: rows stay, with
    # a sum's default (0) or, where the definition says so, null
    assert got == {"spend": [7.0, 0.0, 0.0], "total": [7.0, 0.0, 0.0],
                   "nullable": [7.0, None, None]}


def test_duplicate_label_rows_both_come_back(history: FeatureHistory) -> None:
    got = values(history, [spend()], ["a", "a", "b", "b"], [DAY, DAY, 6 * DAY, 6 * DAY])
    assert got == {"spend": [3.0, 3.0, 10.0, 10.0]}


def test_the_order_of_the_label_rows_is_kept(history: FeatureHistory) -> None:
    entities = ["b", "a", "z", "a", "a", "b"]
    times = [6 * DAY, DAY + HOUR, DAY, 0, DAY, 0]
    assert values(history, [spend()], entities, times) == {
        "spend": [10.0, 7.0, None, 1.0, 3.0, None]}


def test_a_known_entity_with_an_empty_window_is_zero_not_null(history: FeatureHistory) -> None:
    # Without a TTL the join must know a's whole past: a's last event is 4 days back.
    recent = spend(window=Sliding.of("1h", hop="1h"))
    got = values(history, [recent, replace(recent, name="ttl", ttl_us=DAY)],
                 ["a", "z"], [5 * DAY, 5 * DAY])
    assert got == {"spend": [0.0, None], "ttl": [None, None]}


def test_with_a_ttl_the_scan_skips_older_partitions(history: FeatureHistory) -> None:
    folder = history.root / "source=events/bucket=0/day=1970-01-01"
    (folder / "events-0-000000000000-0.parquet").write_bytes(b"never read")
    latest = Feature.of("latest", USER, EVENTS, "last", column="x", ttl="2d")
    # the scan starts at 3 days - 2 days: a's last event (day 1, 1 h) is still in it
    assert values(history, [latest], ["a", "b"], [3 * DAY, 6 * DAY]) == {
        "latest": [4.0, 10.0]}


def test_as_known_at_ignores_rows_appended_after_the_query(tmp_path: Path) -> None:
    history = FeatureHistory(tmp_path)
    # the event of time 10 arrived late, at 50; the event of time 70 came early, at 30
    history.write("events", rows(["a", "a", "a"], [10, 12, 70], [0, 1, 2], appended=[50, 12, 30],
                                 x=[5.0, 1.0, 3.0]), checkpoint=0, task="events-0")
    count = Feature.of("n", USER, EVENTS, "count")
    assert values(history, [count], ["a"] * 3, [20, 40, 60], "event_time") == {"n": [2, 2, 2]}
    assert values(history, [count], ["a"] * 3, [20, 40, 60], "known_at") == {"n": [1, 2, 3]}


def test_filters_and_integer_entities(tmp_path: Path) -> None:
    history = FeatureHistory(tmp_path)
    history.write("events", rows([7, 7, 8], [1, 2, 3], [0, 1, 2], x=[5.0, -1.0, 2.0]),
                  checkpoint=0, task="events-0")
    positive = spend(where=Filter("x", ">", 0))
    got = history.values_at([positive], "events", Queries(pa.array([7, 8, 9], pa.int32()),
                                                          np.array([10, 10, 10])))
    assert got.column("spend").to_pylist() == [5.0, 2.0, None]


def test_bad_time_travel_requests_are_rejected(history: FeatureHistory) -> None:
    other = Feature.of("n", USER, StreamSource.of("clicks"), "count")
    queries = Queries(pa.array(["a"]), np.array([1]))
    with pytest.raises(ValidationError, match=r"n\.source"):
        history.values_at([other], "events", queries)
    with pytest.raises(ValidationError, match=r"queries\.entities"):
        history.values_at([spend()], "events", Queries(pa.array([1]), np.array([1])))
    with pytest.raises(ValidationError, match="queries"):
        history.values_at([spend()], "events", Queries(pa.array(["a"]), np.array([1, 2])))
    with pytest.raises(ValidationError, match="no column 'y'"):
        history.values_at([replace(spend(), column="y")], "events", queries)
    assert history.values_at([spend()], "events",
                             Queries(pa.array([], pa.string()), np.array([], np.int64))
                             ).num_rows == 0
