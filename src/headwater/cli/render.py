"""Events printed for people (a Rich table) or for programs (one JSON object per line).

Timestamps are printed as ISO 8601 text in UTC. A JSON line holds the event's fields
plus ``_partition``, ``_offset`` and ``_append_time``; ``headwater produce`` ignores those
three, so ``consume --format jsonl`` can be piped into ``produce``.

A dead letter's ``payload`` (the rejected event as JSON, or the raw line of a record
that could not be read) is printed as the JSON value it holds, or as text where it is
not JSON, never as base64; bytes that are not UTF-8 are shown escaped (``\xff``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

import msgspec
import pyarrow as pa
import typer
from rich.table import Table
from rich.text import Text

from headwater.cli.common import out
from headwater.cli.formats import PARTITION
from headwater.log import APPEND_TIME, OFFSET, Fetched
from headwater.log.records import DEAD_LETTER_SUFFIX
from headwater.time import format_micros

__all__ = ["EventFormat", "iso_texts", "payload_value", "print_events", "rows_of"]

EventFormat = Literal["table", "jsonl"]
_ENCODER: Final = msgspec.json.Encoder()
_SHOWN_BYTES: Final = 80


def rows_of(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """The rows of ``batch`` as plain values, timestamps as ISO 8601 UTC text.

    >>> batch = pa.record_batch({"n": [1], "ts": pa.array([0], pa.timestamp("us", "UTC"))})
    >>> rows_of(batch)
    [{'n': 1, 'ts': '1970-01-01T00:00:00.000000+00:00'}]
    """
    columns: dict[str, list[Any]] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_timestamp(column.type):
            columns[name] = iso_texts(column)
        else:
            columns[name] = column.to_pylist()
    return [{name: values[i] for name, values in columns.items()}
            for i in range(batch.num_rows)]


def iso_texts(column: pa.Array) -> list[str | None]:
    """A timestamp column (µs, UTC) as ISO 8601 text."""
    micros = column.cast(pa.timestamp("us", "UTC")).view(pa.int64()).to_pylist()
    return [None if us is None else format_micros(us) for us in micros]


def print_events(fetched: Sequence[Fetched], fmt: EventFormat) -> int:
    """Print the events of ``fetched`` on standard output; return how many."""
    count = sum(int(f.batch.num_rows) for f in fetched)
    if not count:
        return 0
    if fmt == "jsonl":
        for part in fetched:
            rows = rows_of(part.batch)
            if part.topic.endswith(DEAD_LETTER_SUFFIX):
                rows = [{**row, "payload": payload_value(row.get("payload"))} for row in rows]
            for row in rows:
                typer.echo(_ENCODER.encode({PARTITION: part.partition, **row}).decode())
        return count
    first = next(f.batch for f in fetched if f.batch.num_rows)
    fields = [n for n in first.schema.names if n not in (OFFSET, APPEND_TIME)]
    table = Table("partition", "offset", *fields)
    for part in fetched:
        for row in rows_of(part.batch):
            table.add_row(str(part.partition), str(row[OFFSET]),
                          *(_cell(row.get(name)) for name in fields))
    out().print(table)
    return count


def payload_value(payload: object) -> Any:
    r"""A dead letter's payload as the JSON value it holds, else as text.

    >>> payload_value(b'{"user": "ada", "amount": "1,5"}'), payload_value(b"bob,\xff")
    ({'user': 'ada', 'amount': '1,5'}, 'bob,\\xff')
    """
    if not isinstance(payload, bytes):
        return payload
    try:
        return msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return payload.decode(errors="backslashreplace")


def _cell(value: object) -> Text:
    if value is None:
        return Text("null", style="dim")
    if isinstance(value, bytes):  # text (a dead letter's payload) as text, bad bytes escaped
        shown = value[:_SHOWN_BYTES].decode(errors="backslashreplace")
        return Text(shown + ("…" if len(value) > _SHOWN_BYTES else ""))
    return Text(str(value))
