from __future__ import annotations

import pyarrow as pa
import pytest

from headwater.errors import SchemaError
from headwater.log import APPEND_TIME, OFFSET, Field, Schema


def test_schema_round_trips_through_json() -> None:
    schema = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"},
                       key="user", event_time="ts", nullable=("x",))
    assert Schema.from_json(schema.to_json()) == schema
    assert schema.field("x").nullable
    assert schema.stored_schema().names == ["user", "x", "ts", OFFSET, APPEND_TIME]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"fields": {"ts": "timestamp"}, "event_time": "when"}, "event_time"),
        ({"fields": {"ts": "int64"}, "event_time": "ts"}, "fields.ts"),
        ({"fields": {"ts": "timestamp", "k": "float64"}, "event_time": "ts", "key": "k"},
         "fields.k"),
        ({"fields": {"ts": "timestamp"}, "event_time": "ts", "key": "nope"}, "key"),
        ({"fields": {"ts": "timestamp", "_x": "int64"}, "event_time": "ts"}, "fields._x"),
        ({"fields": {"ts": "timestamp", "x": "decimal"}, "event_time": "ts"}, "fields.x.type"),
    ],
)
def test_bad_schemas_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(SchemaError) as info:
        Schema.of(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_duplicate_fields() -> None:
    with pytest.raises(SchemaError, match="duplicate"):
        Schema((Field("ts", "timestamp"), Field("ts", "timestamp")), event_time="ts")


def test_schema_from_arrow() -> None:
    arrow = pa.schema([("user", pa.large_string()), ("n", pa.int16()), ("x", pa.float32()),
                       ("when", pa.timestamp("ms", tz="UTC")), ("ok", pa.bool_())])
    schema = Schema.from_arrow(arrow, event_time="when", key="user")
    assert [f.type for f in schema.fields] == ["string", "int32", "float32", "timestamp", "bool"]
    assert schema.key == "user"


def test_bad_json() -> None:
    with pytest.raises(SchemaError, match="schema"):
        Schema.from_json(b'{"fields": 3}')


def test_only_float_fields_allow_non_finite_values() -> None:
    with pytest.raises(SchemaError, match="only a float field"):
        Schema.of({"n": "int64", "ts": "timestamp"}, event_time="ts", allow_non_finite=("n",))
    with pytest.raises(SchemaError, match="no field named 'y'"):
        Schema.of({"x": "float64", "ts": "timestamp"}, event_time="ts",
                  allow_non_finite=("y",))
    schema = Schema.of({"x": "float32", "ts": "timestamp"}, event_time="ts",
                       allow_non_finite=("x",))
    assert Schema.from_json(schema.to_json()).field("x").allow_non_finite
