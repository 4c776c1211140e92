"""What the embedded online store does beyond the contract: files, locks, readers."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import ConfigError, CorruptLogError, ValidationError, WriterConflictError
from headwater.store.online import EmbeddedOnlineStore
from headwater.store.online.wal import FILE_HEADER

NS = "user"


def open_store(root: Path, **options: Any) -> EmbeddedOnlineStore:
    options.setdefault("fsync", "never")
    return EmbeddedOnlineStore(root, **options)


def wals(root: Path) -> list[Path]:
    return sorted(root.glob("*.wal"))


def fill(store: EmbeddedOnlineStore, batches: int, *, start: int = 0) -> None:
    for k in range(start, start + batches):
        store.write(NS, [(f"e{k % 10}", {"k": str(k).encode(), f"f{k % 3}": b"x" * 20})],
                    version=k, meta={"offset": str(k).encode()})


def expected(batches: int) -> dict[str, dict[str, bytes]]:
    entities: dict[str, dict[str, bytes]] = {}
    for k in range(batches):
        entities.setdefault(f"e{k % 10}", {}).update({"k": str(k).encode(),
                                                      f"f{k % 3}": b"x" * 20})
    return entities


def contents(store: EmbeddedOnlineStore) -> dict[str, dict[str, bytes]]:
    keys = [f"e{i}" for i in range(10)]
    return {k: v for k, v in zip(keys, store.read_many(NS, keys), strict=True) if v}


# -- one writer ---------------------------------------------------------------------


def test_a_second_writer_in_the_process_is_refused(tmp_path: Path) -> None:
    first = open_store(tmp_path)
    with pytest.raises(WriterConflictError, match=rf"pid {os.getpid()}.*read_only=True"):
        open_store(tmp_path)
    first.close()
    second = open_store(tmp_path)  # the lock died with the first handle
    second.write(NS, [("u1", {"a": b"1"})])
    second.close()


def test_a_second_writer_process_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.write(NS, [("u1", {"a": b"1"})])
    script = textwrap.dedent(
        """
        import sys
        from headwater.errors import WriterConflictError
        from headwater.store.online import EmbeddedOnlineStore
        try:
            EmbeddedOnlineStore(sys.argv[1], fsync="never")
        except WriterConflictError as exc:
            print("refused:", exc)
        reader = EmbeddedOnlineStore(sys.argv[1], read_only=True)
        print("read:", reader.read("user", "u1"))
        """
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    assert f"refused: {tmp_path}: another writer (pid {os.getpid()})" in out
    assert "read: {'a': b'1'}" in out
    store.close()


def test_read_only_and_closed_handles_do_not_write(tmp_path: Path) -> None:
    writer = open_store(tmp_path)
    reader = open_store(tmp_path, read_only=True)
    with pytest.raises(WriterConflictError, match="read-only"):
        reader.write(NS, [("u1", {"a": b"1"})])
    with pytest.raises(WriterConflictError, match="read-only"):
        reader.meta_set(NS, "k", b"v")
    writer.write(NS, [("u1", {"a": b"1"})])
    writer.close()
    with pytest.raises(WriterConflictError, match="closed"):
        writer.delete(NS, ["u1"])
    assert writer.read(NS, "u1") == {"a": b"1"}  # what is loaded stays readable


def test_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fsync"):
        EmbeddedOnlineStore(tmp_path / "a", fsync="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="compact_bytes"):
        EmbeddedOnlineStore(tmp_path / "b", compact_bytes=0)
    with pytest.raises(ConfigError, match="no online store"):
        EmbeddedOnlineStore(tmp_path / "missing", read_only=True)


# -- readers ------------------------------------------------------------------------


def test_a_reader_sees_the_store_as_of_opening_until_it_refreshes(tmp_path: Path) -> None:
    writer = open_store(tmp_path)
    fill(writer, 5)
    reader = open_store(tmp_path, read_only=True)
    fill(writer, 5, start=5)
    assert contents(reader) == expected(5)
    assert reader.version(NS) == 4
    assert reader.refresh() == 5
    assert contents(reader) == expected(10)
    assert (reader.version(NS), reader.meta_get(NS, "offset")) == (9, b"9")
    assert reader.refresh() == 0


def test_a_reader_follows_through_compactions(tmp_path: Path) -> None:
    writer = open_store(tmp_path)
    reader = open_store(tmp_path, read_only=True)  # before anything was written
    assert reader.refresh() == 0
    fill(writer, 3)
    writer.compact()
    fill(writer, 3, start=3)
    reader.refresh()
    assert contents(reader) == expected(6)
    fill(writer, 2, start=6)
    writer.compact()
    writer.compact()  # the WAL the reader follows is gone, and the one after it
    fill(writer, 2, start=8)
    reader.refresh()
    assert contents(reader) == expected(10)
    assert reader.version(NS) == 9


def test_a_reader_sees_only_whole_batches_while_a_process_writes(tmp_path: Path) -> None:
    """Every batch sets all its entities to its number: a reader never sees a mix."""
    open_store(tmp_path).close()
    script = textwrap.dedent(
        """
        import sys
        from headwater.store.online import EmbeddedOnlineStore
        store = EmbeddedOnlineStore(sys.argv[1], fsync="never", compact_bytes=16 * 1024)
        for k in range(1, 400):
            tag = str(k).encode()
            store.write("user", [(f"e{i}", {"k": tag}) for i in range(20)], version=k)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    reader = open_store(tmp_path, read_only=True)
    entities = [f"e{i}" for i in range(20)]
    seen: set[int] = set()
    deadline = time.monotonic() + 120
    while (writer.poll() is None or reader.version(NS) != 399) and time.monotonic() < deadline:
        reader.refresh()
        version = reader.version(NS)
        tags = {row.get("k", b"0") for row in reader.read_many(NS, entities)}
        assert tags == {str(version or 0).encode()}
        seen.add(version or 0)
    assert writer.wait(timeout=60) == 0
    assert reader.version(NS) == 399
    assert len(seen) > 1


# -- compaction -----------------------------------------------------------------------


def test_compaction_replaces_the_wal_with_a_snapshot(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    fill(store, 50)
    before = wals(tmp_path)
    store.compact()
    after = wals(tmp_path)
    assert len(before) == len(after) == 1
    assert before != after
    assert after[0].read_bytes() == FILE_HEADER
    assert (tmp_path / "snapshot").exists()
    fill(store, 5, start=50)
    store.close()
    again = open_store(tmp_path)
    assert contents(again) == expected(55)
    assert again.version(NS) == 54


def test_compaction_runs_by_itself_when_the_wal_outgrows_the_snapshot(tmp_path: Path) -> None:
    store = open_store(tmp_path, compact_bytes=4096)
    fill(store, 400)
    generation = int(wals(tmp_path)[0].stem)
    assert generation > 3
    assert wals(tmp_path)[0].stat().st_size < 4096 + 200
    store.close()
    assert contents(open_store(tmp_path)) == expected(400)


@pytest.mark.parametrize("moment", ["after-new-wal", "after-snapshot", "half-made-snapshot"])
def test_a_crash_during_compaction_loses_nothing(tmp_path: Path, moment: str) -> None:
    store = open_store(tmp_path)
    fill(store, 20)
    old_wal = wals(tmp_path)[0]
    saved = old_wal.read_bytes()
    store.compact()
    store.close()
    # Put back what a crash at `moment` would have left.
    if moment == "after-new-wal":  # next WAL created, no snapshot written yet
        old_wal.write_bytes(saved)
        (tmp_path / "snapshot").unlink()
    elif moment == "after-snapshot":  # snapshot renamed, old WAL not yet deleted
        old_wal.write_bytes(saved)
    else:
        (tmp_path / "snapshot.123.tmp").write_bytes(b"half a snap")
    store = open_store(tmp_path)
    assert contents(store) == expected(20)
    assert store.version(NS) == 19
    assert not list(tmp_path.glob("*.tmp"))
    fill(store, 1, start=20)
    store.close()
    assert contents(open_store(tmp_path)) == expected(21)


# -- torn tails and corruption ---------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 10, 16, 17, -1])
def test_a_torn_last_batch_is_dropped_whole_and_cut_off(tmp_path: Path, cut: int) -> None:
    store = open_store(tmp_path)
    fill(store, 9)
    wal = wals(tmp_path)[0]
    whole = wal.stat().st_size
    fill(store, 1, start=9)
    store.close()
    data = wal.read_bytes()
    wal.write_bytes(data[: whole + cut] if cut > 0 else data[:cut])  # the 10th, torn

    reader = open_store(tmp_path, read_only=True)
    assert contents(reader) == expected(9)
    assert wal.stat().st_size > whole  # readers never repair
    store = open_store(tmp_path)
    assert contents(store) == expected(9)
    assert store.version(NS) == 8
    assert wal.stat().st_size == whole
    fill(store, 3, start=9)
    store.close()
    assert contents(open_store(tmp_path)) == expected(12)
    assert reader.refresh() == 3
    assert contents(reader) == expected(12)


@pytest.mark.parametrize("damage", ["flip-last", "zeros"])
def test_a_power_cut_tail_is_dropped(tmp_path: Path, damage: str) -> None:
    store = open_store(tmp_path)
    fill(store, 10)
    store.close()
    wal = wals(tmp_path)[0]
    data = bytearray(wal.read_bytes())
    if damage == "flip-last":
        data[-3] ^= 0xFF
    else:
        data += bytes(4096)
    wal.write_bytes(bytes(data))
    store = open_store(tmp_path)
    assert contents(store) == (expected(9) if damage == "flip-last" else expected(10))


def test_a_damaged_record_before_good_ones_is_corruption(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    fill(store, 10)
    store.close()
    wal = wals(tmp_path)[0]
    data = bytearray(wal.read_bytes())
    data[len(FILE_HEADER) + 20] ^= 0xFF  # inside the first record
    wal.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError, match="CRC"):
        open_store(tmp_path)
    with pytest.raises(CorruptLogError, match="CRC"):
        open_store(tmp_path, read_only=True)


def test_a_failed_append_leaves_no_torn_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path)
    fill(store, 3)
    real_write = os.write

    def half_then_full(fd: int, data: Any) -> int:
        real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space"):
        store.write(NS, [("e1", {"k": b"lost"})], version=3)
    monkeypatch.undo()
    assert store.version(NS) == 2
    fill(store, 2, start=3)
    store.close()
    assert contents(open_store(tmp_path)) == expected(5)


def test_a_refused_write_adds_nothing_to_the_wal(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    fill(store, 3)
    size = wals(tmp_path)[0].stat().st_size
    with pytest.raises(ValidationError):
        store.write(NS, [("e1", {"k": b"stale"})], version=1)
    assert wals(tmp_path)[0].stat().st_size == size


# -- durability -------------------------------------------------------------------------


@pytest.mark.parametrize("fsync", ["always", "group", "never"])
def test_each_fsync_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: str) -> None:
    syncs = 0
    real = os.fdatasync

    def counting(fd: int) -> None:
        nonlocal syncs
        syncs += 1
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    store = open_store(tmp_path, fsync=fsync, group_commit_ms=5.0)
    barrier = threading.Barrier(8)

    def writer(w: int) -> None:
        barrier.wait()
        for k in range(10):
            store.write(NS, [(f"w{w}", {"k": str(k).encode()})])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if fsync == "always":
        assert syncs >= 80
    elif fsync == "group":
        assert 1 <= syncs < 80  # appends share syncs
    else:
        assert syncs == 0
    store.close()
    again = open_store(tmp_path)
    assert again.read_many(NS, [f"w{w}" for w in range(8)]) == [{"k": b"9"}] * 8


def test_readers_in_threads_never_see_half_an_entity(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    stop = threading.Event()
    bad: list[dict[str, bytes]] = []

    def read() -> None:
        while not stop.is_set():
            row = store.read(NS, "e")
            if len(set(row.values())) > 1:
                bad.append(row)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    for k in range(2000):
        store.write(NS, [("e", {f"f{j}": str(k).encode() for j in range(20)})])
    stop.set()
    for thread in readers:
        thread.join()
    assert bad == []
