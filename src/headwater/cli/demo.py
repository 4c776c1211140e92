"""``headwater demo``: the packaged Elec2 stream through the embedded log, end to end.

In a demo directory (default ``<home>/demo``, nothing else is touched) it creates the
topic ``elec2`` (key: the region, ``NSW``; event time: ``event_time``), appends the
stream in batches through an idempotent producer, reads it back through a consumer group
and commits, checks that every event came back exactly once, seeks to a day in the
middle by event time, and prints the figures (``--json``: one JSON object). It exits 1
if a check fails.

Each step is a function of :mod:`headwater.cli.roundtrip`; later demos add steps.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Final

import msgspec
import pyarrow as pa
import typer
from rich.table import Table

from headwater.cli.common import CliState, format_count, out, progress_bar, state_of, status
from headwater.cli.roundtrip import (
    Appended,
    Consumed,
    Seeked,
    append_stream,
    consume_all,
    dead_letters,
    seek_day,
)
from headwater.datasets import elec2
from headwater.errors import ConfigError, LogError
from headwater.log import Log, Schema, open_log
from headwater.time import format_micros

__all__ = ["Figures", "SeekFigures", "demo", "elec2_events", "workspace"]

TOPIC: Final = "elec2"
REGION: Final = "NSW"
PRODUCER: Final = "demo-elec2"
#: The file that marks a directory as made by ``headwater demo`` (safe to clear).
MARKER: Final = ".headwater-demo"


def demo(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where the demo keeps its log (default: <home>/demo).")] = None,
    fresh: Annotated[bool, typer.Option(
        "--fresh/--keep", help="Start from an empty demo log, or reuse the one there.")] = True,
    limit: Annotated[int | None, typer.Option(
        min=1, help="Use only the first N events of Elec2.")] = None,
    partitions: Annotated[int, typer.Option(min=1, help="Partitions of the topic.")] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Events per append.")
    ] = 5_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object of figures.")
    ] = False,
) -> None:
    """Run the Elec2 stream through the embedded log and show the figures."""
    state = state_of(ctx)
    log_dir = workspace(directory or Path(state.settings.home) / "demo", fresh=fresh)
    figures = _log_round_trip(state, log_dir, elec2_events(limit), partitions=partitions,
                              batch_size=batch_size)
    if as_json:
        typer.echo(msgspec.json.encode(figures).decode())
    else:
        _print_figures(figures)
    if figures.failed:
        raise LogError(f"demo checks failed: {', '.join(figures.failed)}")


def elec2_events(limit: int | None = None) -> pa.Table:
    """Elec2 as events: a ``region`` key column (``NSW``) next to the data set's columns."""
    table = elec2.load(limit)
    region = pa.array([REGION] * table.num_rows, pa.string())
    return table.add_column(2, pa.field("region", pa.string(), nullable=False), region)


def workspace(directory: Path, *, fresh: bool) -> Path:
    """The demo's log directory; with ``fresh``, emptied first (only if the demo made it)."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--dir {directory}: not a directory")
    if directory.exists() and any(directory.iterdir()) and not (directory / MARKER).exists():
        raise ConfigError(f"--dir {directory}: not empty and not made by headwater demo; "
                          "choose another directory")
    log_dir = directory / "log"
    if fresh and log_dir.exists():
        shutil.rmtree(log_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).touch()
    return log_dir


def _log_round_trip(state: CliState, log_dir: Path, events: pa.Table, *, partitions: int,
                    batch_size: int) -> Figures:
    inferred = Schema.from_arrow(events.schema, event_time="event_time", key="region")
    schema = Schema.of({f.name: f.type for f in inferred.fields},
                       event_time="event_time", key="region")
    with open_log(str(log_dir), settings=state.settings) as log, \
            progress_bar(status(), unit="events") as bar:
        log.create_topic(TOPIC, schema, partitions=partitions)
        group = _group_name(log)
        task = bar.add_task("append", total=events.num_rows)
        appended = append_stream(log, TOPIC, events, batch_size=batch_size,
                                 producer_id=PRODUCER,
                                 advance=lambda n: bar.advance(task, n))
        task = bar.add_task("replay", total=sum(log.end_offsets(TOPIC)))
        consumed = consume_all(log, TOPIC, group, id_column="row",
                               advance=lambda n: bar.advance(task, n))
        middle = elec2.START_US + events.num_rows // 2 * elec2.PERIOD_US
        seeked = seek_day(log, TOPIC, middle)
        ends = log.end_offsets(TOPIC)
        dlq = dead_letters(log, TOPIC)
    return _figures(log_dir, group, partitions, ends, dlq, appended, consumed, seeked)


def _group_name(log: Log) -> str:
    """``demo-1`` in a fresh log; the next unused number when the log is kept."""
    taken = set(log.groups())
    n = 1
    while f"demo-{n}" in taken:
        n += 1
    return f"demo-{n}"


class SeekFigures(msgspec.Struct, frozen=True):
    """Where seeking to midnight of the middle day landed."""

    event_time: str
    offsets: list[int]
    found: str | None


class Figures(msgspec.Struct, frozen=True):
    """What the demo measured and checked; ``--json`` prints exactly this."""

    log: str
    topic: str
    group: str
    partitions: int
    events: int
    appended: int
    duplicates: int
    dead_letters: int
    append_seconds: float
    append_events_per_s: float
    replayed: int
    replay_seconds: float
    replay_events_per_s: float
    end_offsets: list[int]
    committed: list[int]
    lag: int
    seek: SeekFigures
    checks: dict[str, bool]

    @property
    def failed(self) -> list[str]:
        return [name for name, ok in self.checks.items() if not ok]


def _figures(log_dir: Path, group: str, partitions: int, ends: list[int], dlq: int,
             appended: Appended, consumed: Consumed, seeked: Seeked) -> Figures:
    def rate(events: int, seconds: float) -> float:
        return round(events / seconds, 1) if seconds > 0 else 0.0

    found = None if seeked.found is None else format_micros(seeked.found)
    return Figures(
        log=str(log_dir),
        topic=TOPIC,
        group=group,
        partitions=partitions,
        events=sum(ends),
        appended=appended.appended,
        duplicates=appended.duplicates,
        dead_letters=dlq,
        append_seconds=round(appended.seconds, 4),
        append_events_per_s=rate(appended.offered, appended.seconds),
        replayed=consumed.events,
        replay_seconds=round(consumed.seconds, 4),
        replay_events_per_s=rate(consumed.events, consumed.seconds),
        end_offsets=ends,
        committed=[consumed.committed.get(p, 0) for p in range(partitions)],
        lag=consumed.lag,
        seek=SeekFigures(format_micros(seeked.event_time), seeked.offsets, found),
        checks={
            "exactly_once": consumed.exactly_once,
            "no_dead_letters": dlq == 0,
            "no_lag": consumed.lag == 0,
            "seek": seeked.found == seeked.event_time,
        },
    )


def _print_figures(f: Figures) -> None:
    def mark(name: str) -> str:
        return "[green]✓[/]" if f.checks[name] else "[red]✗[/]"

    table = Table("", "", title=f"Elec2 through the log ({f.log})", show_header=False)
    table.add_row("events", f"{format_count(f.events)} in {f.partitions} partition(s), "
                  f"topic {f.topic}")
    table.add_row("append", f"{format_count(f.appended)} new, {format_count(f.duplicates)} "
                  f"already there; {f.append_events_per_s:,.0f} events/s")
    table.add_row("replay", f"{format_count(f.replayed)} read back by group {f.group}; "
                  f"{f.replay_events_per_s:,.0f} events/s")
    table.add_row("exactly once", mark("exactly_once"))
    table.add_row("dead letters", f"{format_count(f.dead_letters)} {mark('no_dead_letters')}")
    table.add_row("offsets", f"end {f.end_offsets}, committed {f.committed}")
    table.add_row("lag", f"{format_count(f.lag)} {mark('no_lag')}")
    table.add_row("seek", f"{f.seek.event_time} → offsets {f.seek.offsets}, first event at "
                  f"{f.seek.found} {mark('seek')}")
    out().print(table)
    out().print(f"Explore it: headwater --log {f.log} topics describe {f.topic}", soft_wrap=True)
