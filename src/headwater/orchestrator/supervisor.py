"""A supervisor: components as separate processes, restarted when they stop.

Each :class:`Component` is a command line (usually ``python -m headwater …``). The
:class:`Supervisor` starts them all, watches them, and restarts one that exits — crash
or not — after a back-off that doubles with each quick failure (from ``backoff_s`` up to
``max_backoff_s``) and resets once it has stayed up for ``healthy_s``. A component
never waits on another: the prediction server keeps answering while a trainer is
restarted.

A component that can never start (a definition it refuses, a setting it cannot use)
would be restarted into the same crash forever. So a component that exits quickly with
the same exit code ``max_failures`` times in a row is *failed*: it is not started
again, and :meth:`Supervisor.run` stops every other component and raises
:class:`~headwater.errors.ComponentFailedError` naming it, with its last exit codes and
the last lines of its output (``headwater run`` exits 1 with them). Stopping the whole
run is the choice here: a loop missing its engine, joiner or trainer keeps answering
with stale features or models and says nothing, which is worse than stopping loudly.

:meth:`Supervisor.stop` sends SIGTERM to every process group, then SIGKILL to those still
running after ``grace_s``; :meth:`Supervisor.run` calls it however it ends (its
``stop`` event set by a signal handler, an error, ``until()``). On Linux every child
also asks the kernel for SIGTERM when the supervisor dies (``PR_SET_PDEATHSIG``), so a
supervisor killed with SIGKILL leaves no component running.

Each component writes its output to ``<log_dir>/<name>.log``, to this process's own
standard output and error with ``inherit_output``, or nowhere.

The decisions (:meth:`Supervisor.poll`) take the time as an argument, so tests drive
them without sleeping.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from headwater.errors import ComponentFailedError, ValidationError

__all__ = ["Component", "Supervisor"]

_PR_SET_PDEATHSIG: Final = 1
_TAIL_BYTES: Final = 4096
_TAIL_LINES: Final = 12


@dataclass(frozen=True)
class Component:
    """A named command to keep running."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.argv:
            raise ValidationError("component", "a component needs a name and a command")


@dataclass
class _Running:
    component: Component
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    backoff: float = 0.0
    exits: list[int] = field(default_factory=list)
    quick_failures: int = 0
    failure: ComponentFailedError | None = None
    output_from: int = 0  # where the current process's output starts in its log file


class Supervisor:
    """Starts, watches and restarts :class:`Component` processes (see the module)."""

    def __init__(self, components: Sequence[Component], *, log_dir: str | Path | None = None,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, healthy_s: float = 10.0,
                 grace_s: float = 10.0, max_failures: int = 5,
                 on_event: Callable[[str, str], None] | None = None,
                 inherit_output: bool = False) -> None:
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise ValidationError("components", "component names repeat")
        if max_failures < 1:
            raise ValidationError("max_failures", f"expected at least 1, got {max_failures}")
        self.running = {c.name: _Running(c) for c in components}
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.inherit_output = inherit_output
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.healthy_s = healthy_s
        self.grace_s = grace_s
        self.max_failures = max_failures
        self.on_event = on_event or (lambda name, what: None)
        self._logs: list[IO[bytes]] = []

    def start(self, now: float | None = None) -> None:
        """Start every component."""
        now = time.monotonic() if now is None else now
        for run in self.running.values():
            self._spawn(run, now)

    def _spawn(self, run: _Running, now: float) -> None:
        output: IO[bytes] | int | None = None if self.inherit_output else subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            handle = open(self._log_path(run), "ab")  # noqa: SIM115
            self._logs.append(handle)
            output = handle
            run.output_from = handle.seek(0, os.SEEK_END)
        run.process = subprocess.Popen(run.component.argv, stdout=output, stderr=output,
                                       env={**os.environ, **run.component.env},
                                       start_new_session=True,
                                       preexec_fn=_die_with(os.getpid()))
        run.started = now
        self.on_event(run.component.name, f"started (pid {run.process.pid})")

    def _log_path(self, run: _Running) -> Path:
        assert self.log_dir is not None
        return self.log_dir / f"{run.component.name}.log"

    @property
    def failed(self) -> dict[str, ComponentFailedError]:
        """The components given up on, with why."""
        return {name: run.failure for name, run in self.running.items()
                if run.failure is not None}

    def poll(self, now: float | None = None) -> list[str]:
        """Restart what stopped (once its back-off has passed); the names restarted. A
        component that failed the same way ``max_failures`` times in a row is marked
        failed (see :attr:`failed`) and left stopped."""
        now = time.monotonic() if now is None else now
        restarted = []
        for name, run in self.running.items():
            if run.failure is not None:
                continue
            process = run.process
            if process is not None:
                code = process.poll()
                if code is None:
                    if now - run.started >= self.healthy_s:
                        run.backoff = 0.0
                        run.quick_failures = 0
                    continue
                quick = now - run.started < self.healthy_s
                if not quick:
                    run.quick_failures = 0
                elif run.quick_failures and run.exits[-1] == code:  # the same way again
                    run.quick_failures += 1
                else:
                    run.quick_failures = 1
                run.exits.append(code)
                run.process = None
                if run.quick_failures >= self.max_failures:
                    run.failure = ComponentFailedError(
                        name, run.exits[-run.quick_failures:], self._tail(run))
                    self.on_event(name, f"exited with {code} {run.quick_failures} times in a "
                                  "row soon after starting: failed, not restarted")
                    continue
                run.backoff = (min(self.max_backoff_s, max(self.backoff_s, run.backoff * 2))
                               if quick else self.backoff_s)
                run.next_start = now + run.backoff
                self.on_event(name, f"exited with {code}; restart in {run.backoff:.1f} s")
            if run.process is None and now >= run.next_start:
                run.restarts += 1
                self._spawn(run, now)
                restarted.append(name)
        return restarted

    def _tail(self, run: _Running) -> str:
        """The last lines its last process wrote (none kept without a log directory)."""
        if self.log_dir is None:
            return ""
        try:
            with open(self._log_path(run), "rb") as f:
                f.seek(max(run.output_from, f.seek(0, os.SEEK_END) - _TAIL_BYTES))
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.strip().splitlines()[-_TAIL_LINES:])

    def run(self, *, interval_s: float = 0.2, until: Callable[[], bool] | None = None,
            stop: threading.Event | None = None) -> None:
        """Start everything and keep it running until ``until()`` is true or ``stop`` is
        set; every component is stopped however this ends. Raises
        :class:`~headwater.errors.ComponentFailedError` for a failed component."""
        stop = stop or threading.Event()
        self.start()
        try:
            while not stop.is_set() and (until is None or not until()):
                self.poll()
                failed = self.failed
                if failed:
                    raise next(iter(failed.values()))
                stop.wait(interval_s)
        finally:
            self.stop()

    def pid(self, name: str) -> int | None:
        process = self.running[name].process
        return None if process is None else process.pid

    def stop(self) -> None:
        """SIGTERM every process; SIGKILL those still running after the grace period."""
        live = [run.process for run in self.running.values() if run.process is not None]
        for process in live:
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for process in live:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for name, run in self.running.items():
            if run.process is not None:
                self.on_event(name, f"stopped (exit {run.process.returncode})")
            run.process = None
        for handle in self._logs:
            handle.close()
        self._logs.clear()


def _die_with(parent: int) -> Callable[[], None] | None:
    """What a child runs before its command on Linux: ask for SIGTERM when the parent
    dies, and leave at once if it already has. ``None`` elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork

    def arrange() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request was made
            os.kill(os.getpid(), signal.SIGTERM)

    return arrange
