"""``headwater topics``: create, list and describe topics, and change their retention."""

from __future__ import annotations

import sys
from typing import Annotated, Any, get_args

import typer
from rich.table import Table

from headwater.cli.common import (
    format_count,
    out,
    split_names,
    state_of,
    status,
)
from headwater.cli.formats import FileFormat, format_of
from headwater.cli.inference import votes_table
from headwater.cli.sources import infer_schema, open_source
from headwater.cli.tables import FormatOption, emit
from headwater.errors import ValidationError
from headwater.log import Log, Retention, Schema, TopicInfo, dead_letter_topic
from headwater.log.schema import FieldType
from headwater.time import format_duration, parse_duration

__all__ = ["app", "parse_schema"]

app = typer.Typer(help="Create, list and describe topics.", no_args_is_help=True)

_TYPES = get_args(FieldType)
_SCHEMA_HELP = ('Fields as name:type, e.g. "user:string,amount:float64,ts:timestamp". '
                f"Types: {', '.join(_TYPES)}.")


def parse_schema(spec: str, *, event_time: str, key: str | None,
                 nullable: tuple[str, ...] = (), allow_non_finite: tuple[str, ...] = ()
                 ) -> Schema:
    """Read ``--schema "user:string,amount:float64,ts:timestamp"``.

    >>> parse_schema("user:string, ts:timestamp", event_time="ts", key="user").names
    ('user', 'ts')
    """
    fields: dict[str, str] = {}
    for part in spec.split(","):
        name, sep, type_ = (s.strip() for s in part.partition(":"))
        if not sep or not name or not type_:
            raise ValidationError("--schema", f"expected name:type, got {part.strip()!r}")
        if type_ not in _TYPES:
            raise ValidationError(
                f"--schema {name}", f"unknown type {type_!r}; use one of {', '.join(_TYPES)}"
            )
        if name in fields:
            raise ValidationError(f"--schema {name}", "the field is named twice")
        fields[name] = type_
    named = [("--nullable", n) for n in nullable] + [("--event-time", event_time)]
    named += [("--allow-non-finite", n) for n in allow_non_finite]
    named += [] if key is None else [("--key", key)]
    for option, name in named:
        if name not in fields:
            raise ValidationError(option, f"no field named {name!r} in --schema")
    for name in allow_non_finite:
        if fields[name] not in ("float32", "float64"):
            raise ValidationError("--allow-non-finite",
                                  f"{name} is {fields[name]}: only a float field holds NaN or "
                                  "infinity")
    return Schema.of(fields, event_time=event_time, key=key, nullable=nullable,
                     allow_non_finite=allow_non_finite)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The topic's name.")],
    event_time: Annotated[str, typer.Option(
        "--event-time", help="The field holding each event's time.")],
    schema: Annotated[str | None, typer.Option(help=_SCHEMA_HELP)] = None,
    from_file: Annotated[str | None, typer.Option(
        "--from-file", help="Infer the fields from a CSV, Parquet or JSON-lines file.",
        metavar="FILE")] = None,
    fmt: Annotated[FileFormat | None, typer.Option(
        "--format", help="Format of --from-file (default: from its extension).")] = None,
    key: Annotated[str | None, typer.Option(
        help="The field whose hash picks the partition.")] = None,
    partitions: Annotated[int, typer.Option(min=1, help="Number of partitions.")] = 1,
    nullable: Annotated[str | None, typer.Option(
        help="Comma-separated fields that may be null (with --schema).")] = None,
    allow_non_finite: Annotated[str | None, typer.Option(
        "--allow-non-finite", help="Comma-separated float fields that may hold NaN and "
        "infinity (refused by default).")] = None,
    retention: Annotated[str | None, typer.Option(
        help="Keep events this long, e.g. 7d or 12h.")] = None,
    retention_bytes: Annotated[int | None, typer.Option(
        "--retention-bytes", min=1, help="Keep at most this many bytes per partition.")] = None,
) -> None:
    """Create a topic (and its dead-letter topic NAME.dlq)."""
    if (schema is None) == (from_file is None):
        raise ValidationError("--schema", "give either --schema or --from-file")
    names = split_names(nullable, option="--nullable")
    non_finite = split_names(allow_non_finite, option="--allow-non-finite")
    if schema is not None:
        topic_schema = parse_schema(schema, event_time=event_time, key=key, nullable=names,
                                    allow_non_finite=non_finite)
    else:
        assert from_file is not None
        if names:
            raise ValidationError(
                "--nullable", "only with --schema; with --from-file nullability comes from the file"
            )
        with open_source(from_file, format_of(from_file, fmt), sys.stdin.buffer) as source:
            topic_schema, votes = infer_schema(source, event_time=event_time, key=key,
                                               allow_non_finite=non_finite)
        if votes:
            status().print(votes_table(votes, source.name))
    kept = Retention(
        max_age_us=None if retention is None else parse_duration(retention, field="--retention"),
        max_bytes=retention_bytes,
    )
    with state_of(ctx).open_log() as log:
        info = log.create_topic(name, topic_schema, partitions=partitions, retention=kept)
        out().print(f"created topic [bold]{info.name}[/] with {info.partitions} partition(s)")
        out().print(_fields_table(info))


@app.command("retention")
def retention_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The topic's name.")],
    retention: Annotated[str | None, typer.Option(
        help="Keep events this long, e.g. 7d or 12h.")] = None,
    retention_bytes: Annotated[int | None, typer.Option(
        "--retention-bytes", min=1, help="Keep at most this many bytes per partition.")] = None,
    forever: Annotated[bool, typer.Option(
        "--forever", help="Keep every event (the topic grows without bound).")] = False,
) -> None:
    """Change how long a topic keeps events; applied now and by every running writer."""
    if forever == (retention is not None or retention_bytes is not None):
        raise ValidationError("--retention", "give --retention and/or --retention-bytes, or "
                              "--forever")
    kept = Retention(
        max_age_us=None if retention is None else parse_duration(retention, field="--retention"),
        max_bytes=retention_bytes,
    )
    with state_of(ctx).open_log() as log:
        info = log.set_retention(name, kept)
        out().print(f"topic [bold]{info.name}[/] keeps {_retention(info.retention)}")


@app.command("list")
def list_(ctx: typer.Context, fmt: FormatOption = "table") -> None:
    """List the topics with their partitions and event counts."""
    with state_of(ctx).open_log() as log:
        topics = log.topics()
        if not topics and fmt == "table":
            out().print("no topics")
            return
        rows: list[list[Any]] = [[info.name, info.partitions, _events(log, info.name),
                                  info.schema.key, info.schema.event_time] for info in topics]
    if fmt == "table":
        rows = [[name, n, format_count(events), key or "", ts]
                for name, n, events, key, ts in rows]
    emit(["name", "partitions", "events", "key", "event time"], rows, fmt)


@app.command("describe")
def describe(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="The topic's name.")]
) -> None:
    """Show a topic's fields, partitions, retention and consumer groups."""
    with state_of(ctx).open_log() as log:
        info = log.topic(name)
        console = out()
        console.print(f"topic [bold]{info.name}[/]")
        console.print(f"  retention     {_retention(info.retention)}")
        if not info.name.endswith(".dlq"):
            dlq = dead_letter_topic(info.name)
            console.print(f"  dead letters  {format_count(_events(log, dlq))} in {dlq}")
        console.print(_fields_table(info))
        parts = Table("partition", "start", "end", "events", title="partitions")
        starts, ends = log.start_offsets(name), log.end_offsets(name)
        for p, (start, end) in enumerate(zip(starts, ends, strict=True)):
            parts.add_row(str(p), str(start), str(end), format_count(end - start))
        console.print(parts)
        groups = _groups_table(log, info)
        console.print(groups if groups.row_count else "no consumer groups")


def _fields_table(info: TopicInfo) -> Table:
    table = Table("field", "type", "nullable", "role", title="fields")
    for field in info.schema.fields:
        role = ("key" if field.name == info.schema.key
                else "event time" if field.name == info.schema.event_time else "")
        kind = f"{field.type} (NaN/inf allowed)" if field.allow_non_finite else field.type
        table.add_row(field.name, kind, "yes" if field.nullable else "no", role)
    return table


def _groups_table(log: Log, info: TopicInfo) -> Table:
    table = Table("group", "committed", "lag", title="consumer groups")
    for group in log.groups():
        committed = log.committed(group, info.name)
        if not committed:
            continue
        lag = log.lag(group, info.name)
        offsets = ", ".join(f"{p}:{committed[p]}" for p in sorted(committed))
        table.add_row(group, offsets, format_count(sum(lag.values())))
    return table


def _events(log: Log, topic: str) -> int:
    starts, ends = log.start_offsets(topic), log.end_offsets(topic)
    return sum(end - start for start, end in zip(starts, ends, strict=True))


def _retention(retention: Retention) -> str:
    kept = []
    if retention.max_age_us is not None:
        kept.append(format_duration(retention.max_age_us))
    if retention.max_bytes is not None:
        kept.append(f"{format_count(retention.max_bytes)} bytes per partition")
    return ", ".join(kept) or "forever"
