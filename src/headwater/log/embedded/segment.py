"""The segment file format: a header, then frames, each one appended batch.

A segment is named by the offset of its first event (``00000000000000001234.seg``) and
holds frames back to back, every frame 8-byte aligned::

    file header  16 bytes   b"HWSEG\\x00" + version byte + b"\\x00" + 8 reserved bytes
    frame        72-byte header (layout below) + payload padded to a multiple of 8

The payload is one Arrow IPC encapsulated record-batch message (``RecordBatch.serialize``)
of the events, read zero-copy from the memory-mapped file. In a version 2 segment it
holds the events as appended: the system columns ``_offset`` and ``_append_time`` are
the frame's base offset plus the row number and the frame's append time, both in the
header, and are rebuilt when the frame is read (storing them took a quarter more bytes
to write). A version 1 segment (written before) stores them as two more columns; both
versions are read, and a partition goes on writing its last segment in that segment's
version. The CRC32 covers the header fields after it and the payload.

A frame is *complete* when its header and whole payload are within the file. A writer
killed mid-append leaves at most one incomplete frame at the end: readers stop before
it, and the next writer truncates it (the torn-tail repair).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Final

import pyarrow as pa
from crc32c import crc32c

from headwater.errors import CorruptLogError

__all__ = [
    "FILE_HEADER",
    "FRAME_HEADER_SIZE",
    "STORED_SYSTEM_COLUMNS",
    "FrameHeader",
    "encode_frame",
    "producer_hash",
    "scan",
    "segment_name",
    "segment_version",
    "verify",
    "write_all",
]

#: The header of a segment written now (version 2: no stored system columns).
FILE_HEADER: Final = b"HWSEG\x00\x02\x00" + bytes(8)
#: Version 1 segments store ``_offset`` and ``_append_time`` in every frame's payload.
STORED_SYSTEM_COLUMNS: Final = 1
_VERSIONS: Final = {b"HWSEG\x00\x01\x00": 1, FILE_HEADER[:8]: 2}
_FRAME_MAGIC: Final = b"HWFR"
# magic, crc, payload length, base offset, count, append time, min/max event time,
# producer (hash), sequence
_HEADER: Final = struct.Struct("<4sIqqqqqqQq")
FRAME_HEADER_SIZE: Final = _HEADER.size
_CRC_FROM: Final = 8  # the CRC covers the header from this byte on, then the payload
_NO_PRODUCER: Final = 0

assert FRAME_HEADER_SIZE % 8 == 0
assert len(FILE_HEADER) % 8 == 0


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """Where a frame is and what it holds."""

    position: int
    payload_length: int
    base_offset: int
    count: int
    append_time: int
    min_event_time: int
    max_event_time: int
    producer: int
    sequence: int
    crc: int

    @property
    def payload_position(self) -> int:
        return self.position + FRAME_HEADER_SIZE

    @property
    def end(self) -> int:
        return self.payload_position + _padded(self.payload_length)


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}.seg"


def segment_version(data: memoryview | bytes, path: str) -> int:
    """The format version of a segment from its first bytes; a file that is no segment
    or one of a newer version raises :class:`~headwater.errors.CorruptLogError`."""
    version = _VERSIONS.get(bytes(data[:8]))
    if version is None:
        raise CorruptLogError(f"{path}: not a segment of a version this release reads "
                              f"(header {bytes(data[:8])!r})")
    return version


def encode_frame(
    payload: pa.Buffer,
    *,
    base_offset: int,
    count: int,
    append_time: int,
    min_event_time: int,
    max_event_time: int,
    producer: int = _NO_PRODUCER,
    sequence: int = -1,
) -> tuple[bytes, bytes]:
    """The frame header and the padding that follow/precede ``payload``."""
    fields = _HEADER.pack(
        _FRAME_MAGIC, 0, payload.size, base_offset, count, append_time,
        min_event_time, max_event_time, producer, sequence,
    )
    crc = crc32c(payload, value=crc32c(fields[_CRC_FROM:]))
    header = fields[:4] + struct.pack("<I", crc) + fields[_CRC_FROM:]
    return header, bytes(_padded(payload.size) - payload.size)


def scan(data: memoryview | bytes, start: int, size: int) -> tuple[list[FrameHeader], int]:
    """Complete frames from ``start`` up to ``size`` bytes; and where they stop.

    The stop position is ``size`` when the data ends on a frame boundary; before it,
    there is an incomplete (torn or still being written) frame. A header whose magic is
    wrong raises :class:`~headwater.errors.CorruptLogError` unless it is the last thing
    in the file (a torn header).
    """
    frames: list[FrameHeader] = []
    pos = start
    while pos + FRAME_HEADER_SIZE <= size:
        magic, crc, length, base, count, at, min_et, max_et, producer, seq = _HEADER.unpack_from(
            data, pos
        )
        if magic != _FRAME_MAGIC or length < 0 or count <= 0:
            raise CorruptLogError(f"no frame header at byte {pos}")
        frame = FrameHeader(pos, length, base, count, at, min_et, max_et, producer, seq, crc)
        if frame.end > size:
            break
        frames.append(frame)
        pos = frame.end
    return frames, pos


def verify(data: memoryview | bytes, frame: FrameHeader) -> bool:
    """Whether the frame's CRC matches its bytes."""
    start = frame.position + _CRC_FROM
    header_rest = bytes(data[start: frame.payload_position])
    payload = data[frame.payload_position: frame.payload_position + frame.payload_length]
    return crc32c(payload, value=crc32c(header_rest)) == frame.crc


def producer_hash(producer_id: str) -> int:
    """A non-zero 64-bit digest of a producer id, stored in frame headers."""
    import hashlib

    digest = int.from_bytes(hashlib.blake2b(producer_id.encode(), digest_size=8).digest(), "little")
    return digest or 1


def write_all(fd: int, parts: list[bytes | pa.Buffer]) -> int:
    """Write every part, in one system call when the kernel takes it all; return bytes."""
    views = [v for v in (memoryview(p).cast("B") for p in parts) if v.nbytes]
    written = 0
    while views:
        n = os.writev(fd, views)
        written += n
        while views and n >= views[0].nbytes:
            n -= views[0].nbytes
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]
    return written


def _padded(n: int) -> int:
    return (n + 7) & ~7

