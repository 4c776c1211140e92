"""``headwater replay``: read a topic's history, optionally between two event times, into
a file (Parquet, CSV or JSON lines) or just count it.

``--from-time`` seeks each partition to the first event at or after that time;
``--to-time`` keeps events strictly before it. Events are read partition by partition,
each in offset order.
"""

from __future__ import annotations

import time
from typing import Annotated, Final

import pyarrow as pa
import pyarrow.compute as pc
import typer
from rich.table import Table

from headwater.cli.common import format_count, out, progress_bar, state_of, status
from headwater.cli.formats import FileFormat, format_of
from headwater.cli.sinks import Sink, open_sink
from headwater.errors import ValidationError
from headwater.log import Log, TopicInfo
from headwater.log.schema import TIMESTAMP
from headwater.time import SystemClock, format_micros, parse_time

__all__ = ["replay"]

_READ_EVENTS: Final = 100_000


def replay(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The topic to replay.")],
    partition: Annotated[int | None, typer.Option(
        min=0, help="Only this partition (default: all).")] = None,
    from_offset: Annotated[int | None, typer.Option(
        "--from-offset", min=0, help="Start at this offset in each partition.")] = None,
    from_time: Annotated[str | None, typer.Option(
        "--from-time", help="Start at this event time (ISO 8601 with an offset, or now-1d).")
    ] = None,
    to_time: Annotated[str | None, typer.Option(
        "--to-time", help="Keep events before this event time (ISO 8601 with an offset, or now).")
    ] = None,
    out_path: Annotated[str | None, typer.Option(
        "--out", metavar="FILE", help="Write the events to a .parquet, .csv or .jsonl file.")
    ] = None,
    fmt: Annotated[FileFormat | None, typer.Option(
        "--format", help="Format of --out (default: from its extension).")] = None,
) -> None:
    """Replay the events of TOPIC, into a file or as a count."""
    clock = SystemClock()
    lower = None if from_time is None else parse_time(from_time, clock=clock, field="--from-time")
    upper = None if to_time is None else parse_time(to_time, clock=clock, field="--to-time")
    started = time.perf_counter()
    with state_of(ctx).open_log() as log:
        info = log.topic(topic)
        if partition is not None and partition >= info.partitions:
            raise ValidationError("--partition", f"{topic!r} has partitions "
                                  f"0..{info.partitions - 1}, not {partition}")
        chosen = [partition] if partition is not None else list(range(info.partitions))
        ends = dict(zip(range(info.partitions), log.end_offsets(topic), strict=True))
        starts = {p: _start(log, topic, p, from_offset, lower) for p in chosen}
        total = sum(max(0, ends[p] - starts[p]) for p in chosen)
        sink = None
        if out_path is not None:
            sink = open_sink(out_path, format_of(out_path, fmt, option="--out"),
                             info.schema.stored_schema())
        try:
            written, first, last = _copy(log, info, starts, lower, upper, sink, total)
        finally:
            if sink is not None:
                sink.close()
    seconds = time.perf_counter() - started
    summary = Table.grid(padding=(0, 2))
    summary.add_row("topic", f"{topic} (partitions {', '.join(map(str, chosen))})")
    summary.add_row("events", format_count(written))
    if first is not None and last is not None:
        summary.add_row("event time", f"{format_micros(first)} .. {format_micros(last)}")
    rate = written / seconds if seconds else 0.0
    summary.add_row("time", f"{seconds:.2f} s ({rate:,.0f} events/s)")
    if out_path is not None:
        summary.add_row("written to", out_path)
    out().print(summary)


def _start(log: Log, topic: str, partition: int, offset: int | None, lower: int | None) -> int:
    start = log.start_offsets(topic)[partition] if offset is None else offset
    if lower is not None:
        start = max(start, log.seek(topic, partition, event_time=lower))
    return max(start, log.start_offsets(topic)[partition])


def _copy(log: Log, info: TopicInfo, starts: dict[int, int], lower: int | None,
          upper: int | None, sink: Sink | None, total: int
          ) -> tuple[int, int | None, int | None]:
    """Read, filter by event time, write; return the count and the event-time range."""
    written = 0
    first: int | None = None
    last: int | None = None
    with progress_bar(status(), unit="events") as bar:
        task = bar.add_task(f"replay {info.name}", total=total)
        for p, start in starts.items():
            for fetched in log.replay(info.name, [p], start=start, max_events=_READ_EVENTS):
                batch = _between(fetched.batch, info.schema.event_time, lower, upper)
                bar.advance(task, fetched.batch.num_rows)
                if not batch.num_rows:
                    continue
                if sink is not None:
                    sink.write(batch)
                written += batch.num_rows
                low, high = pc.min_max(batch.column(info.schema.event_time).view(pa.int64())
                                       ).values()
                first = low.as_py() if first is None else min(first, low.as_py())
                last = high.as_py() if last is None else max(last, high.as_py())
    return written, first, last


def _between(batch: pa.RecordBatch, column: str, lower: int | None,
             upper: int | None) -> pa.RecordBatch:
    """The rows whose event time is in [lower, upper)."""
    times = batch.column(column)
    keep = None
    if lower is not None:
        keep = pc.greater_equal(times, pa.scalar(lower, TIMESTAMP))
    if upper is not None:
        below = pc.less(times, pa.scalar(upper, TIMESTAMP))
        keep = below if keep is None else pc.and_(keep, below)
    return batch if keep is None else batch.filter(keep)
