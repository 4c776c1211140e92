"""Time travel from the history plus the log's tail equals a whole replay; joins stream
by entity bucket and agree with the in-memory join; lookups read only their bucket."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.features.engine import FeatureEngine
from headwater.features.pointintime import Mode, Queries, Sources, point_in_time
from headwater.features.timetravel import values_at_times as replayed
from headwater.log import Log
from headwater.log.partitioner import partition_of
from headwater.log.schema import TIMESTAMP
from headwater.store.history import FeatureHistory
from headwater.store.history.lookup import history_gap, values_at_times
from headwater.store.online.memory import MemoryOnlineStore
from headwater.testing import ManualClock, MemoryBackend
from tests.extras import require_extra
from tests.features.test_engine import FEATURES, SCHEMA, USERS, appends
from tests.features.test_pointintime import same
from tests.store.history.helpers import rows

Batches = list[tuple[int, list[tuple[str, int, float]]]]
TIMES = [90, 110, 125, 140, 160, 200]


def append(log: Log, clock: ManualClock, batches: Batches) -> None:
    for append_time, events in batches:
        clock.set(max(clock.now_us(), append_time))
        if events:
            log.append("clicks", pa.record_batch({
                "user": pa.array([e[0] for e in events]),
                "x": pa.array([e[2] for e in events]),
                "ts": pa.array([e[1] for e in events], pa.int64()).cast(TIMESTAMP),
            }))


def engine_run(log: Log, history: FeatureHistory, state: Path, every: int) -> None:
    with FeatureEngine(log, FEATURES, MemoryOnlineStore(), state_dir=state, history=history,
                       checkpoint_events=every) as engine:
        engine.run(idle_timeout_s=0)


def compare(got: pa.Table, want: pa.Table, label: object) -> None:
    for name in want.schema.names:
        for i, (g, w) in enumerate(zip(got.column(name).to_pylist(),
                                       want.column(name).to_pylist(), strict=True)):
            assert same(g, w), (label, name, i, g, w)


@settings(max_examples=40)
@given(appends(), appends(), st.integers(1, 9), st.sampled_from(["known_at", "event_time"]),
       st.booleans(), st.integers(1, 4))
def test_history_and_tail_equal_a_whole_replay(
        before: Batches, after: Batches, every: int, mode: Mode, crashed: bool,
        buckets: int) -> None:
    """The engine applied ``before`` (in checkpoints of ``every`` events) and the log has
    ``after`` on top; a checkpoint written to the history but never committed (a crash
    between the two) is read from the log instead, not twice."""
    clock = ManualClock(0)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic("clicks", SCHEMA, partitions=2)
    append(log, clock, before)
    with tempfile.TemporaryDirectory() as root:
        history = FeatureHistory(Path(root) / "history", buckets=buckets)
        engine_run(log, history, Path(root) / "state", every)
        append(log, clock, after)
        if crashed and "clicks" in history.sources():
            events = history.scan("clicks")
            again = events.filter(pa.array(np.asarray(events.column("_partition")) == 0))
            history.write("clicks", again, checkpoint=10**6,
                          task="clicks-0")  # rows again, with no progress
        entities = [u for u in [*USERS, "nobody"] for _ in TIMES]
        times = [t for _ in [*USERS, "nobody"] for t in TIMES]
        want = replayed(log, FEATURES, entities, times, mode=mode)
        got = values_at_times(log, history, FEATURES, entities, times, mode=mode)
        compare(got, want, (mode, every))


def test_the_history_is_passed_over_when_it_cannot_answer(tmp_path: Path) -> None:
    clock = ManualClock(0)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic("clicks", SCHEMA, partitions=2)
    append(log, clock, [(100, [("a", 95, 1.0), ("b", 99, 2.0)]), (120, [("a", 40, 5.0)])])
    history = FeatureHistory(tmp_path / "history")
    assert history_gap(history, "clicks", FEATURES) == (
        f"no feature history of 'clicks' at {tmp_path / 'history'}")
    engine_run(log, history, tmp_path / "state", 1)
    assert history_gap(history, "clicks", FEATURES) is None
    from msgspec.structs import replace

    stricter = [replace(f, source=replace(f.source, allowed_lateness_us=0)) for f in FEATURES]
    assert "allowed lateness of 15 µs, not 0" in str(history_gap(history, "clicks", stricter))
    # what the replay with the other lateness says, not what the engine applied
    want = replayed(log, stricter, ["a"], [130], mode="event_time")
    got = values_at_times(log, history, stricter, ["a"], [130], mode="event_time")
    compare(got, want, "lateness")


def test_a_lookup_reads_only_the_entitys_bucket(tmp_path: Path) -> None:
    clock = ManualClock(0)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic("clicks", SCHEMA, partitions=2)
    batches = [(100 + 3 * i, [(USERS[i % 4], 100 + 3 * i - (i % 3), float(i % 7 - 2))])
               for i in range(60)]
    append(log, clock, batches)
    history = FeatureHistory(tmp_path / "history", buckets=8)
    engine_run(log, history, tmp_path / "state", 7)
    want = replayed(log, FEATURES, ["a"] * len(TIMES), TIMES, mode="known_at")
    mine = int(partition_of(pa.array(["a"]), 8)[0])
    others = [p for p in (tmp_path / "history").rglob("*.parquet")
              if f"bucket={mine}/" not in str(p)]
    assert others  # the other users' rows are elsewhere ...
    for path in others:
        path.write_bytes(b"never read")  # ... and a lookup of a never opens them
    got = values_at_times(log, history, FEATURES, ["a"] * len(TIMES), TIMES, mode="known_at")
    compare(got, want, "a")
    other = next(u for u in USERS if partition_of(pa.array([u]), 8)[0] != mine)
    with pytest.raises(pa.ArrowInvalid):
        values_at_times(log, history, FEATURES, [other], [150], mode="known_at")


@settings(max_examples=40)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 300),
                          st.integers(-3, 9)), max_size=60),
       st.lists(st.tuples(st.sampled_from("abcdefghz"), st.integers(-10, 320)), min_size=1,
                max_size=30),
       st.integers(1, 5), st.integers(1, 6), st.sampled_from(["known_at", "event_time"]))
def test_a_streaming_join_equals_the_join_in_memory(
        events: list[tuple[str, int, int]], queries: list[tuple[str, int]], buckets: int,
        max_rows: int, mode: Mode) -> None:
    """Buckets, and groups of entities within a bucket (forced here with tiny limits),
    change how much is read at once, never a value."""
    table = rows([e[0] for e in events], [e[1] for e in events], list(range(len(events))),
                 appended=[e[1] + (e[2] % 4) * 7 for e in events],
                 x=pa.array([float(e[2]) for e in events], pa.float64()))
    keys = pa.array([q[0] for q in queries])
    times = np.array([q[1] for q in queries], np.int64)
    features = [f for f in FEATURES if f.name != "n_total"] + [FEATURES[0]]
    want = point_in_time(features, Sources(table, "_entity", "_event_time"),
                         Queries(keys, times), mode=mode)
    with tempfile.TemporaryDirectory() as root, pytest.MonkeyPatch.context() as patch:
        history = FeatureHistory(root, buckets=buckets)
        for c, first in enumerate(range(0, max(len(events), 1), 20)):
            history.write("clicks", table.slice(first, 20), checkpoint=c, task="clicks-0")
        patch.setattr("headwater.store.history.history.JOIN_MAX_ROWS", max_rows)
        patch.setattr("headwater.store.history.history.ENTITY_FILTER_MAX", 2)
        got = history.values_at(features, "clicks", Queries(keys, times), mode=mode)
    compare(got, want, (buckets, max_rows))


def test_the_history_on_an_fsspec_filesystem_answers_as_a_local_one(tmp_path: Path) -> None:
    require_extra("fsspec", "fsspec")
    from headwater.errors import ConfigError

    url = f"memory://history-{tmp_path.name}"
    local, remote = FeatureHistory(tmp_path / "h", buckets=4), FeatureHistory(url, buckets=4)
    table = rows(["a", "b", "a", "c", "b"], [1, 5, 9, 86_400_000_001, 86_400_000_005],
                 [0, 1, 2, 3, 4], x=[1.0, 2.0, 3.0, 4.0, 5.0])
    for history in (local, remote):
        history.write("clicks", table.slice(0, 3), checkpoint=0, task="clicks-0",
                      position=3, watermark=9, lateness=15)
        history.write("clicks", table.slice(3), checkpoint=1, task="clicks-0",
                      position=5, watermark=86_400_000_005, lateness=15)
    queries = Queries(pa.array(["a", "b", "c", "z"]), np.array([10, 10, 86_400_000_010, 10]))
    want = local.values_at(FEATURES, "clicks", queries, mode="known_at")
    compare(remote.values_at(FEATURES, "clicks", queries, mode="known_at"), want, "remote")
    assert remote.progress("clicks") == local.progress("clicks")
    assert remote.progress("clicks")["clicks-0"].position == 5
    assert remote.sources() == ["clicks"]
    assert remote.buckets("clicks") == 4
    with pytest.raises(ConfigError, match="object storage has no lock"):
        remote.compact("clicks")
    assert remote.compact("clicks", exclusive=True) == local.compact("clicks") > 0
    compare(remote.values_at(FEATURES, "clicks", queries, mode="known_at"), want, "compacted")
    remote.discard_after("clicks", "clicks-0", 0)
    local.discard_after("clicks", "clicks-0", 0)
    assert remote.progress("clicks") == local.progress("clicks")
    assert remote.progress("clicks")["clicks-0"].checkpoint == 0
    compare(remote.values_at(FEATURES, "clicks", queries, mode="known_at"),
            local.values_at(FEATURES, "clicks", queries, mode="known_at"), "discarded")


def test_a_history_keeps_its_bucket_count(tmp_path: Path) -> None:
    from headwater.errors import ValidationError

    FeatureHistory(tmp_path, buckets=3).write("s", rows(["a"], [1], [0]), checkpoint=0,
                                              task="s-0")
    assert FeatureHistory(tmp_path).buckets("s") == 3
    with pytest.raises(ValidationError, match="has 3 entity buckets, not 4"):
        FeatureHistory(tmp_path, buckets=4).write("s", rows(["a"], [2], [1]), checkpoint=1,
                                                  task="s-0")
    for bad in (0, -1, 70_000, True):
        with pytest.raises(ValidationError, match="buckets"):
            FeatureHistory(tmp_path, buckets=bad)
    with pytest.raises(ValidationError, match="together"):
        FeatureHistory(tmp_path).write("s", rows(["a"], [2], [1]), checkpoint=1, task="s-0",
                                       position=3)
