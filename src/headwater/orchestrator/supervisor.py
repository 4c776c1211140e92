"""A supervisor: components as separate processes, restarted when they stop.

Each :class:`Component` is a command line (usually ``python -m headwater …``). The
:class:`Supervisor` starts them all, watches them, and restarts one that exits — crash
or not — after a back-off that doubles with each quick failure (from ``backoff_s`` up to
``max_backoff_s``) and resets once it has stayed up for ``healthy_s``. A component
never waits on another: the prediction server keeps answering while a trainer is
restarted. :meth:`Supervisor.stop` sends SIGTERM to every process, then SIGKILL to those
still running after ``grace_s``.

The decisions (:meth:`Supervisor.poll`) take the time as an argument, so tests drive
them without sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from headwater.errors import ValidationError

__all__ = ["Component", "Supervisor"]


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


class Supervisor:
    """Starts, watches and restarts :class:`Component` processes."""

    def __init__(self, components: Sequence[Component], *, log_dir: str | Path | None = None,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, healthy_s: float = 10.0,
                 grace_s: float = 10.0,
                 on_event: Callable[[str, str], None] | None = None) -> None:
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise ValidationError("components", "component names repeat")
        self.running = {c.name: _Running(c) for c in components}
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.healthy_s = healthy_s
        self.grace_s = grace_s
        self.on_event = on_event or (lambda name, what: None)
        self._logs: list[IO[bytes]] = []

    def start(self, now: float | None = None) -> None:
        """Start every component."""
        now = time.monotonic() if now is None else now
        for run in self.running.values():
            self._spawn(run, now)

    def _spawn(self, run: _Running, now: float) -> None:
        output: IO[bytes] | int = subprocess.DEVNULL
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            handle = open(self.log_dir / f"{run.component.name}.log", "ab")  # noqa: SIM115
            self._logs.append(handle)
            output = handle
        run.process = subprocess.Popen(run.component.argv, stdout=output, stderr=output,
                                       env={**os.environ, **run.component.env},
                                       start_new_session=True)
        run.started = now
        self.on_event(run.component.name, f"started (pid {run.process.pid})")

    def poll(self, now: float | None = None) -> list[str]:
        """Restart what stopped (once its back-off has passed); the names restarted."""
        now = time.monotonic() if now is None else now
        restarted = []
        for name, run in self.running.items():
            process = run.process
            if process is not None:
                code = process.poll()
                if code is None:
                    if now - run.started >= self.healthy_s:
                        run.backoff = 0.0
                    continue
                run.exits.append(code)
                run.process = None
                quick = now - run.started < self.healthy_s
                run.backoff = (min(self.max_backoff_s, max(self.backoff_s, run.backoff * 2))
                               if quick else self.backoff_s)
                run.next_start = now + run.backoff
                self.on_event(name, f"exited with {code}; restart in {run.backoff:.1f} s")
            if run.process is None and now >= run.next_start:
                run.restarts += 1
                self._spawn(run, now)
                restarted.append(name)
        return restarted

    def run(self, *, interval_s: float = 0.2, until: Callable[[], bool] | None = None) -> None:
        """Start everything and keep it running until ``until()`` is true or Ctrl-C."""
        self.start()
        try:
            while until is None or not until():
                self.poll()
                time.sleep(interval_s)
        except KeyboardInterrupt:
            pass
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
        for run in self.running.values():
            run.process = None
        for handle in self._logs:
            handle.close()
        self._logs.clear()

