"""``headwater consume``: read a topic through a consumer group, print, commit.

Reads from the group's committed offsets (or from ``--reset`` for a new group) until
the topic has nothing more or ``--max`` events were read, prints the events and commits
the new positions, so the next run of the same group starts where this one stopped.
"""

from __future__ import annotations

from typing import Annotated

import typer

from headwater.cli.common import format_count, state_of, status
from headwater.cli.render import EventFormat, print_events
from headwater.log.consumer import Reset

__all__ = ["consume"]

_POLL_EVENTS = 10_000


def consume(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="The topic to read.")],
    group: Annotated[str, typer.Option(help="The consumer group (commits its offsets).")],
    max_events: Annotated[int | None, typer.Option(
        "--max", min=1, help="Stop after this many events (default: read to the end).")] = None,
    reset: Annotated[Reset, typer.Option(
        help="Where a group with no committed offset starts.")] = "earliest",
    fmt: Annotated[EventFormat, typer.Option("--format", help="How to print events.")
    ] = "table",
    commit: Annotated[bool, typer.Option(
        "--commit/--no-commit", help="Commit the offsets read.")] = True,
    wait: Annotated[float, typer.Option(
        min=0.0, help="Seconds to wait for new events once the end is reached.")] = 0.0,
) -> None:
    """Read TOPIC as a member of a consumer group and print the events."""
    read = 0
    with state_of(ctx).open_log() as log, log.consumer(group, topic, reset=reset) as consumer:
        while max_events is None or read < max_events:
            budget = _POLL_EVENTS if max_events is None else min(_POLL_EVENTS, max_events - read)
            fetched = consumer.poll(max_events=budget, timeout_s=wait)
            if not fetched:
                break
            read += print_events(fetched, fmt)
        if commit:
            consumer.commit()
        lag = sum(consumer.lag().values())
    done = "committed" if commit else "not committed"
    status().print(f"consumed {format_count(read)} events from {topic} as group {group} "
                   f"({done}; {format_count(lag)} left)")
