"""The feature engine: keeps features fresh from the log, exactly once.

The engine reads the source topics through a consumer group (several engine processes
in one group split the partitions), runs one :class:`~headwater.features.task.FeatureTask`
per owned partition (one over all of a topic's partitions when features are keyed by a
column other than the topic's key: such a topic is computed by one member), writes the
changed entities to the online store after every micro-batch, and checkpoints each
task's state with its position every ``checkpoint_events`` events and on close. The
feature history receives a checkpoint's events just before the checkpoint commits, named
by it, so after a crash the engine resumes from the last checkpoint, discards history
written after it, and recomputes the rest: the stores end up exactly as after an uninterrupted run.

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
from headwater.features.definitions import Feature, key_column
from headwater.features.task import FeatureTask, Update, late_dead_letters
from headwater.fsync import FsyncPolicy
from headwater.log import Log

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["FeatureEngine", "History", "OnlineWriter", "backfill", "task_partitions"]


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
    return grouped


def task_partitions(log: Log, topic: str, features: Sequence[Feature], partition: int
                    ) -> tuple[int, ...]:
    """The partitions of the task that computes ``features`` of ``partition``: that one
    partition when every feature is keyed by the topic's key, else all of them (an
    entity keyed by another column has events in every partition)."""
    info = log.topic(topic)
    if all(key_column(f) == info.schema.key for f in features):
        return (partition,)
    return tuple(range(info.partitions))


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
        #: The task of each owned partition (one task over all of a topic's partitions
        #: is the task of each of them).
        self.tasks: dict[tuple[str, int], FeatureTask] = {}
        self._since_checkpoint = 0
        #: Late events met per topic (not applied; kept in the topic's dead-letter topic).
        self.late: Counter[str] = Counter()

    def _reconcile(self) -> None:
        """Follow the group: drop tasks of partitions lost, open tasks for those gained.

        The group decides only who owns what; positions are the tasks' own, restored from
        their checkpoints (never the group's committed offsets).
        """
        owned = set(self.consumer.assignment())
        lost = {id(t) for k, t in self.tasks.items() if k not in owned}
        for key in [k for k, t in self.tasks.items() if id(t) in lost]:
            del self.tasks[key]  # another member owns it now and resumes it from its checkpoint
        for topic, partition in sorted(owned - set(self.tasks)):
            partitions = task_partitions(self.log, topic, self.features[topic], partition)
            if not owned.issuperset((topic, p) for p in partitions):
                raise ValidationError(
                    "group", f"features of {topic!r} keyed by a column other than its key "
                    f"read all its {len(partitions)} partitions, but this member of the "
                    "group owns only some: run one engine process for them")
            task = open_task(self.log, topic, partitions, self.features[topic],
                             self.state_dir, self.history)
            for p, lane in task.lanes.items():
                start, _ = self.log.backend.offsets(topic, p)
                if lane.position < start:
                    raise ValidationError(
                        "position", f"{lane.name}: events {lane.position}..{start - 1} were "
                        "removed by retention before the engine applied them; backfill from "
                        "the history")
                self.tasks[(topic, p)] = task

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
            position, got = task.lanes[partition].position, 0
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
            updates, late = task.process(batch, partition)
            late_dead_letters(self.log, task, late, partition)
            if late.num_rows:
                self.late[topic] += late.num_rows
            self._write(task, updates)
            count += got
        return count

    def _write(self, task: FeatureTask, updates: list[Update]) -> None:
        for namespace, entities, columns in updates:
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
        for task in {id(t): t for t in self.tasks.values()}.values():
            commit_task(task, self.state_dir, self.history, fsync=self.fsync)
        owned = set(self.consumer.assignment())
        progress = {k: t.lanes[k[1]].position for k, t in self.tasks.items() if k in owned}
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


def _checkpoints(state_dir: Path, task: FeatureTask) -> Path:
    """Where a task's checkpoints are: by partition, or ``all`` for a task over all."""
    return state_dir / task.topic.name / ("all" if task.whole else str(task.partition))


def open_task(log: Log, topic: str, partitions: int | Sequence[int],
              features: Sequence[Feature], state_dir: Path, history: History | None
              ) -> FeatureTask:
    """A task restored from its last checkpoint (or fresh), history trimmed to match."""
    task = FeatureTask(log.topic(topic), partitions, features)
    current = CheckpointStore(_checkpoints(state_dir, task)).current()
    if current is not None:
        task.restore(*current)
    if history is not None:
        for lane in task.lanes.values():
            history.discard_after(topic, lane.name, task.checkpoint_id)
    return task


def commit_task(task: FeatureTask, state_dir: Path, history: History | None, *,
                fsync: FsyncPolicy) -> None:
    """Checkpoint a task; its applied events go to the history first, by partition."""
    task.checkpoint_id += 1
    for p, lane in task.lanes.items():
        table = task.take_history(p)
        if history is not None and table is not None:
            history.write(task.topic.name, table, checkpoint=task.checkpoint_id,
                          task=lane.name, position=lane.position, watermark=lane.watermark,
                          lateness=task.lateness)
    CheckpointStore(_checkpoints(state_dir, task), fsync=fsync).commit(*task.snapshot())


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
    chosen = list(partitions or [(t, p) for t in grouped
                                 for p in range(log.topic(t).partitions)])
    count = 0
    done: set[tuple[str, int]] = set()
    for topic, partition in chosen:
        if (topic, partition) in done:
            continue
        lanes = task_partitions(log, topic, grouped[topic], partition)
        if not set(chosen).issuperset((topic, p) for p in lanes):
            raise ValidationError(
                "partitions", f"features of {topic!r} keyed by a column other than its key "
                f"read all its {len(lanes)} partitions: backfill them together")
        task = FeatureTask(log.topic(topic), lanes, grouped[topic])
        for p in lanes:
            task.lanes[p].position = log.backend.offsets(topic, p)[0]
            for fetched in log.replay(topic, [p], max_events=batch_events):
                updates, late = task.process(fetched.batch, p)
                late_dead_letters(log, task, late, p)
                for namespace, entities, columns in updates:
                    online.write_columns(namespace, entities, columns)
                count += fetched.batch.num_rows
            done.add((topic, p))
        commit_task(task, Path(state_dir), history, fsync=fsync)
    return count
