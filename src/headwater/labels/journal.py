"""A fenced journal: one owner's state as a snapshot and the records of its steps since.

The label joiner keeps each slot's state here (:mod:`headwater.labels.task`): a step
appends one record — what it read — so what a step writes is proportional to what it
read, not to the state; the state is rewritten whole only when the records outgrow
both ``compact_bytes`` and the last snapshot (so rewriting costs at most about as much
as the records did). (A feature task's checkpoint, :mod:`headwater.features.checkpoint`,
is rewritten whole each time: its state is tiles that change everywhere, where a
joiner's is mostly predictions that wait untouched for their labels.) The files use the
record format of the online store's write-ahead log (:mod:`headwater.store.online.wal`)::

    <dir>/epoch              8 bytes: the epoch of the current owner; flock'd around
                             a claim, an append and a compaction
    <dir>/snapshot           the state as of step g (header, then g and the state)
    <dir>/<g:020d>.wal       the records of steps g + 1, g + 2, … (one record each)

**Fencing.** Whoever opens the journal *claims* it: under the lock it adds one to the
epoch, and reads the snapshot and the records (cutting off a torn last record). Every
later append and compaction takes the lock and checks that the epoch is still its own;
a journal claimed by someone else since raises :class:`~headwater.errors.FencedError`
and writes nothing. So once a second owner has claimed, the first can never add a
record: the records are one history, written by one owner at a time, whatever the
consumer group believed meanwhile. The lock is held for the length of one write only,
so a new owner can claim from an owner that hangs (a paused process), which is then
fenced when it wakes.

>>> import tempfile
>>> path = tempfile.mkdtemp()
>>> first = Journal(path, fsync="never")
>>> first.claim()
(None, [])
>>> first.append(b"step 1")
>>> second = Journal(path, fsync="never")
>>> second.claim()
(None, [b'step 1'])
>>> try:
...     first.append(b"step 2")
... except FencedError as exc:
...     print(str(exc).split(": ", 1)[1])
claimed by another owner (epoch 2; this one has 1): it may no longer write here
>>> first.close(); second.close()
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from headwater.errors import CorruptLogError, FencedError
from headwater.fsync import FsyncPolicy, atomic_write, syncs
from headwater.store.online.directory import StoreDirectory
from headwater.store.online.wal import WalFollower, WalWriter, encode_record, scan

__all__ = ["Journal"]

_WAL: Final = b"HWJNWAL\x01"
_SNAPSHOT: Final = b"HWJNSNP\x01"
_EPOCH: Final = struct.Struct("<Q")


class Journal:
    """The journal in directory ``path`` (created); see the module docstring."""

    def __init__(self, path: str | Path, *, fsync: FsyncPolicy = "group",
                 compact_bytes: int = 16 << 20) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._files = StoreDirectory(str(self.path))
        self._fsync: FsyncPolicy = fsync
        self._sync = syncs(fsync)
        self.compact_bytes = compact_bytes
        #: The epoch this handle claimed (0 before :meth:`claim`).
        self.epoch = 0
        #: Bytes this handle wrote (records, snapshots and file headers).
        self.bytes_written = 0
        self._fd = os.open(self.path / "epoch", os.O_RDWR | os.O_CREAT, 0o644)
        self._wal: WalWriter | None = None
        self._generation = 0
        self._compact_at = compact_bytes

    # -- claiming --------------------------------------------------------------

    def claim(self) -> tuple[bytes | None, list[bytes]]:
        """Become the owner (fencing every earlier one): the snapshot (``None`` when
        there is none yet) and the records after it, in order."""
        with self._locked():
            self.epoch = self._stored_epoch() + 1
            os.pwrite(self._fd, _EPOCH.pack(self.epoch), 0)
            if self._sync:
                os.fsync(self._fd)
            return self._load()

    def _load(self) -> tuple[bytes | None, list[bytes]]:
        files = self._files
        files.remove_leftovers()
        generation, snapshot = self._read_snapshot()
        files.remove_before(generation)  # a crash came between a snapshot and its clean-up
        live = files.generations() or [generation]
        if live[0] != generation:
            raise CorruptLogError(f"{self.path}: the records after step {generation} are "
                                  f"missing (found {live[0]:020d}.wal first)")
        records: list[bytes] = []
        for g in live[:-1]:
            follower = WalFollower(files.wal(g), header=_WAL)
            try:
                records += [bytes(r) for r in follower.read_new()]
                if follower.position < follower.file_size:
                    raise CorruptLogError(f"{follower.path}: incomplete record before the end")
            finally:
                follower.close()
        last = files.wal(live[-1])
        if not os.path.exists(last):
            atomic_write(last, _WAL, fsync=self._fsync)
            self.bytes_written += len(_WAL)
        if self._wal is not None:
            self._wal.close(sync=False)
        self._wal, tail = WalWriter.open(last, header=_WAL)
        records += [bytes(r) for r in tail]
        self._generation = live[-1]
        self._compact_at = max(self.compact_bytes, os.path.getsize(files.snapshot)
                               if snapshot is not None else 0)
        return snapshot, records

    def _read_snapshot(self) -> tuple[int, bytes | None]:
        try:
            with open(self._files.snapshot, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return 0, None
        records, stop = scan(data, len(_SNAPSHOT)) if data[:len(_SNAPSHOT)] == _SNAPSHOT \
            else ([], -1)
        if len(records) != 2 or stop != len(data):
            raise CorruptLogError(f"{self._files.snapshot}: unreadable snapshot")
        return _EPOCH.unpack(records[0])[0], bytes(records[1])

    # -- writing ---------------------------------------------------------------

    def append(self, record: bytes) -> None:
        """Add one record, durably under the fsync policy, if this handle still owns
        the journal (:class:`~headwater.errors.FencedError` otherwise)."""
        data = encode_record(record)
        with self._owned() as wal:
            wal.append(data)
            if self._sync:
                wal.sync()
        self.bytes_written += len(data)

    def check(self) -> None:
        """Raise :class:`~headwater.errors.FencedError` if another owner has claimed
        the journal since this handle did."""
        with self._owned():
            pass

    @property
    def due(self) -> bool:
        """Whether the records have outgrown both ``compact_bytes`` and the snapshot."""
        return self._wal is not None and self._wal.size >= self._compact_at

    def compact(self, step: int, snapshot: bytes) -> None:
        """Make ``snapshot`` — the state as of record ``step``, the last one appended —
        the base, and start an empty record file after it."""
        with self._owned() as wal:
            files = self._files
            following = files.wal(step)
            if step != self._generation:
                atomic_write(following, _WAL, fsync=self._fsync)  # first: a failure changes nothing
                self.bytes_written += len(_WAL)
            content = b"".join([_SNAPSHOT, encode_record(_EPOCH.pack(step)),
                                encode_record(snapshot)])
            atomic_write(files.snapshot, content, fsync=self._fsync)
            self.bytes_written += len(content)
            if step != self._generation:
                wal.close(sync=False)
                self._wal = WalWriter(following, len(_WAL))
                self._generation = step
            else:  # nothing was recorded since the last base: its file stays, empty
                self._wal = wal
            files.remove_before(step)
            self._compact_at = max(self.compact_bytes, len(content))

    def close(self) -> None:
        if self._wal is not None:
            self._wal.close(sync=self._sync)
            self._wal = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # -- the lock and the epoch --------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self._fd < 0:
            raise FencedError(f"{self.path}: this journal handle is closed")
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _owned(self) -> Iterator[WalWriter]:
        with self._locked():
            current = self._stored_epoch()
            if self._wal is None or current != self.epoch:
                raise FencedError(
                    f"{self.path}: claimed by another owner (epoch {current}; this one has "
                    f"{self.epoch}): it may no longer write here")
            yield self._wal

    def _stored_epoch(self) -> int:
        data = os.pread(self._fd, _EPOCH.size, 0)
        return _EPOCH.unpack(data)[0] if len(data) == _EPOCH.size else 0
