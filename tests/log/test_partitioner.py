from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from headwater.log import partition_of
from headwater.log.partitioner import murmur2


def murmur2_reference(data: bytes) -> int:
    """Kafka's Java murmur2, transcribed byte by byte."""
    m, seed = 0x5BD1E995, 0x9747B28C
    length = len(data)
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i: 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length % 4
    base = length & ~3
    if rest == 3:
        h ^= data[base + 2] << 16
    if rest >= 2:
        h ^= data[base + 1] << 8
    if rest >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def test_kafka_reference_partitions() -> None:
    # The Java client's default partitioner puts these keys in these of 1000 partitions.
    keys = pa.array(["", "a", "ab", "abc", "123456789", "\x00 "])
    assert partition_of(keys, 1000).tolist() == [681, 524, 434, 107, 566, 742]


@given(st.lists(st.binary(max_size=70), min_size=1, max_size=40))
def test_vectorised_murmur2_equals_the_reference(keys: list[bytes]) -> None:
    got = murmur2(pa.array(keys, pa.binary())).tolist()
    assert got == [murmur2_reference(k) for k in keys]


@given(st.lists(st.text(max_size=30), min_size=2, max_size=30), st.integers(0, 5))
def test_slices_and_strings_hash_like_their_utf8_bytes(keys: list[str], skip: int) -> None:
    array = pa.array(keys).slice(min(skip, len(keys) - 1))
    expected = [murmur2_reference(k.encode()) for k in array.to_pylist()]
    assert murmur2(array).tolist() == expected


@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=30))
def test_integer_keys_hash_their_big_endian_bytes(keys: list[int]) -> None:
    got = murmur2(pa.array(keys, pa.int64())).tolist()
    assert got == [murmur2_reference(k.to_bytes(8, "big", signed=True)) for k in keys]


def test_partitions_are_in_range_and_stable() -> None:
    keys = pa.array([f"user-{i}" for i in range(10_000)])
    parts = partition_of(keys, 7)
    assert parts.min() >= 0
    assert parts.max() < 7
    assert np.array_equal(parts, partition_of(keys, 7))
    assert np.bincount(parts).min() > 1200  # roughly uniform
    assert partition_of(keys, 1).tolist() == [0] * 10_000
