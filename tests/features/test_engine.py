"""The live engine, a backfill, the point-in-time join and the oracle agree."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import ValidationError
from headwater.features.checkpoint import CheckpointStore
from headwater.features.definitions import Entity, Feature, FeatureSet, Filter, StreamSource
from headwater.features.engine import FeatureEngine, backfill
from headwater.features.online import FeatureReader, values_at
from headwater.features.pointintime import Queries, Sources, point_in_time
from headwater.features.task import log_order
from headwater.features.timetravel import values_at_times
from headwater.features.windows import Lifetime, Sliding, Tumbling
from headwater.log import Log, Schema
from headwater.log.schema import TIMESTAMP
from headwater.store.online.memory import MemoryOnlineStore
from headwater.testing import ManualClock, MemoryBackend
from tests.features.oracle import Event, oracle
from tests.features.test_pointintime import same

SCHEMA = Schema.of({"user": "string", "shop": "string", "x": "float64", "ts": "timestamp"},
                   key="user", event_time="ts", nullable=("shop",))
LATENESS = 15
USER = Entity("user", key="user")
SOURCE = StreamSource.of("clicks", allowed_lateness=LATENESS)
FEATURES = [
    Feature.of("n_total", USER, SOURCE, "count"),
    Feature.of("sum_12", USER, SOURCE, "sum", column="x", window=Sliding(12, 4), ttl=40),
    Feature.of("max_10", USER, SOURCE, "max", column="x", window=Tumbling(10)),
    Feature.of("last_x", USER, SOURCE, "last", column="x"),
    Feature.of("mean_pos", USER, SOURCE, "mean", column="x", window=Sliding(30, 10),
               where=Filter("x", ">", 0)),
    Feature.of("recent", USER, SOURCE, "last_n", column="x", window=Lifetime(), n=2),
    Feature.of("spread", USER, SOURCE, "std", column="x", window=Sliding(20, 5)),
    # defaults set by the definition: a number where the rules give null, and null
    # where a count would be 0 for an entity never seen
    Feature.of("low_8", USER, SOURCE, "min", column="x", window=Sliding(8, 4), ttl=30,
               default=-1.5),
    Feature.of("n_pos", USER, SOURCE, "count", window=Tumbling(10),
               where=Filter("x", ">", 0), default=None),
    Feature.of("var_15", USER, SOURCE, "var", column="x", window=Sliding(15, 5)),
    Feature.of("distinct_x", USER, SOURCE, "approx_distinct", column="x",
               window=Sliding(20, 10)),
]
USERS = ["a", "b", "c", "d"]
# The same events describe a second entity, keyed by its own column (events are
# partitioned by user, so a shop's events are in every partition; some have no shop).
SHOP = Entity("shop", key="shop")
SHOP_FEATURES = [
    Feature.of("shop_n", SHOP, SOURCE, "count"),
    Feature.of("shop_sum_12", SHOP, SOURCE, "sum", column="x", window=Sliding(12, 4), ttl=40),
    Feature.of("shop_last", SHOP, SOURCE, "last", column="x"),
    Feature.of("shop_recent", SHOP, SOURCE, "last_n", column="x", window=Lifetime(), n=3),
    Feature.of("shop_mean_pos", SHOP, SOURCE, "mean", column="x", window=Sliding(30, 10),
               where=Filter("x", ">", 0)),
    Feature.of("shop_var", SHOP, SOURCE, "var", column="x", window=Tumbling(10)),
    Feature.of("shop_distinct", SHOP, SOURCE, "approx_distinct", column="x"),
]
SHOPS = ["s", "t", "u"]
EVERY = [*FEATURES, *SHOP_FEATURES]
Row = tuple[str, int, float] | tuple[str, int, float, str | None]
Batches = list[tuple[int, list[Row]]]


@st.composite
def appends(draw: st.DrawFn) -> list[tuple[int, list[Row]]]:
    """Batches of (append time, [(user, event time, x, shop)]): event times never after
    the append time, out of order, and sometimes far behind (late)."""
    batches: list[tuple[int, list[Row]]] = []
    now = 100
    for _ in range(draw(st.integers(1, 8))):
        now += draw(st.integers(0, 9))
        rows = draw(st.lists(st.tuples(st.sampled_from(USERS), st.integers(now - 30, now),
                                       st.integers(-3, 9).map(float),
                                       st.sampled_from([*SHOPS, None])), max_size=6))
        batches.append((now, list(rows)))
    return batches


def build_log(batches: Sequence[tuple[int, Sequence[Row]]], partitions: int = 1
              ) -> tuple[Log, ManualClock]:
    clock = ManualClock(0)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic("clicks", SCHEMA, partitions=partitions)
    for append_time, rows in batches:
        clock.set(append_time)
        if rows:
            log.append("clicks", pa.record_batch({
                "user": pa.array([r[0] for r in rows]),
                "shop": pa.array([r[3] if len(r) > 3 else None for r in rows], pa.string()),
                "x": pa.array([r[2] for r in rows]),
                "ts": pa.array([r[1] for r in rows], pa.int64()).cast(TIMESTAMP),
            }))
    return log, clock


def applied_events(log: Log, entity: str = "user") -> list[Event]:
    """The events in log order, without the late ones (the watermark rule: one watermark
    per partition; a user's events all live in one partition), as events of ``entity``
    (those without it left out), each placed in the log by (partition, offset)."""
    out: list[Event] = []
    watermark: int | None = None
    partition = None
    for fetched in log.replay("clicks"):
        if fetched.partition != partition:
            partition, watermark = fetched.partition, None
        for row in fetched.batch.to_pylist():
            tau = _us(row["ts"])
            late = watermark is not None and tau < watermark - LATENESS
            watermark = tau if watermark is None else max(watermark, tau)
            if not late and row[entity] is not None:
                place = log_order(fetched.partition, np.array([row["_offset"]]))[0]
                out.append(Event(row[entity], tau, _us(row["_append_time"]), int(place),
                                 row["x"]))
    return out


def applied_mask(log: Log) -> list[bool]:
    """For each event in replay order, whether the watermark rule applies it."""
    applied = {(e.entity, e.offset) for e in applied_events(log)}
    return [(row["user"], int(log_order(f.partition, np.array([row["_offset"]]))[0])) in applied
            for f in log.replay("clicks") for row in f.batch.to_pylist()]


def _us(value: Any) -> int:
    from headwater.time import to_micros

    return value if isinstance(value, int) else to_micros(value)


def expected(feature: Feature, events: list[Event], user: str, t: int) -> Any:
    if feature.where is not None:
        events = [e for e in events if isinstance(e.value, float) and e.value > 0]
    return oracle(feature, events, user, t, "known_at")


def read(online: MemoryOnlineStore, user: str, t: int, shop: str = "s") -> dict[str, Any]:
    """What serving reads (:class:`FeatureReader`), each entity by its own key, checked
    against :func:`values_at`."""
    served = FeatureReader(online, FeatureSet("all", tuple(EVERY))).read(
        {"user": user, "shop": shop}, t)
    assert served == {**values_at(FEATURES, online.read("user", user), t),
                      **values_at(SHOP_FEATURES, online.read("shop", shop), t)}
    return served


@given(appends(), st.lists(st.integers(1, 7), min_size=1, max_size=5), st.integers(1, 3))
def test_engine_equals_oracle_at_every_step_and_backfill_and_pit(
    tmp_path_factory: pytest.TempPathFactory, batches: Any, steps: list[int], partitions: int
) -> None:
    """Every aggregation, of two entities keyed by their own columns of one topic, on one
    partition or several. On one partition the engine is read after every step; on
    several, the order it reads the partitions in is its own, so the online store is
    compared once everything is processed."""
    tmp = tmp_path_factory.mktemp("engine")
    log, _ = build_log(batches, partitions)
    events = {"user": applied_events(log), "shop": applied_events(log, "shop")}
    keys = {"user": USERS, "shop": [*SHOPS, "never"]}
    online = MemoryOnlineStore()
    engine = FeatureEngine(log, EVERY, online, state_dir=tmp / "live", checkpoint_events=5)
    processed = 0
    all_rows = [r for f in log.replay("clicks") for r in f.batch.to_pylist()]
    i = 0

    def check(store: MemoryOnlineStore, t: int) -> None:
        for entity, features in (("user", FEATURES), ("shop", SHOP_FEATURES)):
            for key in keys[entity]:
                got = read(store, key, t) if entity == "user" else read(store, "a", t, key)
                for feature in features:
                    want = expected(feature, events[entity], key, t)
                    assert same(got[feature.name], want), (feature.name, key, t, got, want)

    while processed < len(all_rows):
        processed += engine.step(max_events=steps[i % len(steps)])
        i += 1
        if partitions > 1:
            continue
        # Known at the append time of the last processed event, when the next one was
        # appended later (so everything known by then has been processed).
        t = _us(all_rows[processed - 1]["_append_time"])
        if processed < len(all_rows) and _us(all_rows[processed]["_append_time"]) == t:
            continue
        check(online, t)
    engine.close()

    end = max(_us(r["_append_time"]) for r in all_rows) if all_rows else 0
    refill = MemoryOnlineStore()
    backfill(log, EVERY, refill, state_dir=tmp / "backfill")
    history = pa.Table.from_batches([f.batch for f in log.replay("clicks")],
                                    SCHEMA.stored_schema())
    places = [int(log_order(f.partition, np.asarray(f.batch.column("_offset")))[j])
              for f in log.replay("clicks") for j in range(f.batch.num_rows)]
    history = history.append_column("_place", pa.array(places, pa.int64()))
    history = history.filter(pa.array(applied_mask(log), pa.bool_()))
    times = [end, end + 7, end + 25, end + 60]
    for t in times:
        check(online, t)
        check(refill, t)
    for entity, features in (("user", FEATURES), ("shop", SHOP_FEATURES)):
        queries = Queries(pa.array([k for k in keys[entity] for _ in times]),
                          np.array([t for _ in keys[entity] for t in times], np.int64))
        pit = point_in_time(features, Sources(history, entity, "ts", offset="_place"),
                            queries, mode="known_at")
        # time travel: the log replayed, each entity's keys by its name
        filler = {"user": ["a"] * len(queries.times), "shop": ["s"] * len(queries.times)}
        again = values_at_times(log, EVERY, {**filler, entity: queries.entities}, queries.times)
        row = 0
        for key in keys[entity]:
            for t in times:
                for feature in features:
                    want = expected(feature, events[entity], key, t)
                    got = pit.column(feature.name)[row].as_py()
                    assert same(got, want), (feature.name, key, t, got, want)
                    got = again.column(feature.name)[row].as_py()
                    assert same(got, want), (feature.name, key, t, got, want)
                row += 1


def test_late_events_go_to_the_dead_letter_topic(tmp_path: Path) -> None:
    log, _ = build_log([(100, [("a", 100, 1.0)]), (101, [("a", 50, 2.0), ("a", 90, 3.0)])])
    with FeatureEngine(log, FEATURES, MemoryOnlineStore(), state_dir=tmp_path) as engine:
        engine.run(idle_timeout_s=0)
    dlq = log.read("clicks.dlq", 0).batch
    assert dlq.column("reason").to_pylist() == [
        "late: more than the allowed lateness behind the watermark"
    ]
    assert dlq.column("index").to_pylist() == [1]
    # Running again (a restart from the start) records it once.
    with FeatureEngine(log, FEATURES, MemoryOnlineStore(), state_dir=tmp_path / "again",
                       group="other") as engine:
        engine.run(idle_timeout_s=0)
    assert log.end_offsets("clicks.dlq") == [1]


def test_restart_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    rows = [(100 + i, [(USERS[i % 4], 100 + i, float(i % 5))]) for i in range(40)]
    log, _ = build_log(rows)
    whole = MemoryOnlineStore()
    with FeatureEngine(log, FEATURES, whole, state_dir=tmp_path / "whole", group="w") as engine:
        engine.run(idle_timeout_s=0)

    partial = MemoryOnlineStore()
    first = FeatureEngine(log, FEATURES, partial, state_dir=tmp_path / "p", checkpoint_events=10)
    first.step(max_events=25)  # checkpoints after 25 events, then crashes (no close)
    first.step(max_events=7)
    first.consumer.close()
    with FeatureEngine(log, FEATURES, partial, state_dir=tmp_path / "p") as second:
        second.run(idle_timeout_s=0)
    for user in USERS:
        assert partial.read("user", user) == whole.read("user", user)


def test_changed_definitions_refuse_to_resume(tmp_path: Path) -> None:
    log, _ = build_log([(100, [("a", 100, 1.0)])])
    FeatureEngine(log, FEATURES, MemoryOnlineStore(), state_dir=tmp_path).close()
    changed = [Feature.of("n_total", USER, SOURCE, "count", window=Tumbling(5))]
    with pytest.raises(Exception, match="other feature definitions"):
        FeatureEngine(log, changed, MemoryOnlineStore(), state_dir=tmp_path).step()


@pytest.mark.parametrize(("default", "past_ttl"), [(msgspec.UNSET, 0.0), (None, None),
                                                   (-1.0, -1.0)])
def test_a_value_past_its_ttl_is_the_default_online_exactly_as_offline(
        tmp_path: Path, default: float | msgspec.UnsetType | None, past_ttl: float | None
) -> None:
    log, _ = build_log([(100, [("a", 100, 4.0)]), (110, [("a", 110, 6.0)])])
    # TTL 40 after the latest event (110); a sum's default is 0 unless the definition says
    ttl = [Feature.of("sum_12", USER, SOURCE, "sum", column="x", window=Sliding(12, 4),
                      ttl=40, default=default)]
    online = MemoryOnlineStore()
    with FeatureEngine(log, ttl, online, state_dir=tmp_path) as engine:
        engine.run(idle_timeout_s=0)
    history = pa.Table.from_batches([f.batch for f in log.replay("clicks")])
    times = [111, 150, 151, 500]
    offline = [point_in_time(ttl, Sources(history, "user", "ts"),
                             Queries(pa.array(["a"] * 4), np.array(times)), mode=mode)
               .column("sum_12").to_pylist() for mode in ("known_at", "event_time")]
    served = [values_at(ttl, online.read("user", "a"), t)["sum_12"] for t in times]
    # In the window at 111; known but an empty window at 150; past the TTL at 151 on.
    assert served == offline[0] == offline[1] == [10.0, 0.0, past_ttl, past_ttl]


def test_the_history_the_engine_writes_answers_like_the_online_store(tmp_path: Path) -> None:
    from headwater.store.history import FeatureHistory

    rows = [(100 + 3 * i, [(USERS[i % 4], 100 + 3 * i - (i % 3), float(i % 7 - 2))])
            for i in range(60)]
    log, _ = build_log(rows)
    history = FeatureHistory(tmp_path / "history")
    online = MemoryOnlineStore()
    with FeatureEngine(log, FEATURES, online, state_dir=tmp_path / "state", history=history,
                       checkpoint_events=7) as engine:
        engine.run(idle_timeout_s=0)
    end = 100 + 3 * 59
    times = [end, end + 11, end + 30]
    queries = Queries(pa.array([u for u in USERS for _ in times]),
                      np.array([t for _ in USERS for t in times], np.int64))
    frame = history.values_at(FEATURES, "clicks", queries, mode="known_at")
    row = 0
    for user in USERS:
        for t in times:
            served = values_at(FEATURES, online.read("user", user), t)
            for f in FEATURES:
                assert same(frame.column(f.name)[row].as_py(), served[f.name]), (f.name, user, t)
            row += 1


@given(appends(), st.integers(1, 30), st.booleans())
def test_resuming_from_a_checkpoint_of_either_format_equals_an_uninterrupted_run(
    batches: list[tuple[int, list[tuple[str, int, float]]]], cut: int, first_format: bool
) -> None:
    """A checkpoint keeps each tile ring once and only the slots a read can still see;
    one of the first format (every slot, the ring saved with each feature) still
    resumes."""
    log, _ = build_log(batches)
    whole = MemoryOnlineStore()
    with tempfile.TemporaryDirectory() as tmp:
        with FeatureEngine(log, FEATURES, whole, state_dir=f"{tmp}/whole",
                           group="w") as engine:
            engine.run(idle_timeout_s=0)
        partial = MemoryOnlineStore()
        first = FeatureEngine(log, FEATURES, partial, state_dir=f"{tmp}/p", group="p")
        first.step(max_events=cut)
        for task in first.tasks.values():
            task.checkpoint_id += 1
            meta, arrays, keys = task.snapshot()
            assert sum(k.endswith("/tiles") for k in arrays) == len(task.groups[0].rings)
            if first_format:
                size = len(task.groups[0].keys)
                arrays = {f"{name}/{k}": v for name, state in task.states.items()
                          for k, v in state.snapshot(size).items()}
            CheckpointStore(Path(tmp) / "p" / task.topic.name / str(task.partition)).commit(
                meta, arrays, keys)
        first.consumer.close()  # a crash after the checkpoint
        with FeatureEngine(log, FEATURES, partial, state_dir=f"{tmp}/p", group="p") as second:
            second.run(idle_timeout_s=0)
    for user in USERS:
        assert_same_values(FEATURES, partial.read("user", user), whole.read("user", user))


@given(appends(), st.integers(1, 30), st.integers(1, 3))
def test_features_of_two_entities_resume_from_a_checkpoint_as_if_uninterrupted(
    batches: list[tuple[int, list[Row]]], cut: int, partitions: int
) -> None:
    """One task over every partition keeps each entity's keys and each partition's
    position and watermark in its checkpoint: a crash after it changes nothing."""
    log, _ = build_log(batches, partitions)
    whole = MemoryOnlineStore()
    with tempfile.TemporaryDirectory() as tmp:
        with FeatureEngine(log, EVERY, whole, state_dir=f"{tmp}/whole", group="w") as engine:
            engine.run(idle_timeout_s=0)
        partial = MemoryOnlineStore()
        first = FeatureEngine(log, EVERY, partial, state_dir=f"{tmp}/p", group="p")
        first.step(max_events=cut)
        first.checkpoint()
        first.step(max_events=cut)  # applied, then lost with the crash
        first.consumer.close()
        with FeatureEngine(log, EVERY, partial, state_dir=f"{tmp}/p", group="p") as second:
            second.run(idle_timeout_s=0)
    for namespace, keys, features in (("user", USERS, FEATURES), ("shop", SHOPS, SHOP_FEATURES)):
        for key in keys:
            assert_same_values(features, partial.read(namespace, key), whole.read(namespace, key))


def assert_same_values(features: list[Feature], got: dict[str, bytes],
                       want: dict[str, bytes]) -> None:
    """Two online entries read alike at any time (a variance folded in other batches may
    differ in its last bits)."""
    assert got.keys() == want.keys()
    for t in (0, 100, 120, 150, 400):
        a, b = values_at(features, got, t), values_at(features, want, t)
        assert all(same(a[f.name], b[f.name]) for f in features), (t, a, b)


def test_an_entity_keyed_by_another_column_needs_every_partition(tmp_path: Path) -> None:
    log, _ = build_log([(100, [("a", 100, 1.0, "s")])], partitions=2)
    with pytest.raises(ValidationError, match="read all its 2 partitions"):
        backfill(log, EVERY, MemoryOnlineStore(), state_dir=tmp_path,
                 partitions=[("clicks", 0)])
    same_name = Feature.of("n_shop", Entity("user", key="shop"), SOURCE, "count")
    with pytest.raises(ValidationError, match="keyed by 'user' and by 'shop'"):
        backfill(log, [*FEATURES, same_name], MemoryOnlineStore(), state_dir=tmp_path)
    nowhere = Feature.of("n_city", Entity("city", key="city"), SOURCE, "count")
    with pytest.raises(ValidationError, match="no field 'city' to key entity 'city'"):
        backfill(log, [nowhere], MemoryOnlineStore(), state_dir=tmp_path)
