"""``headwater tail``: the last events of every partition, then (``--follow``) new ones."""

from __future__ import annotations

import time
from typing import Annotated, Final

import typer

from headwater.cli.common import state_of
from headwater.cli.render import EventFormat, print_events
from headwater.errors import OffsetOutOfRangeError
from headwater.log import Fetched, Log

__all__ = ["tail"]

_POLL_SECONDS: Final = 0.2
_READ_EVENTS: Final = 10_000


def tail(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The topic to show.")],
    lines: Annotated[int, typer.Option(
        "-n", "--lines", min=0, help="Events to show from the end of each partition.")] = 10,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing new events until Ctrl-C.")] = False,
    timeout: Annotated[float | None, typer.Option(
        min=0.0, help="With --follow, stop after this many seconds.")] = None,
    fmt: Annotated[EventFormat, typer.Option("--format", help="How to print events.")
    ] = "table",
) -> None:
    """Print the last events of every partition of TOPIC (no consumer group)."""
    with state_of(ctx).open_log() as log:
        partitions = range(log.topic(topic).partitions)
        starts, ends = log.start_offsets(topic), log.end_offsets(topic)
        positions = {p: max(starts[p], ends[p] - lines) for p in partitions}
        print_events([log.read(topic, p, positions[p], max(lines, 1)) for p in partitions
                      if positions[p] < ends[p]], fmt)
        positions = dict(enumerate(ends))
        if not follow:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while deadline is None or time.monotonic() < deadline:
                fetched = [_read_new(log, topic, p, positions) for p in partitions]
                if not print_events(fetched, fmt):
                    time.sleep(_POLL_SECONDS)
        except KeyboardInterrupt:
            return


def _read_new(log: Log, topic: str, partition: int, positions: dict[int, int]) -> Fetched:
    """Events past this partition's position (from its start if retention passed it)."""
    try:
        fetched = log.read(topic, partition, positions[partition], _READ_EVENTS)
    except OffsetOutOfRangeError:
        fetched = log.read(topic, partition, log.start_offsets(topic)[partition], _READ_EVENTS)
    positions[partition] = fetched.next_offset
    return fetched
