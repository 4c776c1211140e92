"""The embedded online store: a dict in memory, made durable by a write-ahead log.

Reads are dict lookups (a microsecond or two for an entity's whole feature set).
Every write, delete or ``meta_set`` is one record appended to the write-ahead log
(WAL) before it is applied, durable under the fsync policy of the embedded log
(:mod:`headwater.log.embedded.durability`: ``always``, ``group`` or ``never``).
The files are laid out as :mod:`headwater.store.online.directory` describes.

*Compaction* starts WAL ``g + 1``, writes the whole state as snapshot ``g + 1``
(temporary file, fsync, rename) and deletes the older WALs. It runs when the WAL
outgrows both ``compact_bytes`` and the last snapshot (so rewriting the state costs at
most about as much as the writes did), or on :meth:`~EmbeddedOnlineStore.compact`.
Writes wait for it; reads do not.

Opening replays the snapshot and the WALs. A writer killed mid-write leaves a torn
last record: the batch is dropped whole and the next writer cuts it off. One process
writes (:class:`~headwater.errors.WriterConflictError` for a second); others open with
``read_only=True`` and see the store as of their opening, until
:meth:`~EmbeddedOnlineStore.refresh` catches up.

>>> import tempfile
>>> store = EmbeddedOnlineStore(tempfile.mkdtemp(), fsync="never")
>>> store.write("user", [("u1", {"clicks": b"\\x01", "spend": b"\\x02"})], version=1)
>>> store.read("user", "u1")
{'clicks': b'\\x01', 'spend': b'\\x02'}
>>> store.close()
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Final

import msgspec

from headwater.errors import ConfigError, CorruptLogError, WriterConflictError
from headwater.fsync import FsyncPolicy, atomic_write, syncs
from headwater.log.embedded.durability import Durability
from headwater.store.online.batch import (
    Batch,
)
from headwater.store.online.directory import StoreDirectory
from headwater.store.online.snapshot import read_generation, read_snapshot, write_snapshot
from headwater.store.online.state import OnlineState
from headwater.store.online.wal import (
    FILE_HEADER,
    WalFollower,
    WalWriter,
    encode_record,
)
from headwater.store.online.writer import BatchWriter, StateReads

__all__ = ["EmbeddedOnlineStore"]

_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(Batch)
_OPEN_ATTEMPTS: Final = 100


class EmbeddedOnlineStore(StateReads, BatchWriter):
    """An online store in a local directory, no server."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: FsyncPolicy = "group",
        group_commit_ms: float = 2.0,
        compact_bytes: int = 64 << 20,
        read_only: bool = False,
    ) -> None:
        if isinstance(compact_bytes, bool) or not isinstance(compact_bytes, int):
            raise ConfigError(f"compact_bytes: expected an integer, got {compact_bytes!r}")
        if compact_bytes <= 0:
            raise ConfigError(f"compact_bytes: must be positive, got {compact_bytes}")
        self.path = Path(path)
        self.read_only = read_only
        self._dir = str(self.path)
        self._files = StoreDirectory(self._dir)
        self._durability = Durability(fsync, group_commit_ms)
        self._fsync: FsyncPolicy = fsync
        self._sync = syncs(fsync)
        self._compact_bytes = compact_bytes
        self._compact_at = compact_bytes
        self._lock = threading.RLock()
        self._state = OnlineState()
        self._generation = 0
        self._wal: WalWriter | None = None
        self._follower: WalFollower | None = None
        self._lock_fd: int | None = None
        if read_only:
            if not self.path.is_dir():
                raise ConfigError(f"{self._dir}: no online store here to read")
            self._load_reader()
            return
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._files.lock()
        try:
            self._load_writer()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        mode = ", read_only=True" if self.read_only else ""
        return f"EmbeddedOnlineStore({self._dir!r}{mode})"

    # -- the protocol -------------------------------------------------------------

    def close(self) -> None:
        """Close the files and give up the write lock; reads of what is loaded go on."""
        with self._lock:
            if self._wal is not None:
                self._wal.close(sync=self._sync)
                self._wal = None
            if self._follower is not None:
                self._follower.close()
                self._follower = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    # -- beyond the protocol ----------------------------------------------------

    def refresh(self) -> int:
        """Catch up with the writer (read-only stores); return the batches applied."""
        with self._lock:
            if not self.read_only:
                return 0
            wal = self._follower
            if wal is not None and not os.path.exists(wal.path):
                return self._load_reader()  # compacted away since the last look
            applied, self._generation, self._follower = self._follow(
                self._state, self._generation, wal
            )
            snapshot = self._files.snapshot
            if self._follower is None and read_generation(snapshot) > self._generation:
                applied += self._load_reader()
            return applied

    def compact(self) -> None:
        """Snapshot the whole state and start a fresh WAL now."""
        with self._lock:
            self._compact()

    # -- writing ------------------------------------------------------------------

    def _commit(self, batch: Batch, action: str) -> None:
        record = encode_record(_encoder.encode(batch))
        with self._lock:
            wal = self._wal
            if wal is None:
                raise WriterConflictError(
                    f"{self._dir}: this store is "
                    f"{'read-only' if self.read_only else 'closed'}; open it without "
                    "read_only=True to write (one writer at a time)"
                )
            self._state.check(batch)
            wal.append(record)
            self._state.apply(batch)
        self._durability.after_write(wal)
        if wal.size >= self._compact_at:
            with self._lock:
                if self._wal is wal:
                    self._compact()

    def _compact(self) -> None:
        wal = self._wal
        if wal is None:
            raise WriterConflictError(f"{self._dir}: only an open writer compacts")
        following = self._generation + 1
        path = self._files.wal(following)
        atomic_write(path, FILE_HEADER, fsync=self._fsync)  # first: a failure changes nothing
        wal.close(sync=self._sync)
        self._wal = WalWriter(path, len(FILE_HEADER))
        self._generation = following
        write_snapshot(self._files.snapshot, following, self._state, fsync=self._fsync)
        self._compact_at = max(self._compact_bytes, os.stat(self._files.snapshot).st_size)
        self._files.remove_before(following)

    # -- opening and following ---------------------------------------------------

    def _load_writer(self) -> None:
        files = self._files
        files.remove_leftovers()
        generation, state = read_snapshot(files.snapshot)
        files.remove_before(generation)  # a crash came between snapshot and clean-up
        live = files.generations() or [generation]
        if live != list(range(generation, generation + len(live))):
            raise CorruptLogError(f"{self._dir}: WAL generations {live} do not follow "
                                  f"snapshot generation {generation}")
        for g in live[:-1]:
            follower = WalFollower(files.wal(g))
            try:
                _apply(state, follower.read_new(), follower.path)
                if follower.position < follower.file_size:
                    raise CorruptLogError(f"{follower.path}: incomplete record before the end")
            finally:
                follower.close()
        last = files.wal(live[-1])
        if not os.path.exists(last):
            atomic_write(last, FILE_HEADER, fsync=self._fsync)
        self._wal, records = WalWriter.open(last)
        _apply(state, records, last)
        self._state, self._generation = state, live[-1]
        if os.path.exists(files.snapshot):
            self._compact_at = max(self._compact_bytes, os.stat(files.snapshot).st_size)

    def _load_reader(self) -> int:
        """(Re)load from the snapshot and the WALs after it; return the batches applied."""
        for _ in range(_OPEN_ATTEMPTS):
            generation, state = read_snapshot(self._files.snapshot)
            applied, following, wal = self._follow(state, generation, None)
            if wal is None and read_generation(self._files.snapshot) != generation:
                continue  # a compaction removed the WAL between our two reads: again
            if self._follower is not None:
                self._follower.close()
            self._state, self._generation, self._follower = state, following, wal
            return applied
        raise CorruptLogError(f"{self._dir}: the snapshot kept changing while being read")

    def _follow(
        self, state: OnlineState, generation: int, wal: WalFollower | None
    ) -> tuple[int, int, WalFollower | None]:
        """Apply the WALs from ``generation`` on (from ``wal``'s position, if given).

        Returns the batches applied, and the generation and follower reached.
        """
        applied = 0
        while True:
            if wal is None:
                try:
                    wal = WalFollower(self._files.wal(generation))
                except FileNotFoundError:
                    return applied, generation, None
            finished = os.path.exists(self._files.wal(generation + 1))  # before reading
            applied += _apply(state, wal.read_new(), wal.path)
            if not finished:
                return applied, generation, wal
            if wal.position < wal.file_size:
                raise CorruptLogError(f"{wal.path}: incomplete record before the end")
            wal.close()
            wal, generation = None, generation + 1


def _apply(state: OnlineState, records: list[memoryview], path: str) -> int:
    for record in records:
        try:
            batch = _decoder.decode(record)
        except msgspec.DecodeError as exc:
            raise CorruptLogError(f"{path}: unreadable batch: {exc}") from None
        state.apply(batch)
    return len(records)
