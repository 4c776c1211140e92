"""Key-hash partitioning, the same for every backend.

The hash is Kafka's ``murmur2`` (the Java client's default partitioner), so a key lands in
the same partition here as it would from a Java or librdkafka producer using murmur2:
``partition = (murmur2(key_bytes) & 0x7fffffff) % partitions``. String keys hash their
UTF-8 bytes; integer keys hash their 8-byte big-endian two's complement (Kafka's
``LongSerializer``). The hash runs vectorised over a whole Arrow column.

>>> import pyarrow as pa
>>> partition_of(pa.array(["", "a", "ab", "abc", "123456789"]), 1000).tolist()
[681, 524, 434, 107, 566]
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["murmur2", "partition_of"]

_SEED: Final = np.uint32(0x9747B28C)
_M: Final = np.uint32(0x5BD1E995)


def murmur2(keys: pa.Array) -> npt.NDArray[np.uint32]:
    """Kafka's murmur2 of each key (string, binary or integer column)."""
    t = keys.type
    if pa.types.is_integer(t):
        values = np.asarray(pc.cast(keys, pa.int64()), dtype=np.int64)
        data = values.astype(">i8").view(np.uint8)
        starts = np.arange(0, len(data), 8, dtype=np.int64)
        return _murmur2(data, starts, np.full(len(values), 8, dtype=np.int64))
    if pa.types.is_dictionary(t):
        keys = keys.dictionary_decode()
    if pa.types.is_large_string(keys.type) or pa.types.is_large_binary(keys.type):
        keys = pc.cast(keys, pa.binary())
    if not (pa.types.is_string(keys.type) or pa.types.is_binary(keys.type)):
        raise TypeError(f"cannot hash keys of type {keys.type}")
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    _, offsets_buf, data_buf = keys.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[keys.offset: keys.offset + n + 1]
    offsets = offsets.astype(np.int64)
    if data_buf is None:
        data = np.zeros(0, dtype=np.uint8)
    else:
        data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]: offsets[-1]]
    return _murmur2(data, offsets[:-1] - offsets[0], np.diff(offsets))


def partition_of(keys: pa.Array, partitions: int) -> npt.NDArray[np.int32]:
    """The partition of each key among ``partitions``."""
    if partitions == 1:
        return np.zeros(len(keys), dtype=np.int32)
    h = murmur2(keys) & np.uint32(0x7FFFFFFF)
    return (h % np.uint32(partitions)).astype(np.int32)


def _murmur2(data: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64],
             lengths: npt.NDArray[np.int64]) -> npt.NDArray[np.uint32]:
    """murmur2 of each key ``data[starts[i] : starts[i] + lengths[i]]``.

    Each 4-byte block of every key is one gather, whatever the keys' lengths: the four
    word views of the bytes (starting at byte 0, 1, 2, 3) are laid end to end, so the
    little-endian word at byte ``p`` is ``words[base[p % 4] + p // 4]``.
    """
    blocks = lengths // 4
    max_blocks = int(blocks.max(initial=0))
    per_view = (len(data) + 4 * max_blocks + 8) // 4
    padded = np.zeros(4 * per_view + 4, dtype=np.uint8)
    padded[: len(data)] = data
    raw = padded.tobytes()
    words = np.frombuffer(b"".join(raw[r: r + 4 * per_view] for r in range(4)), dtype="<u4")

    def at(p: npt.NDArray[np.int64]) -> npt.NDArray[np.uint32]:
        return words[(p & 3) * per_view + (p >> 2)]

    h = _SEED ^ lengths.astype(np.uint32)
    for b in range(max_blocks):
        k = at(starts + 4 * b) * _M
        k ^= k >> np.uint32(24)
        k *= _M
        mixed = (h * _M) ^ k
        h = np.where(blocks > b, mixed, h)
    tail = lengths % 4
    if tail.any():
        rest = at(starts + (lengths & ~3))
        keep = np.where(tail == 3, np.uint32(0xFFFFFF),
                        np.where(tail == 2, np.uint32(0xFFFF), np.uint32(0xFF)))
        mixed = (h ^ (rest & keep)) * _M
        h = np.where(tail >= 1, mixed, h)
    h ^= h >> np.uint32(13)
    h *= _M
    h ^= h >> np.uint32(15)
    return h.astype(np.uint32)
