"""Crash safety of the embedded log, tested by killing real processes with SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from headwater.errors import CorruptLogError
from headwater.log import APPEND_TIME, OFFSET, Log, Schema
from headwater.log.embedded import EmbeddedBackend
from headwater.log.embedded.segment import encode_frame, segment_name
from headwater.log.schema import TIMESTAMP

SCHEMA = Schema.of({"key": "string", "batch": "int64", "item": "int64", "ts": "timestamp"},
                   key="key", event_time="ts")
PARTITIONS = 2

# The writer appends batch k (k = 0, 1, 2, ...) idempotently and prints k once the
# append is acknowledged. Restarted at k, it retries batch k first; it stops after
# batch `stop` (never when stop is -1).
WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, pyarrow as pa
    from headwater.log import Log, Schema
    from headwater.log.embedded import EmbeddedBackend
    from headwater.log.schema import TIMESTAMP

    root, start, fsync, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    schema = Schema.of({"key": "string", "batch": "int64", "item": "int64",
                        "ts": "timestamp"}, key="key", event_time="ts")
    log = Log(EmbeddedBackend(root, fsync=fsync, segment_bytes=64 * 1024))
    log.create_topic("events", schema, partitions=2)
    k = start
    while stop < 0 or k <= stop:
        n = 1 + (k * 7919) % 300
        items = np.arange(n)
        batch = pa.record_batch({
            "key": pa.array([f"k{(k + i) % 13}" for i in range(n)]),
            "batch": pa.array(np.full(n, k)),
            "item": pa.array(items),
            "ts": pa.array(1_700_000_000_000_000 + k * 1000 + items).cast(TIMESTAMP),
        })
        log.append("events", batch, producer_id="crash-writer", sequence=k)
        sys.stdout.write(f"{k}\\n")
        sys.stdout.flush()
        k += 1
    """
)


def batch_size(k: int) -> int:
    return 1 + (k * 7919) % 300


def run_writer(root: Path, start: int, fsync: str, stop: int = -1) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), str(start), fsync, str(stop)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def read_everything(root: Path) -> list[pa.Table]:
    log = Log(EmbeddedBackend(root, fsync="never"))
    try:
        tables = []
        for p in range(PARTITIONS):
            batches = [f.batch for f in log.replay("events", [p])]
            tables.append(pa.Table.from_batches(batches, SCHEMA.stored_schema()))
        return tables
    finally:
        log.close()


@pytest.mark.slow
@pytest.mark.parametrize("fsync", ["group", "never"])
def test_sigkill_at_random_moments_loses_nothing_acknowledged(tmp_path: Path, fsync: str) -> None:
    rng = random.Random(1234)
    root = tmp_path / "log"
    acked: set[int] = set()
    next_batch = 0
    kills = 0
    while kills < 25:
        proc = run_writer(root, next_batch, fsync)
        assert proc.stdout is not None
        # Let it get going (imports take a while), then kill it at a random moment.
        first = proc.stdout.readline()
        if not first:
            pytest.fail(f"writer died: {proc.stderr.read() if proc.stderr else ''}")
        acked.add(int(first))
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        out = proc.stdout.read()  # the same buffered pipe: no ack is lost
        proc.wait()
        acked.update(int(line) for line in out.split())
        kills += 1
        next_batch = max(acked) + 1  # the batch in flight may or may not have landed
        # The restarted writer retries `next_batch` with the same sequence number.

    # A last run retries the batch in flight at the last kill, and stops cleanly.
    final = run_writer(root, next_batch, fsync, stop=next_batch)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    acked.update(int(line) for line in out.split())

    tables = read_everything(root)
    seen: dict[int, list[int]] = {}
    for table in tables:
        assert table.column(OFFSET).to_pylist() == list(range(table.num_rows))
        batches = np.asarray(table.column("batch"))
        assert (np.diff(batches) >= 0).all(), "batches out of order within a partition"
        for b, item in zip(batches.tolist(), table.column("item").to_pylist(), strict=True):
            seen.setdefault(b, []).append(item)
    for k in acked:
        assert sorted(seen.get(k, [])) == list(range(batch_size(k))), f"batch {k} lost or doubled"
    for k, items in seen.items():
        assert sorted(items) == list(range(batch_size(k))), f"batch {k} partly written or doubled"
    assert max(seen) == max(acked)

    # Appends work again after the last crash.
    log = Log(EmbeddedBackend(root, fsync="never"))
    ends = log.end_offsets("events")
    result = log.append("events", [{"key": "k1", "batch": 10**6, "item": 0, "ts": 0}])
    p = int(result.partitions[0])
    assert int(result.offsets[0]) == ends[p]
    log.close()


def _segments(root: Path, partition: int = 0) -> list[Path]:
    return sorted((root / "topics" / "events" / str(partition)).glob("*.seg"))


def _fill(root: Path, batches: int) -> Log:
    log = Log(EmbeddedBackend(root, fsync="never"))
    log.create_topic("events", SCHEMA)
    for k in range(batches):
        log.append("events", [{"key": "a", "batch": k, "item": i, "ts": 0} for i in range(10)])
    return log


@pytest.mark.parametrize("cut", [1, 40, 72, 100, -8])
def test_a_torn_tail_is_invisible_to_readers_and_repaired_by_the_next_writer(
    tmp_path: Path, cut: int
) -> None:
    root = tmp_path / "log"
    _fill(root, 3).close()
    segment = _segments(root)[-1]
    whole = segment.read_bytes()
    _fill(root / "donor", 1).close()
    frame = _segments(root / "donor")[-1].read_bytes()[16:]
    torn = frame[:cut]  # the first `cut` bytes of a frame, or all but its last bytes
    segment.write_bytes(whole + torn)  # a writer died mid-append

    reader = Log(EmbeddedBackend(root, fsync="never"))
    assert reader.end_offsets("events") == [30]
    assert reader.read("events", 0, 0, 100).batch.num_rows == 30

    writer = Log(EmbeddedBackend(root, fsync="never"))
    result = writer.append("events", [{"key": "a", "batch": 9, "item": 0, "ts": 0}])
    assert result.offsets.tolist() == [30]
    assert segment.stat().st_size > len(whole)
    assert reader.read("events", 0, 30).batch.column("batch").to_pylist() == [9]
    fresh = Log(EmbeddedBackend(root, fsync="never"))
    assert fresh.read("events", 0, 0, 100).batch.column(OFFSET).to_pylist() == list(range(31))


def test_a_corrupt_last_frame_is_cut_on_the_next_append(tmp_path: Path) -> None:
    root = tmp_path / "log"
    _fill(root, 3).close()
    segment = _segments(root)[-1]
    data = bytearray(segment.read_bytes())
    data[-20] ^= 0xFF  # a bit flip inside the last frame's payload (power loss)
    segment.write_bytes(bytes(data))
    log = Log(EmbeddedBackend(root, fsync="never"))
    result = log.append("events", [{"key": "a", "batch": 9, "item": 0, "ts": 0}])
    assert result.offsets.tolist() == [20]
    assert log.read("events", 0, 0, 100).batch.column("batch").to_pylist()[-1] == 9


def test_segments_roll_and_replay_crosses_them(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = Log(EmbeddedBackend(root, fsync="never", segment_bytes=4096))
    log.create_topic("events", SCHEMA)
    for k in range(40):
        log.append("events", [{"key": "a", "batch": k, "item": i, "ts": 0} for i in range(5)])
    assert len(_segments(root)) > 3
    assert _segments(root)[1].name == segment_name(int(_segments(root)[1].stem))
    other = Log(EmbeddedBackend(root, fsync="never"))
    items = [x for f in other.replay("events") for x in f.batch.column("batch").to_pylist()]
    assert items == [k for k in range(40) for _ in range(5)]


def test_a_second_process_sees_appends_and_writes_in_turn(tmp_path: Path) -> None:
    """Two writer processes on one partition: offsets stay dense, nothing is lost."""
    root = tmp_path / "log"
    Log(EmbeddedBackend(root, fsync="never")).create_topic("events", SCHEMA)
    script = textwrap.dedent(
        """
        import sys
        from headwater.log import Log
        from headwater.log.embedded import EmbeddedBackend
        log = Log(EmbeddedBackend(sys.argv[1], fsync="never", segment_bytes=8192))
        for k in range(200):
            log.append("events", [{"key": "a", "batch": int(sys.argv[2]), "item": k, "ts": 0}])
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(root), str(w)]) for w in (1, 2)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    table = read_everything_single(root)
    assert table.column(OFFSET).to_pylist() == list(range(400))
    for w in (1, 2):
        mine = table.filter(pa.compute.equal(table.column("batch"), w))
        assert mine.column("item").to_pylist() == list(range(200))


def read_everything_single(root: Path) -> pa.Table:
    log = Log(EmbeddedBackend(root, fsync="never"))
    batches = [f.batch for f in log.replay("events", [0])]
    return pa.Table.from_batches(batches, SCHEMA.stored_schema())


def test_a_reader_process_sees_only_whole_batches_while_a_writer_appends(tmp_path: Path) -> None:
    root = tmp_path / "log"
    Log(EmbeddedBackend(root, fsync="never")).create_topic("events", SCHEMA)
    script = textwrap.dedent(
        """
        import sys
        from headwater.log import Log
        from headwater.log.embedded import EmbeddedBackend
        log = Log(EmbeddedBackend(sys.argv[1], fsync="never", segment_bytes=32 * 1024))
        for k in range(300):
            log.append("events", [{"key": "a", "batch": k, "item": i, "ts": 0}
                                  for i in range(1 + k % 17)])
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script, str(root)])
    reader = Log(EmbeddedBackend(root, fsync="never"))
    seen: list[tuple[int, int]] = []
    offset = 0
    deadline = time.monotonic() + 120
    while len(seen) < sum(1 + k % 17 for k in range(300)) and time.monotonic() < deadline:
        batch = reader.read("events", 0, offset, 50).batch
        offset += batch.num_rows
        seen.extend(zip(batch.column("batch").to_pylist(), batch.column("item").to_pylist(),
                        strict=True))
        if batch.num_rows == 0:
            assert writer.poll() in (None, 0)
            time.sleep(0.001)
    assert writer.wait(timeout=60) == 0
    assert seen == [(k, i) for k in range(300) for i in range(1 + k % 17)]


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc (Linux)")
def test_a_reader_following_a_busy_tail_keeps_few_maps_of_the_segment(tmp_path: Path) -> None:
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    log.create_topic("t", Schema.of({"k": "string", "ts": "timestamp"}, key="k",
                                    event_time="ts"))
    kept = []  # batches still referenced, as a feature task's history buffer holds them
    for i in range(2_000):
        log.append("t", pa.record_batch({"k": ["a"], "ts": pa.array([i], pa.int64()).cast(
            pa.timestamp("us", tz="UTC"))}))
        kept.append(log.read("t", 0, i).batch)
    maps = [line for line in Path("/proc/self/maps").read_text().splitlines()
            if line.endswith(".seg") and str(tmp_path) in line]
    assert len(maps) <= 20  # about log2 of the segment's size, not one per read
    assert sum(b.num_rows for b in kept) == 2_000


# A writer that stops forever inside segment creation, between writing the temporary
# file and linking it into place, so it can be killed there.
STUCK_CREATING = textwrap.dedent(
    """
    import os, sys, time
    import headwater.log.embedded.partition as partition
    from headwater.log import Log, Schema
    from headwater.log.embedded import EmbeddedBackend

    def stuck(src, dst):
        sys.stdout.write("creating\\n")
        sys.stdout.flush()
        time.sleep(600)

    partition.os.link = stuck
    schema = Schema.of({"key": "string", "ts": "timestamp"}, key="key", event_time="ts")
    Log(EmbeddedBackend(sys.argv[1], fsync="never")).create_topic("events", schema)
    Log(EmbeddedBackend(sys.argv[1], fsync="never")).read("events", 0)
    """
)


def test_a_writer_killed_creating_a_segment_leaves_nothing_once_the_partition_opens(
        tmp_path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", STUCK_CREATING, str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    assert writer.stdout.readline() == "creating\n", writer.stderr.read() if writer.stderr else ""
    partition_dir = tmp_path / "topics" / "events" / "0"
    left = list(partition_dir.glob("*.tmp"))
    assert [p.name.split(".")[2] for p in left] == [str(writer.pid)]
    # Another process creating a segment right now: its file must survive the clean-up.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    live = partition_dir / f"{segment_name(0)}.{sleeper.pid}.1.tmp"
    live.write_bytes(b"")
    writer.kill()
    writer.wait()
    try:
        log = Log(EmbeddedBackend(tmp_path, fsync="never"))
        log.append("events", [{"key": "a", "ts": "2024-01-01T00:00:00Z"}])
        assert sorted(p.name for p in partition_dir.glob("*.tmp")) == [live.name]
        assert log.read("events", 0).batch.num_rows == 1
        log.close()
    finally:
        sleeper.kill()
        sleeper.wait()
    log = Log(EmbeddedBackend(tmp_path, fsync="never"))
    assert log.end_offsets("events") == [1]  # opening the partition cleans the dead one's
    assert list(partition_dir.glob("*.tmp")) == []
    log.close()


def _version_1_segment(batches: list[list[int]], append_times: list[int]) -> bytes:
    """A segment as releases before version 2 wrote it: ``_offset`` and ``_append_time``
    stored in every frame. Batch ``k`` holds items ``batches[k]``."""
    data = b"HWSEG\x00\x01\x00" + bytes(8)
    base = 0
    for items, at in zip(batches, append_times, strict=True):
        n = len(items)
        stored = pa.RecordBatch.from_arrays([
            pa.array(["a"] * n), pa.array([base] * n), pa.array(items),
            pa.array(items, pa.int64()).cast(TIMESTAMP),
            pa.array(range(base, base + n), pa.int64()), pa.array([at] * n, TIMESTAMP),
        ], schema=SCHEMA.stored_schema())
        payload = stored.serialize()
        header, pad = encode_frame(payload, base_offset=base, count=n, append_time=at,
                                   min_event_time=min(items), max_event_time=max(items))
        data += header + payload.to_pybytes() + pad
        base += n
    return data


def test_version_1_segments_stay_readable_and_writable(tmp_path: Path) -> None:
    root = tmp_path / "log"
    Log(EmbeddedBackend(root, fsync="never")).create_topic("events", SCHEMA)
    old = root / "topics" / "events" / "0" / segment_name(0)
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(_version_1_segment([[1, 2, 3], [4, 5]], [100, 200]))

    log = Log(EmbeddedBackend(root, fsync="never", segment_bytes=4096))
    read = log.read("events", 0, 0, 100).batch
    assert read.column("item").to_pylist() == [1, 2, 3, 4, 5]
    assert read.column(OFFSET).to_pylist() == [0, 1, 2, 3, 4]
    assert read.column(APPEND_TIME).cast(pa.int64()).to_pylist() == [100] * 3 + [200] * 2
    # Appends go on in the old segment's format until it is full, then roll to version 2.
    for k in range(40):
        log.append("events", [{"key": "a", "batch": 10 + k, "item": i, "ts": i}
                              for i in range(5)])
    segments = _segments(root)
    assert segments[0] == old
    assert old.read_bytes()[:8] == b"HWSEG\x00\x01\x00"
    assert len(segments) > 2
    assert all(s.read_bytes()[:8] == b"HWSEG\x00\x02\x00" for s in segments[1:])
    fresh = Log(EmbeddedBackend(root, fsync="never"))
    replayed = pa.Table.from_batches([f.batch for f in fresh.replay("events")])
    assert replayed.column(OFFSET).to_pylist() == list(range(205))
    assert replayed.column("batch").to_pylist() == [0] * 3 + [3] * 2 + [
        10 + k for k in range(40) for _ in range(5)]
    times = replayed.column(APPEND_TIME).cast(pa.int64()).to_pylist()
    assert times[:5] == [100] * 3 + [200] * 2
    assert times[5] > 200
    assert times == sorted(times)
    assert fresh.seek("events", 0, event_time=4) == 3


def test_a_segment_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "log"
    _fill(root, 2).close()
    segment = _segments(root)[0]
    segment.write_bytes(b"HWSEG\x00\x09\x00" + segment.read_bytes()[8:])
    with pytest.raises(CorruptLogError, match="not a segment of a version"):
        Log(EmbeddedBackend(root, fsync="never")).read("events", 0, 0)
