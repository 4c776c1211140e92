"""The embedded online store's files: records, write-ahead logs and their tails.

(The label joiner's journals, :mod:`headwater.labels.journal`, use the same records and
writers under their own file headers.)

Both the write-ahead log (WAL) and the snapshot are a file header followed by
records::

    file header   8 bytes    b"HWOLWAL\\x01" (a WAL) or b"HWOLSNP\\x01" (a snapshot)
    record        16 bytes   magic b"HWOB", CRC-32C, payload length (u64, little end)
                  payload    one msgpack value (a batch, or the whole state)

The CRC covers the length field and the payload. A WAL holds one record per
committed batch, so a batch is on disk whole or not at all: a writer killed
mid-append leaves at most one incomplete record at the end, which readers stop
before and the next writer cuts off (the torn-tail repair). A power cut may also
leave a last record that fails its CRC, or a zero-filled tail; both count as torn.
A bad record followed by a good one is corruption, and raises
:class:`~headwater.errors.CorruptLogError` rather than dropping acknowledged data.

>>> data = FILE_HEADER + encode_record(b"one") + encode_record(b"two")
>>> records, stop = scan(data + encode_record(b"three")[:20], len(FILE_HEADER))
>>> [bytes(r) for r in records], stop == len(data)
([b'one', b'two'], True)
"""

from __future__ import annotations

import os
import struct
import threading
from typing import Final

from crc32c import crc32c

from headwater.errors import CorruptLogError

__all__ = [
    "FILE_HEADER",
    "SNAPSHOT_HEADER",
    "WalFollower",
    "WalWriter",
    "encode_record",
    "scan",
]

FILE_HEADER: Final = b"HWOLWAL\x01"
SNAPSHOT_HEADER: Final = b"HWOLSNP\x01"
_MAGIC: Final = b"HWOB"
_HEADER: Final = struct.Struct("<4sIQ")
_LENGTH: Final = struct.Struct("<Q")


def encode_record(payload: bytes) -> bytes:
    """One record: header and payload."""
    length = _LENGTH.pack(len(payload))
    return _MAGIC + struct.pack("<I", crc32c(payload, value=crc32c(length))) + length + payload


def scan(data: bytes | memoryview, start: int) -> tuple[list[memoryview], int]:
    """The payloads of the valid records from ``start``, and where they stop.

    The stop position is ``len(data)`` unless the data ends in a torn (or still being
    written) record.
    """
    view = memoryview(data)
    size = len(view)
    payloads: list[memoryview] = []
    pos = start
    while pos + _HEADER.size <= size:
        magic, crc, length = _HEADER.unpack_from(view, pos)
        body = pos + _HEADER.size
        end = body + length
        if magic != _MAGIC:
            if bytes(view[pos:]).strip(b"\x00"):
                raise CorruptLogError(f"no record header at byte {pos}")
            break  # a zero-filled tail
        if end > size:
            break
        payload = view[body:end]
        if crc32c(payload, value=crc32c(view[pos + 8: body])) != crc:
            if bytes(view[end:]).strip(b"\x00"):
                raise CorruptLogError(f"the record at byte {pos} fails its CRC")
            break  # the last record, torn by a power cut
        payloads.append(payload)
        pos = end
    return payloads, pos


class WalWriter:
    """Appends records to one WAL file (the caller holds the store's write lock)."""

    def __init__(self, path: str, end: int) -> None:
        self.path = path
        self.size = end
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._io = threading.Lock()  # a group-commit sync may race a close

    @classmethod
    def open(cls, path: str, *, header: bytes = FILE_HEADER
             ) -> tuple[WalWriter, list[memoryview]]:
        """Open a WAL for appending, cutting off a torn tail; and its records. ``header``
        is the file header it must start with (another file kind may use the format)."""
        follower = WalFollower(path, header=header)
        try:
            records = follower.read_new()
            if follower.position < follower.file_size:
                _truncate(path, follower.position)
        finally:
            follower.close()
        return cls(path, follower.position), records

    def append(self, record: bytes) -> None:
        """Write one record; on failure, cut the file back so no torn record stays."""
        if self._fd is None:
            raise CorruptLogError(f"{self.path}: the WAL is closed")
        view = memoryview(record)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            os.ftruncate(self._fd, self.size)
            raise
        self.size += len(record)

    def sync(self) -> None:
        """Make every append durable (a closed WAL was synced when it was closed)."""
        with self._io:
            if self._fd is not None:
                os.fdatasync(self._fd)

    def close(self, *, sync: bool) -> None:
        with self._io:
            if self._fd is not None:
                if sync:
                    os.fdatasync(self._fd)
                os.close(self._fd)
                self._fd = None


class WalFollower:
    """Reads the records appended to a WAL since the last look (never writes)."""

    def __init__(self, path: str, *, header: bytes = FILE_HEADER) -> None:
        self.path = path
        self.header = header
        self.position = 0
        self.file_size = 0
        self._fd: int | None = os.open(path, os.O_RDONLY)

    def read_new(self) -> list[memoryview]:
        """The complete records appended since the last call."""
        if self._fd is None:
            raise CorruptLogError(f"{self.path}: the WAL is closed")
        self.file_size = os.fstat(self._fd).st_size
        if self.file_size <= self.position:
            return []
        data = os.pread(self._fd, self.file_size - self.position, self.position)
        start = 0
        if self.position == 0:
            if data[: len(self.header)] != self.header:
                raise CorruptLogError(f"{self.path}: not a file of the expected kind "
                                      f"(header {self.header!r})")
            start = len(self.header)
        try:
            records, stop = scan(data, start)
        except CorruptLogError as exc:
            raise CorruptLogError(f"{self.path}: {exc} (from byte {self.position})") from None
        self.position += stop
        return records

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None




def _truncate(path: str, position: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, position)
        os.fsync(fd)
    finally:
        os.close(fd)
