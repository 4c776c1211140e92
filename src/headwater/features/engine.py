"""The feature engine: keeps features fresh from the log, exactly once.

The engine reads the source topics through a consumer group (several engine processes
in one group split the partitions), runs one :class:`~headwater.features.task.FeatureTask`
per owned partition, writes the changed entities to the online store after every
micro-batch, and checkpoints each task's state with its position every
``checkpoint_events`` events and on close. The feature history receives a checkpoint's
events just before the checkpoint commits, named by it, so after a crash the engine
resumes from the last checkpoint, discards history written after it, and recomputes the
rest: the stores end up exactly as after an uninterrupted run.

:func:`backfill` drives the same tasks over a replay of the log.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from headwater.errors import ValidationError
from headwater.features.checkpoint import CheckpointStore
from headwater.features.definitions import Feature
from headwater.features.task import FeatureTask, Update, late_dead_letters
from headwater.fsync import FsyncPolicy
from headwater.log import Log

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["FeatureEngine", "History", "OnlineWriter", "backfill"]


class OnlineWriter(Protocol):
    """Where the changed entities of each micro-batch go (an online store: every
    :class:`~headwater.store.online.OnlineStore` is one)."""

    def write_columns(self, namespace: str, entities: Sequence[str],
                      columns: Mapping[str, Sequence[bytes]]) -> None: ...


class History(Protocol):
    """Where a task's applied events go at each checkpoint (the feature history)."""

    def write(self, source: str, batch: pa.Table, *, checkpoint: int, task: str,
              position: int | None = None, watermark: int | None = None,
              lateness: int | None = None) -> None: ...

    def discard_after(self, source: str, task: str, checkpoint: int) -> None: ...


def _by_topic(features: Sequence[Feature]) -> dict[str, list[Feature]]:
    grouped: dict[str, list[Feature]] = {}
    for feature in features:
        grouped.setdefault(feature.source.topic, []).append(feature)
    for topic, group in grouped.items():
        if len({f.entity for f in group}) != 1:
            raise ValidationError("features", f"features of {topic!r} describe several entities")
    return grouped


class FeatureEngine:
    """Consumes the source topics and keeps the online store and history current."""

    def __init__(
        self,
        log: Log,
        features: Sequence[Feature],
        online: OnlineWriter,
        *,
        state_dir: str | Path,
        history: History | None = None,
        group: str = "features",
        member: str | None = None,
        checkpoint_events: int = 1_000_000,
        fsync: FsyncPolicy = "group",
    ) -> None:
        self.log = log
        self.fsync: FsyncPolicy = fsync
        self.online = online
        self.history = history
        self.state_dir = Path(state_dir)
        self.checkpoint_events = checkpoint_events
        self.features = _by_topic(features)
        self.consumer = log.consumer(group, sorted(self.features), member=member)
        self.tasks: dict[tuple[str, int], FeatureTask] = {}
        self._since_checkpoint = 0
        #: Late events met per topic (not applied; kept in the topic's dead-letter topic).
        self.late: Counter[str] = Counter()
        #: Events applied per topic (the late ones are counted in ``late``).
        self.applied: Counter[str] = Counter()

    def _reconcile(self) -> None:
        """Follow the group: drop tasks of partitions lost, open tasks for those gained.

        The group decides only who owns what; positions are the tasks' own, restored from
        their checkpoints (never the group's committed offsets).
        """
        owned = set(self.consumer.assignment())
        for key in [k for k in self.tasks if k not in owned]:
            del self.tasks[key]  # another member owns it now and resumes it from its checkpoint
        for topic, partition in sorted(owned - set(self.tasks)):
            task = open_task(self.log, topic, partition, self.features[topic], self.state_dir,
                             self.history)
            start, _ = self.log.backend.offsets(topic, partition)
            if task.position < start:
                raise ValidationError(
                    "position", f"{task.name}: events {task.position}..{start - 1} were removed "
                    "by retention before the engine applied them; backfill from the history"
                )
            self.tasks[(topic, partition)] = task

    def step(self, max_events: int = 100_000, timeout_s: float = 0.0) -> int:
        """Process what is there (up to ``max_events``); return the events applied.

        Waits up to ``timeout_s`` when nothing is there.
        """
        self._reconcile()
        deadline = time.monotonic() + timeout_s
        count = self._step_once(max_events)
        while not count and time.monotonic() < deadline:
            time.sleep(min(0.002, max(0.0, deadline - time.monotonic())))
            count = self._step_once(max_events)
        self._since_checkpoint += count
        if self._since_checkpoint >= self.checkpoint_events:
            self.checkpoint()
        return count

    def _step_once(self, max_events: int) -> int:
        """Read each owned partition from its task's position, one pass and one write
        per partition."""
        count = 0
        for (topic, partition), task in sorted(self.tasks.items()):
            budget = max_events - count
            if budget <= 0:
                break
            batches: list[pa.RecordBatch] = []
            position, got = task.position, 0
            while got < budget:
                batch = self.log.backend.read(topic, partition, position + got, budget - got)
                if not batch.num_rows:
                    break
                batches.append(batch)
                got += batch.num_rows
            if not batches:
                continue
            # Several reads go on as one table of their batches: no copy into one batch.
            batch = batches[0] if len(batches) == 1 else pa.Table.from_batches(batches)
            updates, late = task.process(batch)
            late_dead_letters(self.log, task, late)
            if late.num_rows:
                self.late[topic] += late.num_rows
            self.applied[topic] += got - late.num_rows
            self._write(task, updates)
            count += got
        return count

    def _write(self, task: FeatureTask, updates: list[Update]) -> None:
        namespace = task.features[0].entity.name
        for entities, columns in updates:
            self.online.write_columns(namespace, entities, columns)

    def run(self, *, idle_timeout_s: float | None = None, poll_timeout_s: float = 0.05,
            stop: threading.Event | None = None, report: Callable[[], None] | None = None,
            report_every_s: float = 5.0) -> None:
        """Process until no event arrives for ``idle_timeout_s`` (forever if ``None``) or
        ``stop`` is set (checked between steps, never inside one). ``report`` is called
        every ``report_every_s`` seconds and once at the end."""
        idle_since = reported = time.monotonic()
        try:
            while stop is None or not stop.is_set():
                if self.step(timeout_s=poll_timeout_s):
                    idle_since = time.monotonic()
                elif (idle_timeout_s is not None
                      and time.monotonic() - idle_since > idle_timeout_s):
                    return
                if report is not None and time.monotonic() - reported >= report_every_s:
                    report()
                    reported = time.monotonic()
        finally:
            if report is not None:
                report()

    def checkpoint(self) -> None:
        """Commit every task's state with its position (and its history)."""
        for task in self.tasks.values():
            commit_task(task, self.state_dir, self.history, fsync=self.fsync)
        owned = set(self.consumer.assignment())
        progress = {k: t.position for k, t in self.tasks.items() if k in owned}
        if progress:  # for lag reports; the checkpoints are what the engine resumes from
            self.consumer.commit(progress)
        self._since_checkpoint = 0

    def close(self) -> None:
        self._reconcile()
        self.checkpoint()
        self.consumer.close()

    def __enter__(self) -> FeatureEngine:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_task(log: Log, topic: str, partition: int, features: Sequence[Feature],
              state_dir: Path, history: History | None) -> FeatureTask:
    """A task restored from its last checkpoint (or fresh), history trimmed to match."""
    task = FeatureTask(log.topic(topic), partition, features)
    store = CheckpointStore(state_dir / topic / str(partition))
    current = store.current()
    if current is not None:
        task.restore(*current)
    if history is not None:
        history.discard_after(topic, task.name, task.checkpoint_id)
    return task


def commit_task(task: FeatureTask, state_dir: Path, history: History | None, *,
                fsync: FsyncPolicy) -> None:
    task.checkpoint_id += 1
    table = task.take_history()
    if history is not None and table is not None:
        history.write(task.topic.name, table, checkpoint=task.checkpoint_id, task=task.name,
                      position=task.position, watermark=task.watermark,
                      lateness=task.lateness)
    CheckpointStore(state_dir / task.topic.name / str(task.partition),
                    fsync=fsync).commit(*task.snapshot())


def backfill(
    log: Log,
    features: Sequence[Feature],
    online: OnlineWriter,
    *,
    state_dir: str | Path,
    history: History | None = None,
    partitions: Iterable[tuple[str, int]] | None = None,
    batch_events: int = 1_000_000,
    fsync: FsyncPolicy = "group",
) -> int:
    """Compute features from the start of the log to its current end, with the same tasks
    as the live engine, in big batches; return the events applied."""
    grouped = _by_topic(features)
    chosen = partitions or [(t, p) for t in grouped for p in range(log.topic(t).partitions)]
    count = 0
    for topic, partition in chosen:
        task = FeatureTask(log.topic(topic), partition, grouped[topic])
        task.position = log.backend.offsets(topic, partition)[0]
        for fetched in log.replay(topic, [partition], max_events=batch_events):
            updates, late = task.process(fetched.batch)
            late_dead_letters(log, task, late)
            for entities, columns in updates:
                online.write_columns(task.features[0].entity.name, entities, columns)
            count += fetched.batch.num_rows
        commit_task(task, Path(state_dir), history, fsync=fsync)
    return count
