"""Feature hashing: a categorical value becomes one weight index.

The index of value ``v`` of column ``name`` is the CRC-32 (``zlib.crc32``, the same on
every platform and in every process, unlike Python's salted ``hash``) of the UTF-8
bytes of ``name=v``, masked to ``bits`` bits. Hashing the name with the value keeps
``color=red`` and ``shape=red`` apart. A batch hashes each distinct value once, so a
column of a million rows and a hundred categories costs a hundred hashes.

>>> import numpy as np
>>> hash_value("color", "red", 18)
234888
>>> hash_column("color", np.array(["red", "blue", "red"]), 18).tolist()
[234888, 251357, 234888]
"""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt

__all__ = ["hash_column", "hash_value"]


def hash_value(name: str, value: object, bits: int) -> int:
    """The bucket of one value, in ``[0, 2**bits)``."""
    return zlib.crc32(f"{name}={value}".encode()) & ((1 << bits) - 1)


def hash_column(name: str, values: npt.NDArray[np.generic], bits: int) -> npt.NDArray[np.int64]:
    """The bucket of every value of a string (or object) column."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    distinct, inverse = np.unique(values, return_inverse=True)
    mask = (1 << bits) - 1
    buckets = np.fromiter(
        (zlib.crc32(f"{name}={v}".encode()) & mask for v in distinct.tolist()),
        dtype=np.int64, count=len(distinct),
    )
    out: npt.NDArray[np.int64] = buckets[inverse.reshape(-1)]
    return out
