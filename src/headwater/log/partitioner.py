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

    Keys all of one length (ids, codes, integers) lie back to back, so each 4-byte block
    of every key is a strided view. Otherwise each block is one gather, whatever the
    keys' lengths: the four word views of the bytes (starting at byte 0, 1, 2, 3) are
    laid end to end, so the little-endian word at byte ``p`` is
    ``words[(p % 4) * per_view + p // 4]``.
    """
    n = len(lengths)
    blocks = lengths >> 2
    max_blocks = int(blocks.max(initial=0))
    tail = lengths & 3
    width = int(lengths[0]) if n else 0
    if n and bool((lengths == width).all()):
        # Keys of one length (ids, fixed-width codes, integers) lie back to back, so the
        # words of each block are a strided view: no gathers, no per-key choices.
        first = int(starts[0])
        packed = np.zeros(n * width + 4, dtype=np.uint8)
        packed[: n * width] = data[first: first + n * width]

        def strided(at: int) -> npt.NDArray[np.uint32]:
            """The little-endian word at byte ``at`` of every key (a strided view)."""
            return np.ndarray((n,), dtype="<u4", buffer=packed, offset=at, strides=(width,))

        def block(b: int) -> npt.NDArray[np.uint32]:
            return strided(4 * b)

        def rest_words() -> npt.NDArray[np.uint32]:
            return strided(width & ~3)

        uniform = True
    else:
        per_view = (len(data) + 4 * max_blocks + 8) // 4
        padded = np.zeros(4 * per_view + 4, dtype=np.uint8)
        padded[: len(data)] = data
        # The four word views (starting at byte 0, 1, 2, 3) copied end to end into one
        # aligned array: the little-endian word at byte p is words[(p % 4) * per_view + p // 4].
        words = np.empty((4, per_view), dtype="<u4")
        for r in range(4):
            words[r] = np.frombuffer(padded, dtype="<u4", count=per_view, offset=r)
        flat = words.ravel()

        def at(p: npt.NDArray[np.int64]) -> npt.NDArray[np.uint32]:
            return flat[(p & 3) * per_view + (p >> 2)]

        def block(b: int) -> npt.NDArray[np.uint32]:
            return at(starts + 4 * b)

        def rest_words() -> npt.NDArray[np.uint32]:
            return at(starts + (lengths & ~3))

        uniform = False

    h = _SEED ^ lengths.astype(np.uint32)
    for b in range(max_blocks):
        k = block(b) * _M
        k ^= k >> np.uint32(24)
        k *= _M
        mixed = (h * _M) ^ k
        h = mixed if uniform else np.where(blocks > b, mixed, h)
    if tail.any():
        rest = rest_words()
        shift = tail.astype(np.uint32) << np.uint32(3)
        keep = (np.uint32(1) << shift) - np.uint32(1)  # 0, 0xFF, 0xFFFF or 0xFFFFFF
        mixed = (h ^ (rest & keep)) * _M
        h = mixed if uniform else np.where(tail > 0, mixed, h)
    h ^= h >> np.uint32(13)
    h *= _M
    h ^= h >> np.uint32(15)
    return h.astype(np.uint32)
