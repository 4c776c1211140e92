"""``headwater produce``: append the events of a CSV, Parquet or JSON-lines file to a topic.

The file is read in batches of ``--batch-size`` events and each batch is one append.
With ``--producer-id`` batch ``k`` is appended with sequence number ``k``, so running the
same command again after a crash (same file, same batch size) appends only what is
missing.

Nothing is dropped in silence. Events that fail the topic's schema, records that cannot
be parsed at all (a CSV line with the wrong number of fields, a line that is not JSON,
bytes that are not UTF-8) and times that cannot be read go to the dead-letter topic,
each with the reason and its number in the file: its line (a CSV's header is line 1)
or, for Parquet, its 1-based row, the same number in the summary, the dead-letter
record's ``index`` and every message. When any row was rejected the command exits
with code 3 after appending the others (``--allow-rejects``: 0).

Each row's append time is when the log learnt of it: by default now. A backfill of
history says when each row became known instead (``--known-at COLUMN``, or
``--known-at event-time``: when it happened), so "as known at" queries over it answer
what was known then rather than nothing; the rows are appended in groups of one such
time, each with that append time, and a topic already holding later appends refuses
them (append times only grow).

Times are read by the rules of :mod:`headwater.cli.times` (``--timezone`` for times
without an offset, ``--time-unit`` for integers, told by magnitude when not given).
"""

from __future__ import annotations

import itertools
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import typer
from rich.table import Table
from rich.text import Text

from headwater.cli.common import (
    CliState,
    format_count,
    out,
    progress_bar,
    split_names,
    state_of,
    status,
)
from headwater.cli.formats import METADATA_COLUMNS, STDIO, FileFormat, format_of
from headwater.cli.inference import votes_table
from headwater.cli.sources import Source, Unreadable, infer_schema, open_source
from headwater.cli.times import TimeReader, TimeUnit
from headwater.errors import HeadwaterError, UnknownTopicError, ValidationError
from headwater.locations import check_shared
from headwater.log import (
    AppendResult,
    Log,
    Rejection,
    Schema,
    TopicInfo,
    dead_letter_topic,
    open_log,
)
from headwater.log.schema import TIMESTAMP
from headwater.time import ManualClock, format_micros

__all__ = ["EXIT_INTERRUPTED", "EXIT_REJECTED", "ProduceReport", "produce", "read_times"]

#: Exit code when rows were rejected (the others were appended) without --allow-rejects.
EXIT_REJECTED: Final = 3
#: Exit code when interrupted (Ctrl-C): 128 + SIGINT, as a shell reports it.
EXIT_INTERRUPTED: Final = 130
#: Rejections listed in the summary (all of them are in the dead-letter topic).
SHOWN_REJECTIONS: Final = 10
_PAYLOAD_BYTES: Final = 64 << 10
#: ``--known-at event-time``: every row became known when it happened.
KNOWN_AT_EVENT_TIME: Final = "event-time"
#: Sequence numbers per batch with --known-at (each known-at group is one append).
_GROUPS: Final = 1 << 20


@dataclass
class ProduceReport:
    """What a produce run did; rows are numbered by ``numbering`` (line or row)."""

    topic: str
    numbering: str = "line"
    batches: int = 0
    read: int = 0
    accepted: int = 0
    duplicate_batches: int = 0
    duplicates: int = 0
    rejected: int = 0
    first_rejections: list[tuple[int, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, result: AppendResult, numbers: npt.NDArray[np.int64]) -> None:
        self.batches += 1
        self.read += len(result)
        if result.duplicate:
            self.duplicate_batches += 1
            self.duplicates += result.accepted
        else:
            self.accepted += result.accepted
        for r in result.rejected:
            self._reject(int(numbers[r.index]), r.field, r.reason)

    def add_refused(self, bad: Unreadable) -> None:
        self.read += 1
        self._reject(bad.line, bad.field, bad.reason)

    def _reject(self, number: int, field_: str, reason: str) -> None:
        self.rejected += 1
        if len(self.first_rejections) < SHOWN_REJECTIONS:
            self.first_rejections.append((number, field_, reason))


def produce(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The topic to append to.")],
    file: Annotated[str, typer.Argument(
        help="CSV, Parquet or JSON-lines file; - for standard input.")] = STDIO,
    key: Annotated[str | None, typer.Option(
        help="The file's column holding the key (default: the topic's key field).")] = None,
    event_time: Annotated[str | None, typer.Option(
        "--event-time", help="The file's column holding the event time: ISO 8601 text, a "
        "date, or an integer count since the epoch (default: the topic's event-time field)."
    )] = None,
    timezone: Annotated[str | None, typer.Option(
        "--timezone", help="Read times without a UTC offset (and dates alone) as wall times "
        "in this zone, e.g. UTC or Europe/Paris; without it they are rejected.")] = None,
    time_unit: Annotated[TimeUnit | None, typer.Option(
        "--time-unit", help="What integer times count since the epoch (default: told by "
        "their magnitude, and said).")] = None,
    fmt: Annotated[FileFormat | None, typer.Option(
        "--format", help="The file's format (default: from its extension; - is jsonl).")] = None,
    create: Annotated[bool, typer.Option(
        "--create", help="Create the topic with the file's columns if it does not exist "
        "(a CSV's types are voted by its values, and reported).")] = False,
    partitions: Annotated[int | None, typer.Option(
        min=1, help="Partitions of a topic made by --create (default 1).")] = None,
    allow_non_finite: Annotated[str | None, typer.Option(
        "--allow-non-finite", help="With --create: comma-separated float columns that may "
        "hold NaN and infinity (refused by default).")] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help="Events per append.")] = 10_000,
    producer_id: Annotated[str | None, typer.Option(
        "--producer-id", help="Make re-runs idempotent: batch k is appended with sequence k. "
        "Use one id per input file and keep --batch-size.")] = None,
    known_at: Annotated[str | None, typer.Option(
        "--known-at", help="When each row became known (its append time, for \"as known "
        "at\" queries over a backfill): a column of the file, or event-time (known when it "
        "happened). Default: now, the wall clock.")] = None,
    allow_rejects: Annotated[bool, typer.Option(
        "--allow-rejects", help="Exit 0 even when rows were rejected (they are in the "
        "dead-letter topic either way).")] = False,
) -> None:
    """Append the events of a file (or standard input) to TOPIC."""
    started = time.perf_counter()
    clock = None
    if known_at is not None:
        # each group of rows is appended with the clock at the time it became known
        clock = ManualClock(0)
    times = TimeReader(timezone=timezone, unit=time_unit,
                       say=lambda text: status().print(Text(text)))
    non_finite = split_names(allow_non_finite, option="--allow-non-finite")
    if file == STDIO and sys.stdin.isatty():
        status().print(f"reading events for {topic} from standard input "
                       f"({format_of(file, fmt)}); end with Ctrl-D, or give a FILE")
    try:
        report = _produce(ctx, topic, file, fmt, clock, times, non_finite, key=key,
                          event_time=event_time, create=create, partitions=partitions,
                          batch_size=batch_size, producer_id=producer_id, known_at=known_at)
    except KeyboardInterrupt:
        _interrupted(topic, producer_id, batch_size)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    report.seconds = time.perf_counter() - started
    _print_report(report)
    if report.rejected:
        message = (f"{format_count(report.rejected)} of {format_count(report.read)} rows "
                   f"rejected, kept in {dead_letter_topic(topic)} "
                   f"(headwater tail {dead_letter_topic(topic)} shows them)")
        if allow_rejects:
            status().print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)
            return
        status().print(Text(f"error: {message}; --allow-rejects exits 0 all the same",
                            style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_REJECTED)


def _interrupted(topic: str, producer_id: str | None, batch_size: int) -> None:
    """Say that produce was interrupted, and how to resume."""
    if producer_id is not None:
        how = (f"run the same command again (same input, --producer-id {producer_id}, "
               f"--batch-size {batch_size}): it appends only the batches that are missing")
    else:
        how = ("batches appended before the interrupt stay in the topic and running the "
               "command again appends them again; give --producer-id to make a re-run "
               "append only what is missing")
    status().print(Text(f"interrupted: produce to {topic} stopped; {how}", style="red"),
                   soft_wrap=True)


def _produce(ctx: typer.Context, topic: str, file: str, fmt: FileFormat | None,
             clock: ManualClock | None, times: TimeReader, non_finite: tuple[str, ...], *,
             key: str | None, event_time: str | None, create: bool, partitions: int | None,
             batch_size: int, producer_id: str | None, known_at: str | None
             ) -> ProduceReport:
    """Append the events of ``file`` to ``topic`` (see :func:`produce`)."""
    with open_source(file, format_of(file, fmt), sys.stdin.buffer) as source, \
            _open_log(state_of(ctx), clock) as log:
        info = _topic_for(log, topic, source, key=key, event_time=event_time,
                          create=create, partitions=partitions, allow_non_finite=non_finite)
        renames = _renames(info, source, key=key, event_time=event_time)
        report = ProduceReport(topic, source.numbering)
        try:
            with progress_bar(status(), unit=source.unit) as bar:
                task = bar.add_task(f"produce {topic}", total=source.total)
                for k, chunk in enumerate(source.chunks(batch_size)):
                    refused = list(chunk.unreadable)
                    if len(chunk.rows):
                        given, known = chunk.events, None
                        if known_at is not None:
                            given, known = _known_times(given, chunk.rows, known_at,
                                                        info.schema, times)
                        events, numbers, bad = _prepare(given, chunk.rows, renames,
                                                        info.schema, times)
                        refused.extend(bad)
                        if len(numbers) and known is None:
                            result = log.append(topic, events, producer_id=producer_id,
                                                sequence=None if producer_id is None else k,
                                                numbers=numbers.tolist())
                            report.add(result, numbers)
                        elif len(numbers):
                            assert isinstance(events, pa.RecordBatch)
                            assert clock is not None
                            assert known is not None
                            at = known[np.searchsorted(chunk.rows, numbers)]
                            _append_as_known(log, clock, topic, events, numbers, at, report,
                                             producer_id, k)
                    if refused:
                        refused.sort()
                        _dead_letter(log, topic, refused, producer_id, k)
                        for bad_row in refused:
                            report.add_refused(bad_row)
                    bar.update(task, completed=chunk.position)
        except (HeadwaterError, KeyboardInterrupt):
            if report.batches:
                status().print(f"stopped after {report.batches} batches "
                               f"({format_count(report.accepted)} events appended)")
            raise
    return report


def _open_log(state: CliState, clock: ManualClock | None) -> Log:
    """The command's log; on ``clock`` (append times set by the rows) when given."""
    if clock is None:
        return state.open_log()
    return open_log(check_shared(state.location, "--log"), settings=state.settings,
                    clock=clock)


def _known_times(events: pa.RecordBatch | list[Any], rows: npt.NDArray[np.int64],
                 known_at: str, schema: Schema, times: TimeReader
                 ) -> tuple[pa.RecordBatch, npt.NDArray[np.int64]]:
    """When each row became known (µs), and the events without that column unless the
    topic holds it; a time that cannot be read is refused, naming its line."""
    if not isinstance(events, pa.RecordBatch):
        raise ValidationError("--known-at", "needs a CSV or Parquet file")
    name = schema.event_time if known_at == KNOWN_AT_EVENT_TIME else known_at
    if name not in events.schema.names:
        raise ValidationError("--known-at", f"the file has no column {name!r}")
    column, reasons = read_times(events.column(name), name, times)
    if reasons or column.null_count:
        where = min(reasons) if reasons else int(np.flatnonzero(
            np.asarray(column.is_null()))[0])
        raise ValidationError("--known-at", f"line {int(rows[where])}: "
                              f"{reasons.get(where, 'no time')} in column {name!r}")
    if name not in {f.name for f in schema.fields}:
        events = events.drop_columns([name])
    return events, np.asarray(column.cast(pa.int64()), np.int64)


def _append_as_known(log: Log, clock: ManualClock, topic: str, events: pa.RecordBatch,
                     numbers: npt.NDArray[np.int64], at: npt.NDArray[np.int64],
                     report: ProduceReport, producer_id: str | None, k: int) -> None:
    """Append ``events`` in groups of one known-at time each, the clock at that time, so
    each row's append time is when it became known. A topic that already holds events
    appended later cannot take them (append times only grow): refused, naming the line."""
    order = np.argsort(at, kind="stable")
    events, numbers, at = events.take(pa.array(order)), numbers[order], at[order]
    cuts = [0, *(np.flatnonzero(np.diff(at)) + 1).tolist(), len(at)]
    for g, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        clock.set(int(at[lo]))
        result = log.append(topic, events.slice(lo, hi - lo), producer_id=producer_id,
                            sequence=None if producer_id is None else k * _GROUPS + g,
                            numbers=numbers[lo:hi].tolist())
        if result.accepted and not result.duplicate and result.append_time != at[lo]:
            raise ValidationError("--known-at", f"line {int(numbers[lo])} became known at "
                                  f"{format_micros(int(at[lo]))}, but {topic!r} holds events "
                                  f"appended at {format_micros(result.append_time)}: append "
                                  "times only grow, so declare known times into a topic "
                                  "(or a file order) where nothing later came first")
        report.add(result, numbers[lo:hi])


def _topic_for(log: Log, topic: str, source: Source, *, key: str | None,
               event_time: str | None, create: bool, partitions: int | None,
               allow_non_finite: tuple[str, ...]) -> TopicInfo:
    try:
        info = log.topic(topic)
    except UnknownTopicError:
        if not create:
            raise
    else:
        if allow_non_finite:
            raise ValidationError("--allow-non-finite", f"topic {topic!r} exists: its schema "
                                  "decides which fields may hold NaN and infinity")
        if partitions is not None and partitions != info.partitions:
            raise ValidationError("--partitions", f"topic {topic!r} exists with "
                                  f"{info.partitions} partition(s), not {partitions}: a topic "
                                  "keeps the partitions it was created with")
        return info
    if event_time is None:
        raise ValidationError("--event-time", "name the event-time column to --create a topic")
    schema, votes = infer_schema(source, event_time=event_time, key=key,
                                 allow_non_finite=allow_non_finite)
    if votes:
        status().print(votes_table(votes, source.name))
    info = log.create_topic(topic, schema, partitions=partitions or 1)
    status().print(f"created topic {topic} ({len(schema.fields)} fields, "
                   f"{info.partitions} partition(s))")
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


def _prepare(events: pa.RecordBatch | list[Any], rows: npt.NDArray[np.int64],
             renames: dict[str, str], schema: Schema, times: TimeReader
             ) -> tuple[pa.RecordBatch | list[Any], npt.NDArray[np.int64], list[Unreadable]]:
    """Rename the user's columns to the topic's fields, drop the columns that say where an
    event was in a log (:data:`METADATA_COLUMNS`), and read the time fields by the file's
    rules. Returns the events, their numbers, and the rows whose times were refused."""
    timestamps = [f.name for f in schema.fields if f.type == "timestamp"]
    if isinstance(events, list):
        return _prepare_rows(events, rows, renames, schema, timestamps, times)
    dropped = [n for n in METADATA_COLUMNS if n in events.schema.names]
    if dropped:
        events = events.drop_columns(dropped)
    if renames:
        events = events.rename_columns([renames.get(n, n) for n in events.schema.names])
    refused: dict[int, tuple[str, str]] = {}
    given = events
    for name in timestamps:
        pos = events.schema.get_field_index(name)
        if pos < 0:
            continue
        column, reasons = read_times(events.column(pos), name, times)
        events = events.set_column(pos, name, column)
        for i, reason in reasons.items():
            refused.setdefault(i, (name, reason))
    if not refused:
        return events, rows, []
    at = sorted(refused)
    original = dict(zip(at, given.take(pa.array(at)).to_pylist(), strict=True))
    bad = [Unreadable(int(rows[i]), reason, _payload(original[i]), field=name)
           for i, (name, reason) in sorted(refused.items())]
    keep = np.ones(events.num_rows, bool)
    keep[list(refused)] = False
    return events.filter(pa.array(keep)), rows[keep], bad


def read_times(column: pa.Array, name: str, times: TimeReader
                ) -> tuple[pa.Array, dict[int, str]]:
    """A time column of a file as µs (or as it was, for the log's validation to judge),
    and the reasons of the values refused, by position."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        micros, reasons = times.read_texts(column, name)
        return micros.view(TIMESTAMP), reasons
    if pa.types.is_integer(kind):
        valid = np.asarray(column.is_valid())
        values = np.asarray(column.fill_null(0), np.int64)
        micros, ok = times.from_integers(values[valid], name)
        out = np.zeros(len(values), np.int64)
        out[valid] = micros
        where = np.flatnonzero(valid)
        reasons = {int(i): f"{values[i]} ({times.unit}) is outside the accepted range "
                   "1900..2200" for i in where[~ok]}
        return pa.array(out, pa.int64(), mask=~valid).view(TIMESTAMP), reasons
    if pa.types.is_date(kind) or (pa.types.is_timestamp(kind) and kind.tz is None):
        if times.timezone is None:
            reason = ("the column holds times without a time zone: give --timezone (e.g. "
                      "--timezone UTC) to read them")
            return column, dict.fromkeys(range(len(column)), reason)
        return times.localize(column), {}
    return column, {}


def _prepare_rows(events: list[Any], rows: npt.NDArray[np.int64], renames: dict[str, str],
                  schema: Schema, timestamps: list[str], times: TimeReader
                  ) -> tuple[list[Any], npt.NDArray[np.int64], list[Unreadable]]:
    """:func:`_prepare` for JSON objects (anything else is left for the log to refuse)."""
    renamed = [{renames.get(k, k): v for k, v in e.items() if k not in METADATA_COLUMNS}
               if isinstance(e, dict) else e for e in events]
    texts = {f.name for f in schema.fields if f.type == "string"}
    refused: dict[int, tuple[str, str]] = {}
    for name in timestamps:
        integers = [e[name] for e in renamed if isinstance(e, dict)
                    and isinstance(e.get(name), int) and not isinstance(e[name], bool)]
        if integers:
            times.unit_for(np.abs(np.asarray(integers, dtype=np.float64)), name)
        for i, e in enumerate(renamed):
            value = e.get(name) if isinstance(e, dict) else None
            if isinstance(value, str):
                try:
                    e[name] = times.parse_text(value)
                except ValueError as exc:
                    refused.setdefault(i, (name, str(exc)))
            elif isinstance(value, int) and not isinstance(value, bool):
                ok = abs(value) < 2**63
                if ok:
                    micros, fits = times.from_integers(np.asarray([value], np.int64), name)
                    ok = bool(fits[0])
                if ok:
                    e[name] = int(micros[0])
                else:
                    refused.setdefault(i, (name, f"{value} ({times.unit}) is outside the "
                                                 "accepted range 1900..2200"))
    for e in renamed:  # an integer key or label in a text field is its decimal text
        if isinstance(e, dict):
            for name in texts & e.keys():
                if isinstance(e[name], int) and not isinstance(e[name], bool):
                    e[name] = str(e[name])
    if not refused:
        return renamed, rows, []
    bad = [Unreadable(int(rows[i]), reason, _payload(events[i]), field=name)
           for i, (name, reason) in sorted(refused.items())]
    keep = [i for i in range(len(renamed)) if i not in refused]
    return [renamed[i] for i in keep], rows[keep], bad


def _payload(row: object) -> bytes:
    return msgspec.json.encode(row, enc_hook=str)[:_PAYLOAD_BYTES]


def _dead_letter(log: Log, topic: str, refused: list[Unreadable], producer_id: str | None,
                 batch: int) -> None:
    """Keep the rows of batch ``batch`` refused before the append in the dead-letter topic
    (idempotent by batch, like the append)."""
    rejections = [Rejection(bad.line, bad.field, bad.reason, bad.payload[:_PAYLOAD_BYTES])
                  for bad in refused]
    log.dead_letter(topic, rejections,
                    producer_id=None if producer_id is None else f"{producer_id}.refused",
                    sequence=None if producer_id is None else batch)


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
        table = Table(report.numbering, "field", "reason",
                      title=f"first {len(report.first_rejections)} rejections")
        for row, field_, reason in report.first_rejections:
            table.add_row(str(row), field_, re.sub(r"\s+", " ", reason))
        console.print(table)
