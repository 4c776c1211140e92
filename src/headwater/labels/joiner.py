"""The label joiner: a consumer of predictions and outcomes that appends training examples.

Several joiner processes split the work through a consumer group of the log (``group``,
as feature engines do). The work comes in *slots* (:mod:`headwater.labels.task`): when
the predictions and outcomes topics are co-partitioned — the same number of partitions;
both are keyed by entity, so a request's prediction and its outcomes are in partitions of
the same number — slot ``p`` joins partition ``p`` of both, and the member of the group
that owns predictions partition ``p`` runs it. Otherwise one slot joins every partition
(:attr:`LabelJoiner.unsplit` says why), run by the owner of partition 0.

Each :meth:`LabelJoiner.step` reads what is new in each slot it owns (from the slot's
own positions), applies it to the slot's :class:`~headwater.labels.task.JoinTask`, and
appends the examples and the late outcomes. Each step is counted by
:attr:`LabelJoiner.progress` (:class:`~headwater.labels.progress.JoinProgress`), which
reports a status line and warns the moment the rule does not fit the outcomes (explicit
labels later than the window, clicks without a timeout label).

State. A slot's state lives in its own :class:`~headwater.labels.journal.Journal`
under ``state_dir``: a step appends what it read — a record proportional to the step,
whatever the number of open predictions — and the state is rewritten whole only now and
then, when the records have outgrown it.

Exactly once. A step first appends its record to the journal, then appends its
examples and late outcomes as an idempotent producer (one per slot, sequence = step
number). The examples of a step depend on the record only, so after a crash the joiner
replays the journal and appends the last step's results again with the same sequence
(the log drops what it has); a crash before the record redoes the step.

Fencing. Taking a slot claims its journal under a new epoch, and a joiner whose slot
was claimed by another one since can no longer add a record to it: its next step raises
:class:`~headwater.errors.FencedError`, which the joiner takes as the loss of the slot
(counted in :attr:`LabelJoiner.fenced`, said as a warning) — it leaves the slot alone
for ``retake_after_s``. What it may still append is the results of a step it recorded
before the claim, which the new owner appends too, with the same producer and sequence:
the log keeps them once. So whatever the group believes for a moment (a member that
stalled past its session, two groups by mistake), a slot's examples are written by one
history. The journal must be shared by the joiners that may take a slot over (one
``state_dir``); a joiner that finds a new step of its slot already in the log under its
own sequence — another joiner writing with other state, or its state reset — stops with
a :class:`~headwater.errors.ConfigError` rather than append the examples twice.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple

import msgspec
import pyarrow as pa

from headwater.errors import ConfigError, CorruptLogError, FencedError
from headwater.fsync import FsyncPolicy
from headwater.labels.join import Example, Joined, JoinRule, Late, outcomes_of, predictions_of
from headwater.labels.journal import Journal
from headwater.labels.progress import JoinProgress, JoinStep
from headwater.labels.schema import (
    LATE_OUTCOMES_SCHEMA,
    LATE_OUTCOMES_TOPIC,
    OUTCOMES_SCHEMA,
    OUTCOMES_TOPIC,
    PREDICTIONS_TOPIC,
    TRAINING_EXAMPLES_SCHEMA,
    TRAINING_EXAMPLES_TOPIC,
)
from headwater.labels.schema import ensure_predictions_readable as ensure_predictions
from headwater.labels.task import JoinTask, StepInput
from headwater.log import Log
from headwater.repeat import run_until_idle
from headwater.time import Clock, SystemClock

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["JoinStep", "LabelJoiner"]

# Late reasons of a label that came after its prediction's window: closed by timeout, or
# closed so long ago that the joiner no longer holds it (or never logged).
_AFTER_WINDOW: Final = frozenset({"window_closed", "unmatched"})
_TS: Final = pa.timestamp("us", tz="UTC")
_EXAMPLES: Final = TRAINING_EXAMPLES_SCHEMA.arrow_schema()
_LATE: Final = LATE_OUTCOMES_SCHEMA.arrow_schema()
_ENCODE: Final = msgspec.msgpack.Encoder().encode
_DECODE: Final = msgspec.msgpack.Decoder(StepInput).decode
_EARLIER_STATE: Final = "joiner.ckpt"
_NOTHING: Final = JoinStep(0, 0, 0, 0, 0)


class _Slot(NamedTuple):
    """A slot this joiner owns: what it reads, its task and journal, its producer id."""

    name: str
    reads: dict[str, list[int]]
    task: JoinTask
    journal: Journal
    producer: str


class LabelJoiner:
    """Joins ``predictions`` with ``outcomes`` into ``training_examples`` (see the module).

    ``group`` and ``member`` place the joiner in the consumer group that splits the
    slots (``member`` defaults to a fresh id); close it (or use ``with``) to hand its
    slots to the other members at once.
    """

    def __init__(self, log: Log, rule: JoinRule, *, state_dir: str | Path,
                 predictions: str = PREDICTIONS_TOPIC, outcomes: str = OUTCOMES_TOPIC,
                 examples: str = TRAINING_EXAMPLES_TOPIC, late: str = LATE_OUTCOMES_TOPIC,
                 clock: Clock | None = None, fsync: FsyncPolicy = "group",
                 producer_id: str = "label-joiner", group: str = "labels",
                 member: str | None = None, compact_bytes: int = 16 << 20,
                 retake_after_s: float = 5.0) -> None:
        self.log = log
        self.rule = rule
        self.topics = (predictions, outcomes)
        self.examples_topic = examples
        self.late_topic = late
        self.clock: Clock = clock or SystemClock()
        self.fsync: FsyncPolicy = fsync
        self.producer_id = producer_id
        self.compact_bytes = compact_bytes
        self.retake_after_s = retake_after_s
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if (self.state_dir / _EARLIER_STATE).exists():
            raise ConfigError(
                f"{self.state_dir / _EARLIER_STATE}: the state of an earlier label joiner, "
                "which kept one checkpoint for every partition; this one keeps a journal per "
                "partition. Finish with the earlier version, or move the state away to "
                "join from the start (examples already in the topic are then appended again)")
        ensure_predictions(log, predictions)
        partitions = log.topic(predictions).partitions
        log.ensure_topic(outcomes, OUTCOMES_SCHEMA, partitions=partitions)
        log.ensure_topic(examples, TRAINING_EXAMPLES_SCHEMA)
        log.ensure_topic(late, LATE_OUTCOMES_SCHEMA)
        counts = (partitions, log.topic(outcomes).partitions)
        #: Why one joiner joins every partition (the topics are not co-partitioned), or
        #: ``None`` when the slots are the partitions.
        self.unsplit: str | None = None
        if counts[0] != counts[1]:
            self.unsplit = (
                f"{predictions} has {counts[0]} partition{'s' * (counts[0] != 1)} and "
                f"{outcomes} {counts[1]}: they are not co-partitioned, so one joiner joins "
                "them all and more joiners wait; give both topics the same number of "
                "partitions to split the work")
        self.consumer = log.consumer(group, [predictions], member=member)
        self._slots: dict[str, _Slot] = {}
        self._fenced_at: dict[str, float] = {}
        #: Slots this joiner lost to another joiner that claimed them.
        self.fenced = 0
        #: What the joiner has done since it started, and its warnings.
        self.progress = JoinProgress(rule, late_topic=late)
        #: The rule of the state resumed from, when ``rule`` differs from it: the new
        #: rule applies to the requests still open (closed ones keep their examples).
        self.previous_rule: JoinRule | None = None
        self._reconcile()

    # -- slots -------------------------------------------------------------------

    @property
    def slots(self) -> list[str]:
        """The slots this joiner owns now."""
        return sorted(self._slots)

    @property
    def open_requests(self) -> int:
        """Requests waiting for their outcome in the slots this joiner owns."""
        return sum(s.task.state.open for s in self._slots.values())

    @property
    def repeated(self) -> int:
        """Served predictions logged again under a request id already taken (set aside),
        in the slots this joiner owns."""
        return sum(s.task.state.repeated for s in self._slots.values())

    def _wanted(self) -> dict[str, dict[str, list[int]]]:
        predictions, outcomes = self.topics
        owned = sorted(p for _, p in self.consumer.assignment())
        if self.unsplit is None:
            return {f"partition-{p}": {predictions: [p], outcomes: [p]} for p in owned}
        if 0 not in owned:
            return {}
        return {"all": {t: list(range(self.log.topic(t).partitions)) for t in self.topics}}

    def _reconcile(self) -> None:
        """Follow the group: leave the slots lost, claim those gained."""
        wanted = self._wanted()
        for name in [n for n in self._slots if n not in wanted]:
            self._slots.pop(name).journal.close()
        now = time.monotonic()
        for name, reads in sorted(wanted.items()):
            if name in self._slots or now - self._fenced_at.get(name, -1e18) < \
                    self.retake_after_s:
                continue
            try:
                self._slots[name] = self._claim(name, reads)
            except FencedError as exc:  # claimed by another joiner while this one claimed
                self._lost(name, exc)

    def _claim(self, name: str, reads: dict[str, list[int]]) -> _Slot:
        """Take a slot: claim its journal (fencing the previous owner), rebuild its task,
        and append the results of its last step again (a crash may have come between
        the record and the appends)."""
        journal = Journal(self.state_dir / name, fsync=self.fsync,
                          compact_bytes=self.compact_bytes)
        try:
            snapshot, records = journal.claim()
            if snapshot is None:
                fresh = {t: {p: self.log.backend.offsets(t, p)[0] for p in parts}
                         for t, parts in reads.items()}
                task = JoinTask(self.rule, fresh)
            else:
                task = JoinTask.restore(snapshot)
            last: tuple[int, Joined] | None = None
            for record in records:
                try:
                    step = _DECODE(record)
                except msgspec.DecodeError as exc:
                    raise CorruptLogError(f"{journal.path}: unreadable step ({exc})") from exc
                last = (step.sequence, task.advance(step))
            slot = _Slot(name, reads, task, journal, f"{self.producer_id}.{name}")
            if last is not None:
                self._publish(slot, *last, again=True)
            if task.rule != self.rule:
                self.previous_rule = task.rule
                task = JoinTask.restore(task.snapshot(), self.rule)
                slot = slot._replace(task=task)
                journal.compact(task.sequence, task.snapshot())
            elif snapshot is None:
                journal.compact(task.sequence, task.snapshot())  # the rule, from the start
        except BaseException:
            journal.close()
            raise
        return slot

    def _lose(self, slot: _Slot, error: FencedError) -> None:
        self._slots.pop(slot.name, None)
        slot.journal.close()
        self._lost(slot.name, error)

    def _lost(self, name: str, error: FencedError) -> None:
        self._fenced_at[name] = time.monotonic()
        self.fenced += 1
        if self.progress.on_warning is not None:
            self.progress.on_warning(
                f"{name}: another label joiner took it over ({error}); this one leaves "
                f"it alone for {self.retake_after_s:g} s")

    # -- the step --------------------------------------------------------------

    def step(self, max_events: int = 100_000) -> JoinStep:
        """Read what is new in each owned slot (up to ``max_events`` per partition),
        join it, record it, append the results."""
        self._reconcile()
        total = _NOTHING
        for name in sorted(self._slots):
            slot = self._slots[name]
            try:
                done = self._step_slot(slot, max_events)
            except FencedError as exc:
                self._lose(slot, exc)
                continue
            total = JoinStep(*(a + b for a, b in zip(total, done, strict=True)))
        self.progress.update(total, open_requests=self.open_requests,
                             now_us=self.clock.now_us())
        return total

    def _step_slot(self, slot: _Slot, max_events: int) -> JoinStep:
        predictions_topic, outcomes_topic = self.topics
        task = slot.task
        positions = {t: dict(p) for t, p in task.positions.items()}
        # Outcomes are read only up to where their partitions ended before the predictions
        # were read: an outcome appended after its prediction then finds it read whenever
        # the predictions were read to their end, however two servers' batches interleave
        # in the predictions partition (out of time order).
        ends = {p: self.log.backend.offsets(outcomes_topic, p)[1]
                for p in slot.reads[outcomes_topic]}
        predictions = {p: predictions_of(b) for p, b in
                       self._read(predictions_topic, slot.reads, positions, max_events).items()}
        read = {p: outcomes_of(b) for p, b in
                self._read(outcomes_topic, slot.reads, positions, max_events,
                           ends=ends).items()}
        outcomes_behind = self._behind(outcomes_topic, positions)
        step = StepInput(task.sequence + 1, positions, predictions, read,
                         self._behind(predictions_topic, positions), outcomes_behind,
                         None if outcomes_behind
                         else self.clock.now_us() - self.rule.lateness)
        if task.quiet(step):
            return _NOTHING
        slot.journal.append(_ENCODE(step))
        repeated = task.state.repeated
        joined = task.advance(step)
        self._publish(slot, step.sequence, joined, again=False)
        if slot.journal.due:
            slot.journal.compact(task.sequence, task.snapshot())
            self._commit_positions()
        outcomes = [o for rows in read.values() for o in rows]
        return JoinStep(
            sum(map(len, predictions.values())), len(outcomes), len(joined.examples),
            len(joined.late), joined.expired,
            timeouts=sum(1 for e in joined.examples if e.source == "timeout"),
            late_labels=sum(1 for x in joined.late if x.label is not None
                            and x.reason in _AFTER_WINDOW),
            unlabelled=sum(1 for o in outcomes if o.label is None),
            repeated=task.state.repeated - repeated)

    def run(self, *, idle_timeout_s: float | None = None, poll_s: float = 0.05,
            on_warning: Callable[[str], None] | None = None,
            on_status: Callable[[str], None] | None = None,
            status_every_s: float = 10.0, stop: threading.Event | None = None
            ) -> JoinProgress:
        """Step until idle for ``idle_timeout_s`` (forever when ``None``) or until ``stop``
        is set (checked between steps, never inside one), saying what it does through
        :attr:`progress`: warnings when the rule does not fit the outcomes, a status line
        every ``status_every_s``. Returns the progress."""
        progress = self.progress
        progress.on_warning, progress.on_status = on_warning, on_status
        progress.every_us = round(status_every_s * 1e6)

        def step() -> bool:
            done = self.step()
            return bool(done.predictions or done.outcomes or done.examples)

        run_until_idle(step, idle_timeout_s=idle_timeout_s, poll_s=poll_s, stop=stop)
        return progress

    def _behind(self, topic: str, positions: dict[str, dict[int, int]]) -> list[int]:
        """The partitions of ``topic`` not read to their end."""
        return [p for p, at in sorted(positions[topic].items())
                if at < self.log.backend.offsets(topic, p)[1]]

    def _read(self, topic: str, reads: dict[str, list[int]],
              positions: dict[str, dict[int, int]], max_events: int, *,
              ends: dict[int, int] | None = None) -> dict[int, pa.RecordBatch]:
        """What is new in each partition of ``topic`` the slot reads (up to
        ``max_events`` each, and before ``ends`` when given), moving ``positions`` past
        it."""
        batches = {}
        where = positions.setdefault(topic, {})
        for p in reads[topic]:
            at = where.setdefault(p, self.log.backend.offsets(topic, p)[0])
            count = max_events if ends is None else min(max_events, ends.get(p, at) - at)
            if count <= 0:
                continue
            fetched = self.log.read(topic, p, at, count)
            if fetched.batch.num_rows:
                batches[p] = fetched.batch
                where[p] = fetched.next_offset
        return batches

    # -- appending the results ---------------------------------------------------

    def _publish(self, slot: _Slot, sequence: int, joined: Joined, *, again: bool) -> None:
        """Append a step's examples and late outcomes as the slot's producer. ``again``:
        the step's results may be in the log already (after a crash, or appended by the
        slot's previous owner); otherwise finding them there means another joiner with
        other state writes for this slot."""
        for topic, rows, schema in ((self.examples_topic, joined.examples, _EXAMPLES),
                                    (self.late_topic, joined.late, _LATE)):
            if not rows:
                continue
            done = self.log.append(topic, _batch(rows, schema), producer_id=slot.producer,
                                   sequence=sequence)
            if done.duplicate and not again:
                slot.journal.check()  # a new owner appended it already: this one is fenced
                raise ConfigError(
                    f"{topic} already holds step {sequence} of {slot.producer}: another "
                    f"label joiner with other state (not {slot.journal.path}) writes for "
                    f"{slot.name}, or this state was reset; the step is not appended twice")

    def _commit_positions(self) -> None:
        """Commit the owned partitions' positions to the group (for lag reports; the
        journals are what the joiner resumes from)."""
        if self.unsplit is not None:
            return
        predictions = self.topics[0]
        owned = set(self.consumer.assignment())
        progress = {(predictions, p): at for s in self._slots.values()
                    for p, at in s.task.positions[predictions].items()
                    if (predictions, p) in owned}
        if progress:
            self.consumer.commit(progress)

    def close(self) -> None:
        """Leave the group, handing the slots over (their state is in their journals)."""
        try:
            self._commit_positions()
        finally:
            for slot in self._slots.values():
                slot.journal.close()
            self._slots.clear()
            self.consumer.close()

    def __enter__(self) -> LabelJoiner:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _batch(rows: list[Example] | list[Late], schema: pa.Schema) -> pa.RecordBatch:
    """Rows whose fields are in ``schema``'s order, as a record batch (times in µs)."""
    columns = list(zip(*rows, strict=True))
    return pa.record_batch(
        [pa.array(col, type=field.type) if field.type != _TS
         else pa.array(col, pa.int64()).cast(_TS)
         for col, field in zip(columns, schema, strict=True)], schema=schema)
