"""What every command shares: the settings and log location, consoles, errors, progress.

Commands print results on standard output and everything else (progress, status lines,
errors) on standard error, so ``headwater consume … --format jsonl | jq`` stays clean.
A :class:`~headwater.errors.HeadwaterError` becomes one red ``error: <message>`` line
and exit code 2 for bad input (:class:`~headwater.errors.ValidationError`,
:class:`~headwater.errors.ConfigError`) or 1 for anything else.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from headwater.config import Settings
from headwater.errors import ConfigError, HeadwaterError, ValidationError
from headwater.locations import check_shared
from headwater.log import Log, open_log
from headwater.time import format_duration

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILURE",
    "CliState",
    "exit_code",
    "format_count",
    "format_duration",
    "out",
    "print_error",
    "progress_bar",
    "read_token_file",
    "split_names",
    "state_of",
    "status",
    "warn_unbounded",
]

#: Exit code for bad input: arguments, files, settings.
EXIT_BAD_INPUT: Final = 2
#: Exit code for every other failure.
EXIT_FAILURE: Final = 1


@dataclass(frozen=True, slots=True)
class CliState:
    """What the global options decided: the settings and where the log is."""

    settings: Settings
    location: str

    def open_log(self) -> Log:
        """The log at ``location``; refused when it lives inside this process only."""
        return open_log(check_shared(self.location, "--log"), settings=self.settings)


def state_of(ctx: typer.Context) -> CliState:
    """The state the root command stored on the context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        raise ConfigError("the command was run without the headwater root command")
    return obj


#: The width of output that is not a terminal (a file, a pipe, CI's log), where nothing
#: wraps it again: wide enough that a table keeps its columns whole instead of being cut
#: to Rich's 80 columns (``COLUMNS`` still decides when it is set).
PIPED_WIDTH: Final = 1000


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPED_WIDTH
    return console


def out() -> Console:
    """The console for results (standard output)."""
    return _console(stderr=False)


def status() -> Console:
    """The console for progress, status and errors (standard error)."""
    return _console(stderr=True)


def exit_code(error: HeadwaterError) -> int:
    """2 for bad input (arguments, files, settings), 1 for any other failure."""
    return EXIT_BAD_INPUT if isinstance(error, (ValidationError, ConfigError)) else EXIT_FAILURE


def print_error(error: HeadwaterError | OSError) -> None:
    """One red line on standard error: ``error: <message>``."""
    status().print(Text(f"error: {error}", style="red"), soft_wrap=True)


def progress_bar(console: Console, *, unit: Literal["bytes", "events"]) -> Progress:
    """A progress bar on ``console``, silent unless it is a terminal."""
    done = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        done,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def read_token_file(path: Path) -> str:
    """The admin token in ``path``; refused (:class:`ConfigError`) when other users may
    read or write the file, since the token moves aliases and routing."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"token file {path}: no such file") from None
    if mode & 0o006:
        raise ConfigError(f"token file {path} is readable or writable by other users "
                          f"(mode {stat.S_IMODE(mode):04o}): chmod 600 {path}")
    token = path.read_text().strip()
    if not token:
        raise ConfigError(f"token file {path} is empty")
    return token


def warn_unbounded(log: Log, topics: list[str]) -> None:
    """A warning for each of ``topics`` (ones a command is about to write) that keeps
    every event, so grows without bound."""
    for name in topics:
        kept = log.topic(name).retention
        if kept.max_age_us is None and kept.max_bytes is None:
            status().print(Text(
                f"warning: topic {name!r} keeps every event and grows without bound; give it "
                f"a retention: headwater topics retention {name} --retention 7d",
                style="yellow"), soft_wrap=True)


def split_names(text: str | None, *, option: str) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")``; an empty name is an error naming ``option``."""
    if text is None:
        return ()
    names = tuple(part.strip() for part in text.split(","))
    if any(not name for name in names):
        raise ValidationError(option, f"expected comma-separated names, got {text!r}")
    return names


def format_count(n: int) -> str:
    return f"{n:,}"
