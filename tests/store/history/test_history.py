"""FeatureHistory: writing, replacing and discarding checkpoints, scanning, bad input."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import headwater.store.history
from headwater.errors import SchemaError, TimestampError, ValidationError
from headwater.store.history import FeatureHistory
from tests.store.history.helpers import DAY, HOUR, records, rows


@pytest.fixture
def history(tmp_path: Path) -> FeatureHistory:
    return FeatureHistory(tmp_path / "history", buckets=1)


def data_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.parquet"))


def test_write_then_scan_returns_the_rows(history: FeatureHistory) -> None:
    batch = rows(["a", "b", "a"], [5, DAY + 1, 2 * DAY], [0, 1, 2])
    history.write("payments", batch, checkpoint=0, task="payments-0")
    got = history.scan("payments")
    assert got.schema.names == ["_entity", "_event_time", "_append_time", "_partition",
                                "_offset", "x"]
    assert records(got) == records(batch)
    assert history.sources() == ["payments"]
    assert data_files(history.root) == [
        f"source=payments/bucket=0/day=1970-01-0{d}/payments-0-000000000000-0.parquet"
        for d in (1, 2, 3)]


def test_a_record_batch_with_timestamps_and_small_ints_is_normalized(
        history: FeatureHistory) -> None:
    batch = pa.record_batch({
        "_entity": pa.array([7, 8], pa.int32()),
        "_event_time": pa.array([1_000, 2_000], pa.timestamp("ms", tz="UTC")),
        "_append_time": pa.array([1, 2], pa.int64()),
        "_partition": pa.array([1, 1], pa.int8()),
        "_offset": pa.array([0, 1], pa.uint32()),
        "amount": pa.array([1.5, 2.5], pa.float32()),
    })
    history.write("s", batch, checkpoint=3, task="s-1")
    got = history.scan("s")
    assert got.schema.field("_entity").type == pa.int64()
    assert got.schema.field("amount").type == pa.float64()
    assert sorted(got.column("_event_time").to_pylist()) == [1_000_000, 2_000_000]


def test_writing_a_checkpoint_again_replaces_it(history: FeatureHistory, tmp_path: Path) -> None:
    history.write("s", rows(["a"], [0], [0]), checkpoint=0, task="s-0")
    history.write("s", rows(["a", "b"], [HOUR, 3 * DAY], [1, 2]), checkpoint=1, task="s-0")
    history.write("s", rows(["a"], [HOUR], [1]), checkpoint=1, task="s-0")  # fewer days
    assert history.scan("s").column("_offset").to_pylist() == [0, 1]
    # a fresh process knows nothing of what was written, and still replaces
    again = FeatureHistory(tmp_path / "history")
    again.write("s", rows(["c"], [2 * DAY], [9]), checkpoint=1, task="s-0")
    assert sorted(again.scan("s").column("_offset").to_pylist()) == [0, 9]


def test_rewriting_a_compacted_checkpoint_replaces_its_rows(history: FeatureHistory) -> None:
    history.write("s", rows(["a", "b"], [0, 1], [0, 1]), checkpoint=0, task="s-0")
    history.write("s", rows(["a"], [2], [2]), checkpoint=1, task="s-0")
    history.write("s", rows(["z"], [3], [0], partition=1), checkpoint=1, task="s-1")
    assert history.compact("s") == 1
    history.write("s", rows(["a"], [4], [2], x=[42.0]), checkpoint=1, task="s-0")
    got = history.scan("s")
    assert sorted(zip(got.column("_entity").to_pylist(), got.column("x").to_pylist(),
                      strict=True)) == [("a", 0.0), ("a", 42.0), ("b", 1.0), ("z", 0.0)]


def test_discard_after_deletes_later_checkpoints_of_the_task_only(
        history: FeatureHistory, tmp_path: Path) -> None:
    for c in range(5):
        history.write("s", rows(["a"], [c * DAY], [c]), checkpoint=c, task="s-0")
        history.write("s", rows(["b"], [c * DAY], [c], partition=1), checkpoint=c, task="s-1")
    history.compact("s", day="1970-01-02")  # checkpoint 1 now lives in a compacted file
    # a crashed writer left a temporary file of checkpoint 5
    (history.root / "source=s/bucket=0/day=1970-01-05/.s-0-000000000005-0.parquet.abc.tmp").touch()
    FeatureHistory(tmp_path / "history").discard_after("s", "s-0", 0)
    got = history.scan("s")
    assert sorted(zip(got.column("_entity").to_pylist(), got.column("_offset").to_pylist(),
                      strict=True)) == [("a", 0)] + [("b", c) for c in range(5)]
    assert not list(history.root.rglob(".*.tmp"))
    history.discard_after("s", "s-1", -1)
    assert history.scan("s").column("_entity").to_pylist() == ["a"]
    history.discard_after("unknown", "s-0", 3)  # nothing to discard


def test_after_discard_the_task_writes_its_checkpoints_again(history: FeatureHistory) -> None:
    for c in range(3):
        history.write("s", rows(["a"], [c], [c]), checkpoint=c, task="s-0")
    history.discard_after("s", "s-0", 0)
    history.write("s", rows(["a"], [1], [1], x=[10.0]), checkpoint=1, task="s-0")
    assert sorted(history.scan("s").column("x").to_pylist()) == [0.0, 10.0]


def test_scans_prune_partitions_by_event_time(history: FeatureHistory) -> None:
    times = [0, HOUR, DAY, DAY + HOUR, 2 * DAY]
    history.write("s", rows(["a"] * 5, times, list(range(5))), checkpoint=0, task="s-0")
    # corrupt the first and last days: a scan that opened them would fail
    for day in ("1970-01-01", "1970-01-03"):
        folder = history.root / f"source=s/bucket=0/day={day}"
        (folder / "s-0-000000000000-0.parquet").write_bytes(b"junk")
    got = history.scan("s", start=DAY, end=2 * DAY)
    assert got.column("_event_time").to_pylist() == [DAY, DAY + HOUR]
    assert history.scan("s", start=DAY + 1, end=DAY + HOUR + 1).column("_offset").to_pylist() == [3]
    with pytest.raises(pa.ArrowInvalid):
        history.scan("s")


def test_hourly_partitions(tmp_path: Path) -> None:
    history = FeatureHistory(tmp_path, granularity="hour", buckets=1)
    history.write("s", rows(["a", "a"], [HOUR - 1, HOUR], [0, 1]), checkpoint=0, task="s-0")
    assert data_files(tmp_path) == [
        "source=s/bucket=0/hour=1970-01-01T00/s-0-000000000000-0.parquet",
        "source=s/bucket=0/hour=1970-01-01T01/s-0-000000000000-0.parquet",
    ]
    assert history.scan("s", start=HOUR).column("_offset").to_pylist() == [1]
    assert history.compact("s", day=date(1970, 1, 1)) == 2


def test_scan_filters_and_columns(history: FeatureHistory) -> None:
    batch = rows(["a", "b", "c"], [1, 2, 3], [0, 1, 2], appended=[10, 20, 30],
                 x=[1.0, 2.0, 3.0], y=[1, 2, 3])
    history.write("s", batch, checkpoint=0, task="s-0")
    got = history.scan("s", columns=["y"], entities=["a", "c", "zz"], appended_by=20)
    assert got.schema.names == ["_entity", "_event_time", "_append_time", "_partition",
                                "_offset", "y"]
    assert got.to_pydict()["_entity"] == ["a"]
    with_provenance = history.scan("s", columns=["_task", "_checkpoint"])
    assert set(with_provenance.column("_task").to_pylist()) == {"s-0"}
    with pytest.raises(ValidationError, match="no column 'nope'"):
        history.scan("s", columns=["nope"])
    with pytest.raises(ValidationError, match="no history of 'other'"):
        history.scan("other")
    with pytest.raises(ValidationError, match="entities"):
        history.scan("s", entities=[1.5])


def test_new_columns_read_as_null_in_older_rows(history: FeatureHistory) -> None:
    history.write("s", rows(["a"], [1], [0], x=[1.0]), checkpoint=0, task="s-0")
    history.write("s", rows(["a"], [2], [1], x=[2.0], y=[7]), checkpoint=1, task="s-0")
    got = history.scan("s").sort_by("_offset")
    assert got.column("y").to_pylist() == [None, 7]
    history.compact("s")
    assert history.scan("s").sort_by("_offset").column("y").to_pylist() == [None, 7]
    with pytest.raises(SchemaError, match="y: stored as int64, now written as double"):
        history.write("s", rows(["a"], [3], [2], y=[1.5]), checkpoint=2, task="s-0")


def test_an_empty_write_replaces_the_checkpoint_with_nothing(history: FeatureHistory) -> None:
    history.write("s", rows(["a"], [1], [0]), checkpoint=0, task="s-0")
    history.write("s", rows([], [], []), checkpoint=0, task="s-0")
    assert history.scan("s").num_rows == 0


@pytest.mark.parametrize(("batch", "field"), [
    (rows(["a"], [1], [0]).drop_columns(["_offset"]), "_offset"),
    (rows(["a"], [1], [0]).append_column("_secret", pa.array([1])), "_secret"),
    (rows([None], [1], [0]), "_entity"),
    (rows([1.5], [1], [0]), "_entity"),
    (rows(["a"], [1], [0], x=[[1.0]]), "x"),
    (rows(["a"], [1], [0], x=[{"k": 1}]), "x"),
    (rows(["a"], [1], [0]).set_column(3, "_partition", pa.array([2**40])), "_partition"),
    (rows(["a"], [1], [0]).set_column(1, "_event_time", pa.array([1.5])), "_event_time"),
])
def test_bad_rows_are_rejected_naming_the_column(
        history: FeatureHistory, batch: pa.Table, field: str) -> None:
    with pytest.raises(ValidationError) as error:
        history.write("s", batch, checkpoint=0, task="s-0")
    assert error.value.field == field


def test_bad_names_times_and_checkpoints_are_rejected(history: FeatureHistory) -> None:
    good = rows(["a"], [1], [0])
    with pytest.raises(TimestampError, match="_event_time"):
        history.write("s", rows(["a"], [2**62], [0]), checkpoint=0, task="s-0")
    for source in ("", "../up", "a/b", ".hidden"):
        with pytest.raises(ValidationError, match="source"):
            history.write(source, good, checkpoint=0, task="s-0")
    with pytest.raises(ValidationError, match="task"):
        history.write("s", good, checkpoint=0, task="x/y")
    for checkpoint in (-1, 10**12, True, 1.0):
        with pytest.raises(ValidationError, match="checkpoint"):
            history.write("s", good, checkpoint=checkpoint, task="s-0")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="granularity"):
        FeatureHistory(history.root, granularity="week")  # type: ignore[arg-type]
    history.write("s", good, checkpoint=0, task="s-0")
    with pytest.raises(ValidationError, match="day"):
        history.compact("s", day="yesterday")
    assert not (history.root / "source=").exists()


def test_temporary_files_are_never_read(history: FeatureHistory) -> None:
    history.write("s", rows(["a"], [1], [0]), checkpoint=0, task="s-0")
    folder = history.root / "source=s/bucket=0/day=1970-01-01"
    (folder / ".s-0-000000000001-0.parquet.0123.tmp").write_bytes(b"half a file")
    (folder / ".compacted-000001.parquet.0123.tmp").write_bytes(b"half a file")
    assert history.scan("s").num_rows == 1
    assert history.compact("s") == 1  # collects the crashed compaction's temporary file
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) == [
        ".s-0-000000000001-0.parquet.0123.tmp"]  # a writer's: only its task's recovery clears it


def test_big_checkpoints_are_split_into_parts(
        history: FeatureHistory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("headwater.store.history.history.MAX_FILE_ROWS", 2)
    history.write("s", rows(["a"] * 5, [1] * 5, list(range(5))), checkpoint=7, task="s-0")
    assert [Path(f).name for f in data_files(history.root)] == [
        f"s-0-000000000007-{n}.parquet" for n in range(3)]
    history.write("s", rows(["a"], [1], [0]), checkpoint=7, task="s-0")
    assert len(data_files(history.root)) == 1
    assert np.array_equal(history.scan("s").column("_offset"), [0])


def test_the_public_surface() -> None:
    module = headwater.store.history
    assert module.__doc__
    assert sorted(module.__all__) == ["APPEND_TIME", "ENTITY", "EVENT_TIME", "FeatureHistory",
                                      "OFFSET", "PARTITION", "Progress"]
    assert (module.ENTITY, module.EVENT_TIME, module.APPEND_TIME, module.PARTITION,
            module.OFFSET) == ("_entity", "_event_time", "_append_time", "_partition", "_offset")
