"""One partition of the embedded log: a directory of segment files.

Writers (threads or processes) take the partition's write lock (``flock`` on
``write.lock``) for each append, catch up with what other writers appended, repair a
torn tail left by a writer that died mid-append, and write one frame. Readers never
lock: they memory-map segments and see complete frames only. Retention moves the start
offset, kept in the ``start`` file; segments wholly before it are deleted.

A new segment is written whole under a temporary name (``<segment>.<pid>.<thread>.tmp``)
and linked into place. A writer killed in between leaves its temporary file behind;
opening the partition removes those of processes that no longer run (a live writer in
another process may be creating one right now, so its files are left alone).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa

from headwater.errors import CorruptLogError, OffsetOutOfRangeError, WriterConflictError
from headwater.fsync import FsyncPolicy, atomic_write, fsync_dir, syncs
from headwater.log.backend import Producer
from headwater.log.embedded.segment import (
    FILE_HEADER,
    FRAME_HEADER_SIZE,
    STORED_SYSTEM_COLUMNS,
    FrameHeader,
    encode_frame,
    producer_hash,
    scan,
    segment_name,
    segment_version,
    verify,
    write_all,
)
from headwater.log.frames import FrameIndex, ProducerTable, read_frames, seek_event_time
from headwater.log.records import PartitionAppend, Retention, empty_batch, with_system_columns
from headwater.log.schema import TIMESTAMP, Schema

__all__ = ["Partition"]

_LOCK_WAIT_S: Final = 30.0
_TMP_SUFFIX: Final = ".tmp"
_LEFTOVER: Final = re.compile(r"^\d{20}\.seg\.(\d+)\.\d+\.tmp$")


class Partition:
    """Append, read and seek one partition; safe across threads and processes."""

    def __init__(self, path: Path, schema: Schema, *, segment_bytes: int,
                 fsync: FsyncPolicy) -> None:
        self.path = path
        self.schema = schema
        self._stored = schema.stored_schema()
        self._events = schema.arrow_schema()
        self._segment_bytes = segment_bytes
        self._fsync: FsyncPolicy = fsync
        self._sync_dirs = syncs(fsync)
        self._lock = threading.RLock()
        self._write_fd: int | None = None
        self._write_segment = -1
        self._lock_fd: int | None = None
        self._checked_tail = False
        self._dir = str(path)
        self._start_file = f"{self._dir}/start"
        path.mkdir(parents=True, exist_ok=True)
        self.removed_leftovers = _remove_leftovers(path)
        with self._lock:
            self._load()

    # -- the index: every frame on disk --------------------------------------------

    def _load(self) -> None:
        self.index = FrameIndex()
        self.producers = ProducerTable()
        self._maps: dict[int, pa.Buffer] = {}
        self._versions: dict[int, int] = {}  # segment -> format version
        self._frame_segment: list[int] = []
        self._frame_position: list[int] = []
        self._frame_bytes: list[int] = []
        self._start_stamp = -1
        self._start = 0
        self._read_start()
        bases = sorted(int(p.stem) for p in self.path.glob("*.seg"))
        if not bases:
            self._create_segment(0)
            bases = [0]
        self.index.start = bases[0]
        for base in bases:
            self._last = base
            self._scan_pos = len(FILE_HEADER)
            self._scan_new()
            if base != bases[-1] and self._scan_pos < self._size(base):
                raise CorruptLogError(f"{self._seg_path(base)}: incomplete frame before the end")
        self.index.start = max(self.index.start, self._start)

    def _seg_path(self, base: int) -> str:
        return f"{self._dir}/{segment_name(base)}"

    def _size(self, base: int) -> int:
        return os.stat(self._seg_path(base)).st_size

    def _buffer(self, base: int, needed: int) -> pa.Buffer:
        data = self._maps.get(base)
        if data is None or data.size < needed:
            try:
                data = pa.memory_map(self._seg_path(base), "r").read_buffer()
            except FileNotFoundError:
                raise OffsetOutOfRangeError(
                    f"{self.path}: segment {base} was removed by retention"
                ) from None
            self._maps[base] = data
        return data

    def _version(self, base: int) -> int:
        version = self._versions.get(base)
        if version is None:
            version = segment_version(self._buffer(base, len(FILE_HEADER)), self._seg_path(base))
            self._versions[base] = version
        return version

    def _scan_new(self) -> int:
        """Index the complete frames appended to the last segment since the last look;
        return the segment's size as seen."""
        size = self._size(self._last)
        if size > self._scan_pos:
            self._version(self._last)
            frames, self._scan_pos = scan(memoryview(self._buffer(self._last, size)),
                                          self._scan_pos, size)
            for frame in frames:
                self._add(frame)
        return size

    def _add(self, frame: FrameHeader) -> None:
        if self.index.bases and frame.base_offset != self.index.end:
            raise CorruptLogError(
                f"{self._seg_path(self._last)}: the frame at byte {frame.position} starts at "
                f"offset {frame.base_offset}, expected {self.index.end}"
            )
        if not self.index.bases:
            self.index.start = max(frame.base_offset, self._start)
        if frame.producer:
            self.producers.record(
                Producer(f"{frame.producer:x}", frame.sequence),
                PartitionAppend(frame.base_offset, frame.count, frame.append_time),
            )
        self.index.add(frame.base_offset, frame.count, frame.append_time, frame.max_event_time)
        self._frame_segment.append(self._last)
        self._frame_position.append(frame.position)
        self._frame_bytes.append(frame.end - frame.position)

    def _catch_up(self) -> int:
        """Follow other writers: new frames, new segments, a moved start offset. Returns
        the size of the last segment as seen."""
        while True:
            size = self._scan_new()
            if self._scan_pos < size or self.index.end == self._last:
                break  # an incomplete frame (being written, or torn), or an empty segment
            following = self.index.end
            if not os.path.exists(self._seg_path(following)):
                break
            self._last = following
            self._scan_pos = len(FILE_HEADER)
        self._read_start()
        return size

    def _read_start(self) -> None:
        try:
            stamp = os.stat(self._start_file).st_mtime_ns
        except FileNotFoundError:
            return
        if stamp != self._start_stamp:
            self._start_stamp = stamp
            with open(self._start_file) as f:
                self._start = int(f.read().strip() or 0)
            self.index.start = max(self.index.start, self._start)

    # -- writing ----------------------------------------------------------------

    @contextmanager
    def _write_lock(self) -> Iterator[int]:
        """The process-wide write lock of this partition; yields the writable fd."""
        with self._lock:
            if self._lock_fd is None:
                self._lock_fd = os.open(self.path / "write.lock", os.O_RDWR | os.O_CREAT, 0o644)
            deadline = time.monotonic() + _LOCK_WAIT_S
            while True:
                try:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise WriterConflictError(
                            f"{self.path}: another writer has held the write lock for "
                            f"{_LOCK_WAIT_S:.0f} s"
                        ) from None
                    time.sleep(0.001)
            try:
                self._repair_tail(self._catch_up())
                yield self._writable()
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _repair_tail(self, size: int) -> None:
        """Cut what a writer that died mid-append left behind (we hold the lock)."""
        if not self._checked_tail and self.index.bases:
            self._checked_tail = True
            i = len(self.index.bases) - 1
            if self._frame_segment[i] == self._last:
                frame_at = self._frame_position[i]
                data = memoryview(self._buffer(self._last, size))
                frames, _ = scan(data, frame_at, size)
                if frames and not verify(data, frames[0]):
                    self._truncate(frame_at)
                    self._load()
                    return
        if self._scan_pos < size:
            self._truncate(self._scan_pos)

    def _truncate(self, position: int) -> None:
        fd = os.open(self._seg_path(self._last), os.O_WRONLY)
        try:
            os.ftruncate(fd, position)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._maps.pop(self._last, None)

    def _writable(self) -> int:
        if self._write_segment != self._last or self._write_fd is None:
            self._close_writer()
            self._write_fd = os.open(self._seg_path(self._last), os.O_WRONLY | os.O_APPEND)
            self._write_segment = self._last
        if self._scan_pos >= self._segment_bytes and self.index.end > self._last:
            if self._sync_dirs:  # fsync policy "always" or "group": seal the segment durably
                os.fsync(self._write_fd)
            self._create_segment(self.index.end)
            self._last, self._scan_pos = self.index.end, len(FILE_HEADER)
            return self._writable()
        return self._write_fd

    def _create_segment(self, base: int) -> None:
        """Create a segment file whole, or find that another process just did."""
        path = self._seg_path(base)
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}{_TMP_SUFFIX}"
        with open(tmp, "wb") as f:
            f.write(FILE_HEADER)
            f.flush()
            if self._sync_dirs:
                os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic, and fails if the segment exists already
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        if self._sync_dirs:
            fsync_dir(self.path)

    def append(self, batch: pa.RecordBatch, producer: Producer | None, now: int) -> PartitionAppend:
        """Write ``batch`` as one frame; durability is the caller's (see :meth:`sync`)."""
        hashed = None
        if producer is not None:
            hashed = Producer(f"{producer_hash(producer.id):x}", producer.sequence)
        with self._write_lock() as fd:
            seen = self.producers.duplicate(hashed)
            if seen is not None:
                return seen
            base, n = self.index.end, batch.num_rows
            at = max(now, self.index.last_append_time)
            if self._version(self._last) == STORED_SYSTEM_COLUMNS:
                batch = pa.RecordBatch.from_arrays(
                    [*batch.columns, pa.array(np.arange(base, base + n, dtype=np.int64)),
                     pa.array(np.full(n, at, dtype=np.int64)).view(TIMESTAMP)],
                    schema=self._stored,
                )
            times = np.asarray(batch.column(self.schema.event_time).view(pa.int64()))
            low, high = int(times.min()), int(times.max())
            payload = batch.serialize()
            header, pad = encode_frame(
                payload, base_offset=base, count=n, append_time=at,
                min_event_time=low, max_event_time=high,
                producer=producer_hash(producer.id) if producer else 0,
                sequence=producer.sequence if producer else -1,
            )
            position = self._scan_pos
            written = write_all(fd, [header, payload, pad])
            frame = FrameHeader(position, payload.size, base, n, at, low, high, 0, -1, 0)
            self._scan_pos = position + written
            self._add(frame)
            placement = PartitionAppend(base, n, at)
            self.producers.record(hashed, placement)
            return placement

    def sync(self) -> None:
        """Make every append so far durable (fdatasync of the segment being written)."""
        with self._lock:
            if self._write_fd is not None:
                os.fdatasync(self._write_fd)

    # -- reading ------------------------------------------------------------------

    def _load_frame(self, i: int) -> pa.RecordBatch:
        base, position = self._frame_segment[i], self._frame_position[i]
        end = position + self._frame_bytes[i]
        start, length = position + FRAME_HEADER_SIZE, end - position - FRAME_HEADER_SIZE
        mapped = self._maps.get(base)
        if (mapped is not None and mapped.size < end and base == self._last
                and end < 2 * mapped.size):
            # The segment being written grew past its map. A new map per growth would pin
            # one mapping of the whole segment per batch still referenced (a consumer
            # following a busy tail reads after almost every append), so the segment is
            # mapped again only once it has doubled, and a frame past the map in between
            # is copied: at most log2(size) maps per segment; replays stay zero-copy.
            return self._decode(base, i, pa.py_buffer(self._pread(base, start, length)))
        return self._decode(base, i, self._buffer(base, end).slice(start, length))

    def _decode(self, base: int, i: int, message: pa.Buffer) -> pa.RecordBatch:
        """The events of frame ``i`` (in segment ``base``) with the system columns."""
        if self._version(base) == STORED_SYSTEM_COLUMNS:
            return pa.ipc.read_record_batch(message, self._stored)
        events = pa.ipc.read_record_batch(message, self._events)
        return with_system_columns(events, self.index.bases[i], self.index.append_times[i],
                                   self._stored)

    def _pread(self, base: int, position: int, length: int) -> bytes:
        fd = os.open(self._seg_path(base), os.O_RDONLY)
        try:
            data = os.pread(fd, length, position)
        finally:
            os.close(fd)
        if len(data) != length:
            raise CorruptLogError(f"{self.path}: segment {base} ends inside a frame")
        return data

    def read(self, offset: int, max_events: int) -> pa.RecordBatch:
        with self._lock:
            if offset >= self.index.end or offset < self.index.start:
                self._catch_up()
            return read_frames(self.index, self._load_frame, offset, max_events,
                               lambda: empty_batch(self.schema))

    def offsets(self) -> tuple[int, int]:
        with self._lock:
            self._catch_up()
            return self.index.start, self.index.end

    def seek_event_time(self, time_us: int) -> int:
        with self._lock:
            self._catch_up()
            return seek_event_time(self.index, self._load_frame, self.schema.event_time, time_us)

    def seek_append_time(self, time_us: int) -> int:
        with self._lock:
            self._catch_up()
            return self.index.first_append_at(time_us)

    # -- retention ----------------------------------------------------------------

    def enforce_retention(self, retention: Retention, now: int) -> int:
        """Move the start offset past what retention drops; delete dead segments."""
        if retention.max_age_us is None and retention.max_bytes is None:
            return 0
        with self._write_lock():
            first = self.index.first_kept_frame()
            last = len(self.index.bases) - 1
            kept_bytes = sum(self._frame_bytes[first:])
            drop = first
            while drop < last:
                old = (retention.max_age_us is not None
                       and self.index.append_times[drop] < now - retention.max_age_us)
                big = retention.max_bytes is not None and kept_bytes > retention.max_bytes
                if not (old or big):
                    break
                kept_bytes -= self._frame_bytes[drop]
                drop += 1
            if drop == first:
                return 0
            dropped = self.index.bases[drop] - self.index.start
            self._write_start(self.index.bases[drop])
            self._delete_dead_segments()
            return dropped

    def _write_start(self, offset: int) -> None:
        atomic_write(self.path / "start", str(offset).encode(),
                     fsync=self._fsync)
        self._read_start()

    def _delete_dead_segments(self) -> None:
        """Delete segments whose every frame is before the start offset."""
        segments = sorted(set(self._frame_segment))
        dead = [b for b, following in itertools.pairwise(segments)
                if following <= self.index.start]
        for base in dead:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._seg_path(base))
            self._maps.pop(base, None)
            self._versions.pop(base, None)
        if dead:
            count = sum(1 for s in self._frame_segment if s in dead)
            self.index.drop_first(count)
            self.index.start = max(self.index.start, self._start)
            del self._frame_segment[:count], self._frame_position[:count]
            del self._frame_bytes[:count]

    # -- lifecycle ----------------------------------------------------------------

    def _close_writer(self) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None

    def close(self) -> None:
        with self._lock:
            self._close_writer()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            self._maps.clear()


def _remove_leftovers(path: Path) -> int:
    """Delete the temporary segment files of writers that died creating them; return how
    many. A file whose writer's pid is alive is kept (it may be mid-create)."""
    removed = 0
    for entry in os.scandir(path):
        match = _LEFTOVER.match(entry.name)
        if match is None or _alive(int(match.group(1))):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a pid reused since is taken as alive: keep)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
