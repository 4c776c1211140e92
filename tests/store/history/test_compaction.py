"""Compaction changes files, never scans; readers see a day whole throughout."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.store.history import FeatureHistory
from headwater.store.history.manifest import Manifest, write_manifest
from headwater.store.history.partition import Partition
from headwater.store.history.storage import Storage
from tests.store.history.helpers import DAY, HOUR, records, rows

TASKS = ["s-0", "s-1"]
COMMIT = "headwater.store.history.partition.write_manifest"  # the commit point
Model = dict[tuple[str, int], pa.Table]

write_ops = st.tuples(
    st.just("write"), st.sampled_from(TASKS), st.integers(0, 5),
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 4 * DAY - 1)), max_size=6))
other_ops = st.one_of(
    st.tuples(st.just("compact"), st.sampled_from([None, "1970-01-01", "1970-01-03"])),
    st.tuples(st.just("discard"), st.sampled_from(TASKS), st.integers(-1, 5)),
    st.tuples(st.just("restart")),
)


def expected(model: Model, start: int | None = None, end: int | None = None) -> list[Any]:
    tables = list(model.values())
    if not tables:
        return []
    got = pa.concat_tables(tables)
    times = got.column("_event_time").to_pylist()
    keep = [(start is None or t >= start) and (end is None or t < end) for t in times]
    return records(got.filter(pa.array(keep, pa.bool_())))


@given(st.lists(st.one_of(write_ops, other_ops), max_size=25),
       st.tuples(st.integers(0, 4 * DAY), st.integers(0, 4 * DAY)))
def test_scans_follow_writes_discards_and_compactions(
        ops: list[tuple[Any, ...]], window: tuple[int, int]) -> None:
    start, end = sorted(window)
    with tempfile.TemporaryDirectory() as root:
        history, model, offset = FeatureHistory(root), Model(), 0
        for op in ops:
            if op[0] == "write":
                _, task, checkpoint, events = op
                batch = rows([e for e, _ in events], [t for _, t in events],
                             list(range(offset, offset + len(events))),
                             partition=TASKS.index(task))
                offset += len(events)
                history.write("s", batch, checkpoint=checkpoint, task=task)
                model[(task, checkpoint)] = batch
            elif op[0] == "discard" and history.sources():
                _, task, checkpoint = op
                history.discard_after("s", task, checkpoint)
                model = {k: v for k, v in model.items() if k[0] != task or k[1] <= checkpoint}
            elif op[0] == "compact" and history.sources():
                before = records(history.scan("s")), records(history.scan("s", start=start,
                                                                         end=end))
                history.compact("s", day=op[1])
                after = records(history.scan("s")), records(history.scan("s", start=start,
                                                                        end=end))
                assert before == after
            elif op[0] == "restart":
                history = FeatureHistory(root)
            if history.sources():
                assert records(history.scan("s")) == expected(model)
                assert records(history.scan("s", start=start, end=end)) == expected(
                    model, start, end)


def populate(history: FeatureHistory, checkpoints: int) -> list[Any]:
    for c in range(checkpoints):
        history.write("s", rows(["abc"[c % 3]], [c * HOUR], [c]), checkpoint=c, task="s-0")
    return records(history.scan("s"))


def test_a_reader_sees_the_whole_day_at_every_step_of_a_compaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = FeatureHistory(tmp_path, buckets=1)
    everything = populate(history, 6)
    reader = FeatureHistory(tmp_path)
    seen: list[tuple[str, list[Any], list[str]]] = []

    def observed(storage: Storage, path: str, manifest: Manifest) -> None:
        # the compacted file is installed, not yet named by the manifest
        seen.append(("before commit", records(reader.scan("s")), sorted(
            p.name for p in Path(path).glob("*.parquet"))))
        write_manifest(storage, path, manifest)
        # the manifest names it; the merged files are not deleted yet
        seen.append(("after commit", records(reader.scan("s")), sorted(
            p.name for p in Path(path).glob("*.parquet"))))

    monkeypatch.setattr(COMMIT, observed)
    assert history.compact("s") == 1
    assert [step for step, _, _ in seen] == ["before commit", "after commit"]
    for step, got, files in seen:
        assert got == everything, step
        assert len(files) == 7, step  # six checkpoint files and the compacted one on disk
    assert records(reader.scan("s")) == everything
    assert [p.name for p in (tmp_path / "source=s/bucket=0/day=1970-01-01").glob("*.parquet")] == [
        "compacted-000001.parquet"]


def test_a_reader_whose_files_vanish_takes_a_new_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = FeatureHistory(tmp_path, buckets=1)
    everything = populate(history, 4)
    real_snapshot = Partition.snapshot
    calls: list[int] = []

    def stale(self: Partition) -> list[str]:
        files = real_snapshot(self)
        if not calls:
            FeatureHistory(tmp_path).compact("s")  # deletes every file just listed
        calls.append(len(files))
        return files

    monkeypatch.setattr(Partition, "snapshot", stale)
    assert records(history.scan("s")) == everything
    assert calls == [4, 1]  # four checkpoint files, then the compacted one


def test_a_crash_mid_compaction_leaves_garbage_that_readers_ignore(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = FeatureHistory(tmp_path, buckets=1)
    everything = populate(history, 3)
    folder = tmp_path / "source=s/bucket=0/day=1970-01-01"

    def crash(*_: object) -> None:
        raise KeyboardInterrupt  # killed after installing the file, before committing

    monkeypatch.setattr(COMMIT, crash)
    with pytest.raises(KeyboardInterrupt):
        history.compact("s")
    monkeypatch.undo()
    assert (folder / "compacted-000001.parquet").exists()
    assert records(history.scan("s")) == everything
    assert history.compact("s") == 1  # collects the orphan, then compacts
    assert records(history.scan("s")) == everything

    # killed after committing, before deleting the merged files: they are replaced
    history.write("s", rows(["a"], [5], [10]), checkpoint=10, task="s-0")
    everything = records(history.scan("s"))
    (folder / "s-0-000000000001-0.parquet").write_bytes(b"not read: replaced")
    assert records(history.scan("s")) == everything


def test_readers_writers_and_compaction_run_together(tmp_path: Path) -> None:
    """A writer adds checkpoints, a compactor merges, readers scan: every scan is a
    set of whole checkpoints, at least those written before it began, and no row twice."""
    writer, compactor, reader = (FeatureHistory(tmp_path) for _ in range(3))
    writer.write("s", rows(["a"], [0], [0]), checkpoint=0, task="s-0")
    written, done, errors = [0], threading.Event(), []

    def guard(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                while not done.is_set():
                    work()
            except BaseException as error:  # reported below
                errors.append(error)
                done.set()
        return run

    def write() -> None:
        c = written[0] + 1
        if c > 150:
            done.set()
            return
        writer.write("s", rows(["abc"[c % 3]] * 2, [c * 60_000_000] * 2, [2 * c, 2 * c + 1]),
                     checkpoint=c, task="s-0")
        written[0] = c

    def compact() -> None:
        compactor.compact("s")

    def read() -> None:
        at_least = written[0]
        offsets = sorted(reader.scan("s").column("_offset").to_pylist())
        assert len(offsets) == len(set(offsets)), "a row twice"
        checkpoints = {o // 2 for o in offsets}  # checkpoint c holds 2c and 2c + 1
        assert set(range(at_least + 1)) <= checkpoints, "a written checkpoint is missing"
        assert len(offsets) == 1 + 2 * (len(checkpoints) - 1), "a checkpoint half seen"

    threads = [threading.Thread(target=guard(w)) for w in (write, compact, read, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(reader.scan("s").column("_offset").to_pylist()) == [0, *range(2, 302)]
