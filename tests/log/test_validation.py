"""Validation never crashes and never drops silently, whatever it is given."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from headwater.log import Schema
from headwater.log.validation import validate

SCHEMA = Schema.of(
    {"user": "string", "n": "int32", "x": "float64", "ok": "bool", "blob": "binary",
     "ts": "timestamp"},
    key="user", event_time="ts", nullable=("x", "blob"),
)
anything = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(),
                     st.text(max_size=5), st.binary(max_size=5))
rows = st.lists(
    st.one_of(
        st.dictionaries(st.sampled_from([*SCHEMA.names, "extra"]), anything, max_size=8),
        st.fixed_dictionaries({"user": st.text(max_size=4), "n": st.integers(-5, 5),
                               "ok": st.booleans(), "ts": st.integers(0, 10**15)}),
        anything,
    ),
    max_size=20,
)


@given(rows)
def test_every_row_is_accepted_or_rejected_with_a_reason(batch: list[Any]) -> None:
    checked = validate(SCHEMA, batch, max_event_bytes=64)
    assert len(checked.index) + len(checked.rejections) == len(batch)
    assert checked.batch.num_rows == len(checked.index)
    assert checked.batch.schema == SCHEMA.arrow_schema()
    indices = sorted([*checked.index.tolist(), *(r.index for r in checked.rejections)])
    assert indices == list(range(len(batch)))
    for rejection in checked.rejections:
        assert rejection.field
        assert rejection.reason
        assert len(rejection.payload) <= 64


@given(rows)
def test_arrow_and_dict_inputs_agree_on_valid_rows(batch: list[Any]) -> None:
    good = validate(SCHEMA, batch)
    as_dicts = good.batch.to_pylist()
    again = validate(SCHEMA, pa.Table.from_batches([good.batch]))
    assert again.rejections == ()
    assert again.batch.to_pylist() == as_dicts


def test_int32_overflow_and_arrow_casts() -> None:
    checked = validate(SCHEMA, [{"user": "a", "n": 2**31, "ok": True, "ts": 0}])
    assert [(r.field, r.reason) for r in checked.rejections] == [
        ("n", "Expected `int` <= 2147483647")
    ]
    batch = pa.record_batch({"user": ["a", "b"], "n": pa.array([1, 2**40]), "ok": [True, False],
                             "ts": pa.array(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00"])})
    checked = validate(SCHEMA, batch)
    assert checked.batch.column("n").to_pylist() == [1]
    assert [(r.index, r.field) for r in checked.rejections] == [(1, "n")]  # first in field order
    naive = batch.slice(1).set_column(1, "n", pa.array([5]))
    assert [r.field for r in validate(SCHEMA, naive).rejections] == ["ts"]


FLOATS = Schema.of({"user": "string", "x": "float64", "y": "float64", "ts": "timestamp"},
                   key="user", event_time="ts", nullable=("y",))
values = st.one_of(st.floats(), st.floats(allow_nan=False, allow_infinity=False))


@given(st.lists(st.tuples(st.text(max_size=3), values, st.one_of(st.none(), values),
                          st.integers(-(2**62), 2**62)), max_size=12),
       st.booleans())
def test_arrow_batches_in_the_schema_types_are_judged_as_rows_are(
    events: list[tuple[str, float, float | None, int]], exact: bool
) -> None:
    """A batch already in the schema's Arrow types takes the bulk path; it accepts and
    rejects exactly what the full path does (given event times as integers), for the
    same reasons."""
    columns = [pa.array([e[0] for e in events], pa.string()),
               pa.array([e[1] for e in events], pa.float64()),
               pa.array([e[2] for e in events], pa.float64()),
               pa.array([e[3] for e in events], pa.int64()).view(pa.timestamp("us", tz="UTC"))]
    batch = (pa.record_batch(columns, schema=FLOATS.arrow_schema()) if exact  # as declared
             else pa.record_batch(columns, names=list(FLOATS.names)))  # all nullable
    fast = validate(FLOATS, batch)
    rows = validate(FLOATS, batch.set_column(3, "ts", columns[3].view(pa.int64())))
    assert fast.batch.schema == FLOATS.arrow_schema()
    assert fast.index.tolist() == rows.index.tolist()
    assert [(r.index, r.field, r.reason) for r in fast.rejections] == [
        (r.index, r.field, r.reason) for r in rows.rejections]
    assert fast.batch.to_pylist() == rows.batch.to_pylist()
