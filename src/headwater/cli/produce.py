"""``headwater produce``: append the events of a CSV, Parquet or JSON-lines file to a topic.

The file is read in batches of ``--batch-size`` events and each batch is one append.
With ``--producer-id`` batch ``k`` is appended with sequence number ``k``, so running the
same command again after a crash (same file, same batch size) appends only what is
missing. Events that fail the topic's schema, and records that cannot be parsed at all,
go to the dead-letter topic; the summary counts them and shows the first few.
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import typer
from rich.table import Table

from headwater.cli.common import format_count, out, progress_bar, state_of, status
from headwater.cli.formats import METADATA_COLUMNS, STDIO, FileFormat, format_of
from headwater.cli.sources import Source, Unreadable, infer_schema, open_source
from headwater.errors import HeadwaterError, UnknownTopicError, ValidationError
from headwater.log import AppendResult, Log, TopicInfo, dead_letter_topic
from headwater.time import MAX_MICROS, MIN_MICROS, format_micros

__all__ = ["ProduceReport", "produce"]

#: Rejections listed in the summary (all of them are in the dead-letter topic).
SHOWN_REJECTIONS: Final = 10
_PAYLOAD_BYTES: Final = 64 << 10
_INTEGER: Final = r"^\s*[+-]?\d+\s*$"


@dataclass
class ProduceReport:
    """What a produce run did."""

    topic: str
    batches: int = 0
    accepted: int = 0
    duplicate_batches: int = 0
    duplicates: int = 0
    rejected: int = 0
    first_rejections: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, result: AppendResult, rows: npt.NDArray[np.int64]) -> None:
        self.batches += 1
        if result.duplicate:
            self.duplicate_batches += 1
            self.duplicates += result.accepted
        else:
            self.accepted += result.accepted
        for r in result.rejected:
            self._reject(str(int(rows[r.index])), r.field, r.reason)

    def add_unreadable(self, bad: Unreadable) -> None:
        self._reject(f"line {bad.line}", "$", bad.reason)

    def _reject(self, row: str, field_: str, reason: str) -> None:
        self.rejected += 1
        if len(self.first_rejections) < SHOWN_REJECTIONS:
            self.first_rejections.append((row, field_, reason))


def produce(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The topic to append to.")],
    file: Annotated[str, typer.Argument(
        help="CSV, Parquet or JSON-lines file; - for standard input.")] = STDIO,
    key: Annotated[str | None, typer.Option(
        help="The file's column holding the key (default: the topic's key field).")] = None,
    event_time: Annotated[str | None, typer.Option(
        "--event-time", help="The file's column holding the event time: ISO 8601 with an "
        "offset, or integer microseconds (default: the topic's event-time field).")] = None,
    fmt: Annotated[FileFormat | None, typer.Option(
        "--format", help="The file's format (default: from its extension; - is jsonl).")] = None,
    create: Annotated[bool, typer.Option(
        "--create", help="Create the topic with the file's columns if it does not exist.")
    ] = False,
    partitions: Annotated[int, typer.Option(
        min=1, help="Partitions of a topic made by --create.")] = 1,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help="Events per append.")] = 10_000,
    producer_id: Annotated[str | None, typer.Option(
        "--producer-id", help="Make re-runs idempotent: batch k is appended with sequence k. "
        "Use one id per input file and keep --batch-size.")] = None,
) -> None:
    """Append the events of a file (or standard input) to TOPIC."""
    started = time.perf_counter()
    with open_source(file, format_of(file, fmt), sys.stdin.buffer) as source, \
            state_of(ctx).open_log() as log:
        info = _topic_for(log, topic, source, key=key, event_time=event_time,
                          create=create, partitions=partitions)
        renames = _renames(info, source, key=key, event_time=event_time)
        report = ProduceReport(topic)
        try:
            with progress_bar(status(), unit=source.unit) as bar:
                task = bar.add_task(f"produce {topic}", total=source.total)
                for k, chunk in enumerate(source.chunks(batch_size)):
                    if len(chunk.rows):
                        events = _prepare(chunk.events, renames, info.schema.event_time)
                        result = log.append(topic, events, producer_id=producer_id,
                                            sequence=None if producer_id is None else k)
                        report.add(result, chunk.rows)
                    for bad in chunk.unreadable:
                        _dead_letter(log, topic, bad, producer_id)
                        report.add_unreadable(bad)
                    bar.update(task, completed=chunk.position)
        except HeadwaterError:
            if report.batches:
                status().print(f"stopped after {report.batches} batches "
                               f"({format_count(report.accepted)} events appended)")
            raise
    report.seconds = time.perf_counter() - started
    _print_report(report)


def _topic_for(log: Log, topic: str, source: Source, *, key: str | None,
               event_time: str | None, create: bool, partitions: int) -> TopicInfo:
    try:
        return log.topic(topic)
    except UnknownTopicError:
        if not create:
            raise
    if event_time is None:
        raise ValidationError("--event-time", "name the event-time column to --create a topic")
    schema = infer_schema(source, event_time=event_time, key=key)
    info = log.create_topic(topic, schema, partitions=partitions)
    status().print(f"created topic {topic} ({len(schema.fields)} fields, "
                   f"{partitions} partition(s))")
    return info


def _renames(info: TopicInfo, source: Source, *, key: str | None,
             event_time: str | None) -> dict[str, str]:
    """File column -> topic field, for the key and event-time columns the user named."""
    schema = info.schema
    renames: dict[str, str] = {}
    if key is not None and key != schema.key:
        if schema.key is None:
            raise ValidationError("--key", f"topic {info.name!r} has no key field")
        renames[key] = schema.key
    if event_time is not None and event_time != schema.event_time:
        renames[event_time] = schema.event_time
    if renames:
        columns = source.arrow_schema().names
        for column, option in ((key, "--key"), (event_time, "--event-time")):
            if column in renames and column not in columns:
                raise ValidationError(option, f"{source.name} has no column {column!r}")
    return renames


def _prepare(events: pa.RecordBatch | list[Any], renames: dict[str, str],
             event_time: str) -> pa.RecordBatch | list[Any]:
    """Rename the user's columns to the topic's fields, drop the columns that say where an
    event was in a log (:data:`METADATA_COLUMNS`), read integer event times from text."""
    if isinstance(events, list):
        return [{renames.get(k, k): v for k, v in e.items() if k not in METADATA_COLUMNS}
                if isinstance(e, dict) else e for e in events]
    dropped = [n for n in METADATA_COLUMNS if n in events.schema.names]
    if dropped:
        events = events.drop_columns(dropped)
    if renames:
        events = events.rename_columns([renames.get(n, n) for n in events.schema.names])
    pos = events.schema.get_field_index(event_time)
    if pos >= 0 and pa.types.is_string(events.schema.field(pos).type):
        events = events.set_column(pos, event_time, _integer_times(events.column(pos)))
    return events


def _integer_times(column: pa.Array) -> pa.Array:
    """Event times read as text: integers (µs) become int64, or ISO text when the column
    mixes them with ISO text; the log's validation reads the rest."""
    integer = pc.match_substring_regex(column, _INTEGER)
    if not pc.any(integer).as_py():
        return column
    if pc.all(integer).as_py():
        return pc.cast(pc.utf8_trim_whitespace(column), pa.int64())
    texts = column.to_pylist()
    for i, is_integer in enumerate(integer.to_pylist()):
        if is_integer and MIN_MICROS <= int(texts[i]) < MAX_MICROS:
            texts[i] = format_micros(int(texts[i]))
    return pa.array(texts, pa.string())


def _dead_letter(log: Log, topic: str, bad: Unreadable, producer_id: str | None) -> None:
    """Keep an unparseable record in the dead-letter topic (idempotent by line number)."""
    row = {"topic": topic, "index": bad.line, "field": "$", "reason": bad.reason,
           "payload": bad.payload[:_PAYLOAD_BYTES], "rejected_at": log.clock.now_us()}
    log.append(dead_letter_topic(topic), [row],
               producer_id=None if producer_id is None else f"{producer_id}.unreadable",
               sequence=None if producer_id is None else bad.line)


def _print_report(report: ProduceReport) -> None:
    console = out()
    summary = Table.grid(padding=(0, 2))
    summary.add_row("topic", report.topic)
    summary.add_row("batches", format_count(report.batches))
    summary.add_row("accepted", format_count(report.accepted))
    if report.duplicates:
        summary.add_row("duplicates", f"{format_count(report.duplicates)} already appended "
                        f"(batches: {report.duplicate_batches}), not appended again")
    summary.add_row("rejected", format_count(report.rejected))
    if report.rejected:
        summary.add_row("dead letters", dead_letter_topic(report.topic))
    rate = (report.accepted + report.duplicates) / report.seconds if report.seconds else 0.0
    summary.add_row("time", f"{report.seconds:.2f} s ({rate:,.0f} events/s)")
    console.print(summary)
    if report.first_rejections:
        table = Table("row", "field", "reason",
                      title=f"first {len(report.first_rejections)} rejections")
        for row, field_, reason in report.first_rejections:
            table.add_row(row, field_, re.sub(r"\s+", " ", reason))
        console.print(table)
