"""The feature engine: keeps features fresh from the log, exactly once.

The engine reads the source topics through a consumer group (several engine processes
in one group split the partitions), runs one :class:`~headwater.features.task.FeatureTask`
per owned partition (one over all of a topic's partitions when features are keyed by a
column other than the topic's key: such a topic is computed by one member), writes the
changed entities to the online store after every micro-batch, and checkpoints each
task's state with its position every ``checkpoint_events`` events (or
``checkpoint_interval_s`` seconds with events) and on close. The feature history
receives a checkpoint's events just before the checkpoint commits, named by it, so after
a crash the engine resumes from the last checkpoint, discards history written after it,
and recomputes the rest: the stores end up exactly as after an uninterrupted run.

A partition moves between engines with its state when the checkpoints are on storage
they share (``state_dir`` an fsspec URL, or a directory both see): the new owner
resumes from the last checkpoint. Its writes to the online store are fenced: taking a
partition over, an engine claims it in the store (a new epoch, see
:meth:`~headwater.store.online.OnlineStore.claim`), after which the previous owner's
writes are refused; and every write records how far the partition was applied
(``applied:<topic>:<partition>``), so the new owner writes nothing until it has
passed that point. Served values therefore never go back while a partition moves,
even though the checkpoint it resumes from is older than what was served.

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

from headwater.errors import FencedError, ValidationError
from headwater.features.checkpoint import open_checkpoints
from headwater.features.definitions import Feature, key_column
from headwater.features.task import FeatureTask, Update, late_dead_letters
from headwater.fsync import FsyncPolicy
from headwater.log import Log
from headwater.repeat import run_until_idle

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["FeatureEngine", "History", "OnlineWriter", "backfill", "task_partitions"]


class OnlineWriter(Protocol):
    """Where the changed entities of each micro-batch go (an online store: every
    :class:`~headwater.store.online.OnlineStore` is one)."""

    def write_columns(self, namespace: str, entities: Sequence[str],
                      columns: Mapping[str, Sequence[bytes]], *,
                      meta: Mapping[str, bytes] | None = None,
                      fence: tuple[str, int] | None = None) -> None: ...

    def claim(self, namespace: str, key: str) -> int: ...

    def meta_get(self, namespace: str, key: str) -> bytes | None: ...


class Ownership:
    """An engine's claim on one partition in the online store: its epoch there, and
    the position the partition's values were written up to when it was claimed."""

    __slots__ = ("applied", "epoch", "namespace", "partition", "topic")

    def __init__(self, online: OnlineWriter, namespace: str, topic: str, partition: int
                 ) -> None:
        self.namespace, self.topic, self.partition = namespace, topic, partition
        self.epoch = online.claim(namespace, self.fence_key)
        applied = online.meta_get(namespace, self.applied_key)
        self.applied = -1 if applied is None else int(applied)

    @property
    def fence_key(self) -> str:
        return f"epoch:{self.topic}:{self.partition}"

    @property
    def applied_key(self) -> str:
        return f"applied:{self.topic}:{self.partition}"

    @property
    def fence(self) -> tuple[str, int]:
        return self.fence_key, self.epoch


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
        checkpoint_interval_s: float | None = None,
        fsync: FsyncPolicy = "group",
    ) -> None:
        if checkpoint_interval_s is not None and checkpoint_interval_s <= 0:
            raise ValidationError("checkpoint_interval_s",
                                  f"expected a positive number, got {checkpoint_interval_s}")
        self.log = log
        self.checkpoint_interval_s = checkpoint_interval_s
        self._checkpointed_at = time.monotonic()
        self.fsync: FsyncPolicy = fsync
        self.online = online
        self.history = history
        self.state_dir = state_dir
        self.checkpoint_events = checkpoint_events
        self.features = _by_topic(features)
        self.consumer = log.consumer(group, sorted(self.features), member=member)
        #: The task of each owned partition (one task over all of a topic's partitions
        #: is the task of each of them).
        self.tasks: dict[tuple[str, int], FeatureTask] = {}
        #: The claims on each owned partition, one per entity its task writes.
        self.owned: dict[tuple[str, int], list[Ownership]] = {}
        #: Partitions taken over: (topic, partition, the offset resumed from), in order.
        self.resumed: list[tuple[str, int, int]] = []
        #: Partitions given up because another engine claimed them while this one wrote.
        self.fenced: list[tuple[str, int]] = []
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
        lost = {id(t) for k, t in self.tasks.items() if k not in owned}
        for key in [k for k, t in self.tasks.items() if id(t) in lost]:
            if key in self.tasks:
                # Another member owns it now and resumes it from its checkpoint: a fresh
                # one, unless that member has claimed it already.
                self._commit(key)
                self._drop(key)
        for topic, partition in sorted(owned - set(self.tasks)):
            features = self.features[topic]
            partitions = task_partitions(self.log, topic, features, partition)
            if not owned.issuperset((topic, p) for p in partitions):
                raise ValidationError(
                    "group", f"features of {topic!r} keyed by a column other than its key "
                    f"read all its {len(partitions)} partitions, but this member of the "
                    "group owns only some: run one engine process for them")
            namespaces = list(dict.fromkeys(f.entity.name for f in features))
            ownerships = {p: [Ownership(self.online, namespace, topic, p)  # before reading
                              for namespace in namespaces] for p in partitions}
            task = open_task(self.log, topic, partitions, features, self.state_dir,
                             self.history)
            for p, lane in task.lanes.items():
                start, _ = self.log.backend.offsets(topic, p)
                if lane.position < start:
                    raise ValidationError(
                        "position", f"{lane.name}: events {lane.position}..{start - 1} were "
                        "removed by retention before the engine applied them; backfill from "
                        "the history")
                self.tasks[(topic, p)] = task
                self.owned[(topic, p)] = ownerships[p]
                self.resumed.append((topic, p, lane.position))

    def _keys_of(self, task: FeatureTask) -> list[tuple[str, int]]:
        """The partitions a task computes (one, or all of its topic's)."""
        return [k for k, t in self.tasks.items() if t is task]

    def _commit(self, key: tuple[str, int]) -> None:
        """Checkpoint the task of a partition, if the engine still holds the epoch of
        every partition it computes (an engine fenced off must not move the checkpoint
        of the one that claimed it)."""
        task = self.tasks[key]
        ownerships = [o for k in self._keys_of(task) for o in self.owned[k]]
        try:
            for o in ownerships:
                self.online.write_columns(o.namespace, [], {}, fence=o.fence)
            try:
                commit_task(task, self.state_dir, self.history, fsync=self.fsync)
            except OSError:
                # The engine that claimed the partition meanwhile may have trimmed the
                # history under this commit: then the failure is expected, and the
                # partition is that engine's now.
                for o in ownerships:
                    self.online.write_columns(o.namespace, [], {}, fence=o.fence)
                raise
        except FencedError:
            self._fenced(task)

    def _fenced(self, task: FeatureTask) -> None:
        for k in self._keys_of(task):
            self._drop(k)
            self.fenced.append(k)

    def _drop(self, key: tuple[str, int]) -> None:
        self.tasks.pop(key, None)
        self.owned.pop(key, None)

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
        if self._since_checkpoint >= self.checkpoint_events or (
                self._since_checkpoint and self.checkpoint_interval_s is not None
                and time.monotonic() - self._checkpointed_at >= self.checkpoint_interval_s):
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
            self.applied[topic] += got - late.num_rows
            self._write((topic, partition), task, updates)
            count += got
        return count

    def _write(self, key: tuple[str, int], task: FeatureTask, updates: list[Update]) -> None:
        """Write a micro-batch's updates under the partition's epoch, unless the store
        holds values of a later position already (written by the previous owner)."""
        position = task.lanes[key[1]].position
        ownerships = {o.namespace: o for o in self.owned[key]}
        try:
            for namespace, entities, columns in updates:
                ownership = ownerships[namespace]
                if position <= ownership.applied:
                    continue  # replaying what the previous owner applied and wrote
                applied = {ownership.applied_key: str(position).encode()}
                self.online.write_columns(namespace, entities, columns, meta=applied,
                                          fence=ownership.fence)
        except FencedError:  # another engine claimed the partition: it carries on
            self._fenced(task)

    def run(self, *, idle_timeout_s: float | None = None, poll_timeout_s: float = 0.05,
            stop: threading.Event | None = None, report: Callable[[], None] | None = None,
            report_every_s: float = 5.0) -> None:
        """Process until no event arrives for ``idle_timeout_s`` (forever if ``None``) or
        ``stop`` is set (checked between steps, never inside one). ``report`` is called
        every ``report_every_s`` seconds and once at the end."""
        reported = time.monotonic()

        def step() -> bool:
            nonlocal reported
            done = self.step(timeout_s=poll_timeout_s) > 0
            if report is not None and time.monotonic() - reported >= report_every_s:
                report()
                reported = time.monotonic()
            return done

        try:
            run_until_idle(step, idle_timeout_s=idle_timeout_s, stop=stop)
        finally:
            if report is not None:
                report()

    def checkpoint(self) -> None:
        """Commit every task's state with its position (and its history)."""
        for task in {id(t): t for t in self.tasks.values()}.values():
            keys = self._keys_of(task)
            if keys:
                self._commit(keys[0])
        owned = set(self.consumer.assignment())
        progress = {k: t.lanes[k[1]].position for k, t in self.tasks.items() if k in owned}
        if progress:  # for lag reports; the checkpoints are what the engine resumes from
            self.consumer.commit(progress)
        self._since_checkpoint = 0
        self._checkpointed_at = time.monotonic()

    def close(self) -> None:
        self._reconcile()
        self.checkpoint()
        self.consumer.close()

    def __enter__(self) -> FeatureEngine:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _slot(task: FeatureTask) -> str:
    """Where a task's checkpoints are: by partition, or ``all`` for a task over all."""
    return "all" if task.whole else str(task.partition)


def open_task(log: Log, topic: str, partitions: int | Sequence[int],
              features: Sequence[Feature], state_dir: str | Path, history: History | None
              ) -> FeatureTask:
    """A task restored from its last checkpoint (or fresh), history trimmed to match.
    ``state_dir`` is a directory or an fsspec URL (checkpoints shared by engines)."""
    task = FeatureTask(log.topic(topic), partitions, features)
    current = open_checkpoints(state_dir, topic, _slot(task)).current()
    if current is not None:
        task.restore(*current)
    if history is not None:
        for lane in task.lanes.values():
            history.discard_after(topic, lane.name, task.checkpoint_id)
    return task


def commit_task(task: FeatureTask, state_dir: str | Path, history: History | None, *,
                fsync: FsyncPolicy) -> None:
    """Checkpoint a task; its applied events go to the history first, by partition."""
    task.checkpoint_id += 1
    for p, lane in task.lanes.items():
        table = task.take_history(p)
        if history is not None and table is not None:
            history.write(task.topic.name, table, checkpoint=task.checkpoint_id,
                          task=lane.name, position=lane.position, watermark=lane.watermark,
                          lateness=task.lateness)
    open_checkpoints(state_dir, task.topic.name, _slot(task),
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
        commit_task(task, state_dir, history, fsync=fsync)
    return count
