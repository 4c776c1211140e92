"""The record format: any cut of a WAL reads back as a prefix of whole records."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import CorruptLogError
from headwater.store.online.wal import FILE_HEADER, encode_record, scan

payloads = st.lists(st.binary(max_size=300), max_size=8)


@given(payloads, st.data())
def test_a_cut_anywhere_reads_as_the_whole_records_before_it(
    records: list[bytes], data: st.DataObject
) -> None:
    encoded = [encode_record(r) for r in records]
    whole = FILE_HEADER + b"".join(encoded)
    cut = data.draw(st.integers(len(FILE_HEADER), len(whole)))
    found, stop = scan(whole[:cut], len(FILE_HEADER))
    complete = 0
    end = len(FILE_HEADER)
    for record in encoded:
        if end + len(record) > cut:
            break
        end += len(record)
        complete += 1
    assert [bytes(f) for f in found] == records[:complete]
    assert stop == end


@given(payloads.filter(lambda r: len(r) >= 2), st.data())
def test_a_flipped_bit_is_never_read_back(records: list[bytes], data: st.DataObject) -> None:
    whole = bytearray(FILE_HEADER + b"".join(encode_record(r) for r in records))
    at = data.draw(st.integers(len(FILE_HEADER), len(whole) - 1))
    whole[at] ^= 1 << data.draw(st.integers(0, 7))
    try:
        found, _ = scan(bytes(whole), len(FILE_HEADER))
    except CorruptLogError:
        return
    assert [bytes(f) for f in found] == records[: len(found)]  # a prefix, nothing altered


def test_a_zero_filled_tail_is_a_tail_and_garbage_is_corruption() -> None:
    good = FILE_HEADER + encode_record(b"one")
    assert scan(good + bytes(100), len(FILE_HEADER))[1] == len(good)
    with pytest.raises(CorruptLogError, match="no record header"):
        scan(good + b"garbage!" * 4 + encode_record(b"two"), len(FILE_HEADER))
