"""How events are laid out in Kafka messages: one message per event.

- **key**: the event's key as Kafka's Java clients serialise it (UTF-8 for strings,
  8-byte big-endian for integers, as :mod:`headwater.log.partitioner` hashes them);
  no key when the schema has none.
- **value**: a MessagePack array ``[append_time_us, field_1, ..., field_n]`` with the
  fields in schema order: timestamps as int64 microseconds, binary as ``bin``, null as
  ``nil``. The append time leads so that it keeps its microseconds (the Kafka
  timestamp holds milliseconds) without a per-message header to parse.
- **timestamp**: the append time in milliseconds (``CreateTime``), so Kafka's own time
  index answers "offsets for times".
- **headers**: only on the last message of each append, a *trailer*: ``hw.count`` (the
  events in the append) and, for an idempotent append, ``hw.producer`` and
  ``hw.sequence``. Trailers mark where appends end, for retention and for rebuilding
  the producer table after a restart.

Encoding runs column by column into per-event byte strings; decoding joins the values
of a fetch into one MessagePack array and decodes it in one call with a decoder typed
by the schema, so a foreign or damaged message fails with its offset named.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import CorruptLogError
from headwater.log.backend import Producer
from headwater.log.records import empty_batch
from headwater.log.schema import TIMESTAMP, Field, Schema

__all__ = ["EventCodec", "Headers", "Trailer", "append_time_of"]

Headers = list[tuple[str, str | bytes | None]]
"""Message headers as the producer takes them."""

_PYTHON_TYPES: Final[dict[str, type]] = {
    "bool": bool, "int32": int, "int64": int, "float32": float, "float64": float,
    "string": str, "binary": bytes, "timestamp": int,
}
_AT: Final = re.compile(r"\$\[(\d+)\]")
_COUNT, _PRODUCER, _SEQUENCE = "hw.count", "hw.producer", "hw.sequence"


@dataclass(frozen=True, slots=True)
class Trailer:
    """What the last message of an append says about the append."""

    count: int
    producer: Producer | None = None

    def headers(self) -> Headers:
        out: Headers = [(_COUNT, str(self.count).encode())]
        if self.producer is not None:
            out.append((_PRODUCER, self.producer.id.encode()))
            out.append((_SEQUENCE, str(self.producer.sequence).encode()))
        return out

    @classmethod
    def of(cls, headers: Headers | dict[str, str | bytes | None] | None) -> Trailer | None:
        """The trailer in a message's headers, if it has one."""
        if not headers:
            return None
        found = {k: _text(v) for k, v in (headers.items() if isinstance(headers, dict)
                                          else headers)}
        if _COUNT not in found:
            return None
        try:
            producer = None
            if _PRODUCER in found and _SEQUENCE in found:
                producer = Producer(found[_PRODUCER], int(found[_SEQUENCE]))
            return cls(int(found[_COUNT]), producer)
        except ValueError:
            return None  # not written by Headwater


def append_time_of(value: bytes | None) -> int:
    """The append time (µs) stored in one message value."""
    try:
        return int(msgspec.msgpack.decode(value or b"")[0])
    except (msgspec.DecodeError, TypeError, ValueError, IndexError, KeyError):
        raise CorruptLogError(f"a message value is not a Headwater event: {value!r:.60}"
                              ) from None


class EventCodec:
    """Encodes a topic's events into message keys and values, and decodes them."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._stored = schema.stored_schema()
        self._encoder = msgspec.msgpack.Encoder()
        row: Any = tuple.__class_getitem__((int, *(_python_type(f) for f in schema.fields)))
        self._decoder = msgspec.msgpack.Decoder(list[row])

    def values(self, batch: pa.RecordBatch, append_time: int) -> list[bytes]:
        """One MessagePack value per event of ``batch``."""
        columns = [_python_values(batch.column(f.name), f) for f in self.schema.fields]
        rows = zip(repeat(append_time, batch.num_rows), *columns, strict=False)
        return list(map(self._encoder.encode, rows))

    def keys(self, batch: pa.RecordBatch) -> Sequence[bytes | None]:
        """One message key per event of ``batch`` (``None`` when the topic has no key)."""
        if self.schema.key is None:
            return [None] * batch.num_rows
        column = batch.column(self.schema.key)
        if pa.types.is_integer(column.type):
            raw = np.asarray(column.cast(pa.int64())).astype(">i8").tobytes()
            return [raw[i: i + 8] for i in range(0, len(raw), 8)]
        keys: list[bytes] = column.cast(pa.binary()).to_pylist()
        return keys

    def decode(self, values: list[bytes], offsets: npt.NDArray[np.int64], where: str
               ) -> pa.RecordBatch:
        """The events in ``values`` (stored at ``offsets``) with the system columns."""
        if not values:
            return empty_batch(self.schema)
        try:
            rows = self._decoder.decode(_array_header(len(values)) + b"".join(values))
        except msgspec.DecodeError as exc:
            found = _AT.search(str(exc))
            at = f" at offset {int(offsets[int(found.group(1))])}" if found else ""
            raise CorruptLogError(f"{where}: a message{at} is not a Headwater event: {exc}"
                                  ) from None
        columns = list(zip(*rows, strict=True))
        arrays = [pa.array(columns[i + 1], f.arrow_type)
                  for i, f in enumerate(self.schema.fields)]
        arrays.append(pa.array(offsets, pa.int64()))
        arrays.append(pa.array(columns[0], TIMESTAMP))
        return pa.RecordBatch.from_arrays(arrays, schema=self._stored)


def _text(value: str | bytes | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value or ""


def _python_type(field: Field) -> Any:
    base = _PYTHON_TYPES[field.type]
    return base | None if field.nullable else base


def _python_values(column: pa.Array, field: Field) -> list[Any]:
    if field.type == "timestamp":
        column = column.cast(pa.int64())
    values: list[Any] = column.to_pylist()
    return values


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")
