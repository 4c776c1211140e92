"""Batch features from tables, and derived features online and offline."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from headwater.errors import ValidationError
from headwater.features import (
    DerivedFeature,
    Entity,
    Feature,
    FeatureSet,
    Filter,
    Queries,
    Sources,
    StreamSource,
    TableSource,
    Tumbling,
)
from headwater.features.engine import FeatureEngine
from headwater.features.online import FeatureReader
from headwater.features.pointintime import model_inputs, point_in_time, with_derived
from headwater.features.tables import load_table
from headwater.log import Log, Schema
from headwater.store.online.memory import MemoryOnlineStore
from headwater.testing import ManualClock, MemoryBackend

USER = Entity("user", key="user")


def write_csv(path: Path, rows: list[tuple[str, str, float]]) -> None:
    pacsv.write_csv(pa.table({
        "user": [r[0] for r in rows], "valid_from": [r[1] for r in rows],
        "limit": [r[2] for r in rows],
    }), path)


def test_a_table_is_a_bounded_stream(tmp_path: Path) -> None:
    path = tmp_path / "limits.csv"
    # Rows in any time order: a table has no late rows.
    write_csv(path, [("a", "2024-01-02T00:00:00Z", 200.0), ("a", "2024-01-01T00:00:00Z", 100.0),
                     ("b", "2024-01-01T00:00:00Z", 50.0)])
    source = TableSource("limits", str(path), entity_key="user", valid_from="valid_from")
    limit = Feature.of("credit_limit", USER, source, "last", column="limit")
    clock = ManualClock(1_800_000_000_000_000)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    load_table(log, source)
    load_table(log, source)  # idempotent
    assert log.end_offsets("table.limits") == [3]
    online = MemoryOnlineStore()
    with FeatureEngine(log, [limit], online, state_dir=tmp_path / "state") as engine:
        engine.run(idle_timeout_s=0)
    reader = FeatureReader(online, FeatureSet("risk", (limit,)))
    assert reader.read({"user": "a"}, clock.now_us()) == {"credit_limit": 200.0}
    events = pa.Table.from_batches([f.batch for f in log.replay("table.limits")])
    day1 = 1_704_067_200_000_000
    frame = point_in_time([limit], Sources(events, "user", "valid_from"),
                          Queries(pa.array(["a", "a", "b", "c"]),
                                  np.array([day1, day1 + 86_400_000_000, day1, day1])))
    assert frame.column("credit_limit").to_pylist() == [100.0, 200.0, 50.0, None]


def test_bad_tables(tmp_path: Path) -> None:
    log = Log(MemoryBackend())
    with pytest.raises(ValidationError, match="no such file"):
        load_table(log, TableSource("t", str(tmp_path / "nope.csv"), "user", "valid_from"))
    path = tmp_path / "t.csv"
    write_csv(path, [("a", "2024-01-01T00:00:00Z", 1.0)])
    with pytest.raises(ValidationError, match="when"):
        load_table(log, TableSource("t", str(path), "user", "when"))


def ratio(columns: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[Any]:
    return np.asarray(columns["amount"] / np.fmax(columns["spend"], 1.0))


def test_derived_features_agree_online_and_offline(tmp_path: Path) -> None:
    schema = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"},
                       key="user", event_time="ts")
    clock = ManualClock(0)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic("pay", schema)
    for t, (user, x) in enumerate([("a", 10.0), ("a", 30.0), ("b", 5.0)], start=1):
        clock.set(t)
        log.append("pay", [{"user": user, "x": x, "ts": t}])
    spend = Feature.of("spend", USER, StreamSource.of("pay"), "sum", column="x",
                       window=Tumbling(100))
    share = DerivedFeature("share", ("amount", "spend"), ratio)
    feature_set = FeatureSet("checkout", (spend, share))
    online = MemoryOnlineStore()
    with FeatureEngine(log, [spend], online, state_dir=tmp_path) as engine:
        engine.run(idle_timeout_s=0)
    reader = FeatureReader(online, feature_set)
    served = [reader.read({"user": u}, 5, {"amount": amount})
              for u, amount in [("a", 20.0), ("b", 20.0), ("c", 20.0)]]
    events = pa.Table.from_batches([f.batch for f in log.replay("pay")])
    frame = point_in_time([spend], Sources(events, "user", "ts"),
                          Queries(pa.array(["a", "b", "c"]), np.array([5, 5, 5])),
                          mode="known_at").append_column("amount", pa.array([20.0] * 3))
    offline = with_derived([share], frame).to_pylist()
    assert [s["share"] for s in served] == [o["share"] for o in offline] == [0.5, 4.0, 20.0]
    assert served[2]["spend"] == 0.0  # never seen: a sum's default
    row = reader.read_row({"user": "c"}, 5, {"amount": 20.0})
    assert row.defaulted == ("spend",)
    assert row.unknown == ("user",)
    assert reader.read_row({"user": "a"}, 5, {"amount": 20.0})[1:] == ((), ())
    with pytest.raises(ValidationError, match=r"entities\.user"):
        reader.read({}, 5)


def arrival_share(columns: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[Any]:
    return np.asarray(columns["arrivals"] / np.fmax(columns["arrivals"] + columns["departures"],
                                                    1.0))


def test_helpers_feed_derived_features_but_are_no_model_inputs(tmp_path: Path) -> None:
    schema = Schema.of({"carrier": "int64", "kind": "string", "ts": "timestamp"},
                       key="carrier", event_time="ts")
    clock = ManualClock(0)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic("flights", schema)
    for t, (key, kind) in enumerate([(7, "arr"), (7, "dep"), (7, "arr"), (8, "dep")], 1):
        clock.set(t)
        log.append("flights", [{"carrier": key, "kind": kind, "ts": t}])
    carrier = Entity("carrier", key="carrier")
    flights = StreamSource.of("flights")
    arrivals = Feature.of("arrivals", carrier, flights, "count", where=Filter("kind", "==", "arr"))
    departures = Feature.of("departures", carrier, flights, "count",
                            where=Filter("kind", "==", "dep"))
    share = DerivedFeature("share", ("arrivals", "departures"), arrival_share)
    feature_set = FeatureSet("ops", (arrivals, departures, share), helpers=("departures",))
    assert feature_set.inputs == ["arrivals", "share"]
    online = MemoryOnlineStore()
    with FeatureEngine(log, [arrivals, departures], online, state_dir=tmp_path) as engine:
        engine.run(idle_timeout_s=0)
    reader = FeatureReader(online, feature_set)
    served = [reader.read({"carrier": str(c)}, 10) for c in (7, 8, 9)]
    assert served == [{"arrivals": 2.0, "share": 2 / 3}, {"arrivals": 0.0, "share": 0.0},
                      {"arrivals": 0.0, "share": 0.0}]
    assert reader.read_row({"carrier": "9"}, 10, helpers=True) == (
        {"arrivals": 0.0, "departures": 0.0, "share": 0.0}, ("arrivals", "departures"),
        ("carrier",))
    events = pa.Table.from_batches([f.batch for f in log.replay("flights")])
    frame = point_in_time([arrivals, departures], Sources(events, "carrier", "ts"),
                          Queries(pa.array([7, 8, 9]), np.array([10, 10, 10])), mode="known_at")
    assert model_inputs(feature_set, frame).to_pylist() == served
    with pytest.raises(ValidationError, match="feeds no derived feature"):
        FeatureSet("ops", (arrivals, departures, share), helpers=("arrivals", "share"))
    with pytest.raises(ValidationError, match="not a feature of the set"):
        FeatureSet("ops", (arrivals, share), helpers=("departures",))
    assert FeatureSet("ops", (arrivals, departures, share)).version != feature_set.version


def test_a_filter_with_an_unknown_operator_is_refused_when_defined() -> None:
    from headwater.errors import ValidationError as _ValidationError
    from headwater.features import Filter

    with pytest.raises(_ValidationError, match=r"filter\.topic\.op"):
        Filter("topic", "eq", 1)  # type: ignore[arg-type]
