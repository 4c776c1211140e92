"""The embedded online store's snapshot: its whole state as of a WAL generation.

A snapshot file is the snapshot header and two records (see
:mod:`headwater.store.online.wal`): the *generation* ``g`` as 8 bytes, then the state
(:meth:`OnlineState.encode`). It holds every batch of the WALs numbered below ``g``,
so opening a store is: load the snapshot, then replay WAL ``g``, ``g + 1``, … in
order. It is written to a temporary file, fsync'd and renamed over the old one, so a
crash leaves the old snapshot or the new one, never a mix.

>>> import tempfile, os
>>> from headwater.store.online.batch import write_batch
>>> state = OnlineState()
>>> state.apply(write_batch("user", [("u1", {"a": b"1"})]))
>>> path = os.path.join(tempfile.mkdtemp(), "snapshot")
>>> write_snapshot(path, 3, state, fsync="never")
>>> generation, restored = read_snapshot(path)
>>> generation, restored.read("user", "u1")
(3, {'a': b'1'})
"""

from __future__ import annotations

import struct
from typing import Final

import msgspec

from headwater.errors import CorruptLogError
from headwater.fsync import FsyncPolicy, atomic_write
from headwater.store.online.state import OnlineState
from headwater.store.online.wal import SNAPSHOT_HEADER, encode_record, scan

__all__ = ["read_generation", "read_snapshot", "write_snapshot"]

_GENERATION: Final = struct.Struct("<Q")
_FIRST_RECORD: Final = len(encode_record(bytes(_GENERATION.size)))


def write_snapshot(path: str, generation: int, state: OnlineState, *,
                   fsync: FsyncPolicy) -> None:
    """Replace the snapshot at ``path`` atomically (durably under ``fsync``)."""
    content = b"".join([
        SNAPSHOT_HEADER,
        encode_record(_GENERATION.pack(generation)),
        encode_record(state.encode()),
    ])
    atomic_write(path, content, fsync=fsync)


def read_generation(path: str) -> int:
    """Only the generation of the snapshot at ``path`` (0 if there is none): cheap."""
    try:
        with open(path, "rb") as f:
            data = f.read(len(SNAPSHOT_HEADER) + _FIRST_RECORD)
    except FileNotFoundError:
        return 0
    records, _ = scan(data, len(SNAPSHOT_HEADER))
    if data[: len(SNAPSHOT_HEADER)] != SNAPSHOT_HEADER or not records:
        raise CorruptLogError(f"{path}: unreadable snapshot header")
    return int(_GENERATION.unpack(records[0])[0])


def read_snapshot(path: str) -> tuple[int, OnlineState]:
    """The generation and state stored at ``path`` (generation 0 and nothing if the
    file does not exist)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0, OnlineState()
    if data[: len(SNAPSHOT_HEADER)] != SNAPSHOT_HEADER:
        raise CorruptLogError(f"{path}: not an online store snapshot")
    try:
        records, stop = scan(data, len(SNAPSHOT_HEADER))
        if len(records) != 2 or stop != len(data):
            raise CorruptLogError("incomplete")
        (generation,) = _GENERATION.unpack(records[0])
        return generation, OnlineState.decode(records[1])
    except (CorruptLogError, struct.error, msgspec.DecodeError) as exc:
        raise CorruptLogError(f"{path}: unreadable snapshot: {exc}") from None
