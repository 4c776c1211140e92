"""Topic schemas: the typed shape of a topic's events.

A schema lists the fields, names the key column (what partitioning hashes) and the
event-time column. It is a frozen msgspec struct, so it is stored as JSON with the
topic and compared by value.

>>> schema = Schema.of({"user": "string", "amount": "float64", "ts": "timestamp"},
...                    key="user", event_time="ts")
>>> schema.arrow_schema().names
['user', 'amount', 'ts']
>>> Schema.of({"ts": "datetime"}, event_time="ts")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
headwater.errors.SchemaError: fields.ts.type: unknown type 'datetime'; use one of bool, ...
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Final, Literal

import msgspec
import pyarrow as pa

from headwater.errors import SchemaError

__all__ = [
    "APPEND_TIME",
    "OFFSET",
    "SYSTEM_COLUMNS",
    "Field",
    "FieldType",
    "Schema",
]

FieldType = Literal["bool", "int32", "int64", "float32", "float64", "string", "binary", "timestamp"]

#: Column added by the log to every stored event: its offset in the partition.
OFFSET: Final = "_offset"
#: Column added by the log to every stored event: when the log appended it (µs, UTC).
APPEND_TIME: Final = "_append_time"
SYSTEM_COLUMNS: Final = (OFFSET, APPEND_TIME)

TIMESTAMP: Final = pa.timestamp("us", tz="UTC")
_ARROW_TYPES: Final[dict[str, pa.DataType]] = {
    "bool": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "binary": pa.binary(),
    "timestamp": TIMESTAMP,
}
_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,127}$")


class Field(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One column of a topic.

    A float field refuses NaN and ±infinity unless ``allow_non_finite`` is set: a
    non-finite value is almost always a parsing accident (``1e999``, ``"nan"``), and one
    would poison every aggregation over the field. Where allowed, aggregations skip them
    (see ``docs/design/features.md``).
    """

    name: str
    type: FieldType
    nullable: bool = False
    allow_non_finite: bool = False

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.type]


class Schema(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The fields of a topic, its key column (optional) and its event-time column."""

    fields: tuple[Field, ...]
    event_time: str
    key: str | None = None

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for field in self.fields:
            if not _NAME.match(field.name):
                raise SchemaError(
                    f"fields.{field.name}",
                    "a field name starts with a letter and holds letters, digits, '_', '.', '-'",
                )
            if field.name in seen:
                raise SchemaError(f"fields.{field.name}", "duplicate field name")
            if field.type not in _ARROW_TYPES:
                raise SchemaError(f"fields.{field.name}.type", f"unknown type {field.type!r}")
            if field.allow_non_finite and field.type not in ("float32", "float64"):
                raise SchemaError(f"fields.{field.name}.allow_non_finite",
                                  f"only a float field holds NaN or infinity, not {field.type}")
            seen.add(field.name)
        by_name = {f.name: f for f in self.fields}
        et = by_name.get(self.event_time)
        if et is None:
            raise SchemaError("event_time", f"no field named {self.event_time!r}")
        if et.type != "timestamp" or et.nullable:
            raise SchemaError(f"fields.{et.name}", "the event-time field is a non-null timestamp")
        if self.key is not None:
            key = by_name.get(self.key)
            if key is None:
                raise SchemaError("key", f"no field named {self.key!r}")
            if key.type not in ("string", "int64", "int32") or key.nullable:
                raise SchemaError(f"fields.{key.name}", "the key is a non-null string or integer")

    @classmethod
    def of(
        cls,
        fields: Mapping[str, str],
        *,
        event_time: str,
        key: str | None = None,
        nullable: tuple[str, ...] = (),
        allow_non_finite: tuple[str, ...] = (),
    ) -> Schema:
        """Build a schema from ``{name: type}``; names in ``nullable`` may hold nulls,
        float fields in ``allow_non_finite`` may hold NaN and ±infinity."""
        built = []
        for name, type_ in fields.items():
            if type_ not in _ARROW_TYPES:
                raise SchemaError(
                    f"fields.{name}.type",
                    f"unknown type {type_!r}; use one of {', '.join(_ARROW_TYPES)}",
                )
            built.append(Field(name, type_, name in nullable,  # type: ignore[arg-type]
                               name in allow_non_finite))
        unknown = sorted(set(allow_non_finite) - set(fields))
        if unknown:
            raise SchemaError("allow_non_finite", f"no field named {unknown[0]!r}")
        return cls(tuple(built), event_time=event_time, key=key)

    @classmethod
    def from_arrow(
        cls, schema: pa.Schema, *, event_time: str, key: str | None = None,
        allow_non_finite: tuple[str, ...] = (),
    ) -> Schema:
        """Infer a schema from an Arrow schema (for example one read from a file)."""
        fields: dict[str, str] = {}
        nullable = []
        for af in schema:
            if af.name in SYSTEM_COLUMNS:
                continue
            fields[af.name] = "timestamp" if af.name == event_time else _field_type(af)
            if af.nullable and af.name not in (event_time, key):
                nullable.append(af.name)
        return cls.of(fields, event_time=event_time, key=key, nullable=tuple(nullable),
                      allow_non_finite=allow_non_finite)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise SchemaError(name, "no such field")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema of events as appended (without the system columns)."""
        return _arrow_schema(self)

    def stored_schema(self) -> pa.Schema:
        """The Arrow schema of events as read back: the fields plus the system columns."""
        return _stored_schema(self)

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> Schema:
        try:
            return msgspec.json.decode(data, type=cls)
        except msgspec.ValidationError as exc:
            raise SchemaError("schema", str(exc)) from exc


@functools.lru_cache(maxsize=1024)
def _arrow_schema(schema: Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, f.arrow_type, f.nullable) for f in schema.fields])


@functools.lru_cache(maxsize=1024)
def _stored_schema(schema: Schema) -> pa.Schema:
    return _arrow_schema(schema).append(pa.field(OFFSET, pa.int64(), False)).append(
        pa.field(APPEND_TIME, TIMESTAMP, False)
    )


def _field_type(field: pa.Field) -> str:
    t = field.type
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_int32(t) or pa.types.is_int16(t) or pa.types.is_int8(t):
        return "int32"
    if pa.types.is_integer(t):
        return "int64"
    if pa.types.is_float32(t) or pa.types.is_float16(t):
        return "float32"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float64"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "timestamp"
    raise SchemaError(f"fields.{field.name}.type", f"cannot store Arrow type {t}")
