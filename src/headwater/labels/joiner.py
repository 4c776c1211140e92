"""The label joiner: a consumer of predictions and outcomes that appends training examples.

Each :meth:`LabelJoiner.step` reads what is new on the predictions and outcomes topics
(every partition, from the joiner's own positions), applies it to the
:class:`~headwater.labels.join.JoinState`, and appends the examples and the late
outcomes. The watermark that closes windows is the latest outcome time read, or — when
the outcomes topic is read to its end — the clock minus the rule's ``lateness``: a quiet
outcomes topic (nobody clicked) still closes windows on time.

Each step is counted by :attr:`LabelJoiner.progress`
(:class:`~headwater.labels.progress.JoinProgress`), which reports a status line and warns
the moment the rule does not fit the outcomes (explicit labels later than the window,
clicks without a timeout label).

Exactly once. A step first writes a checkpoint holding the new state, the new positions
*and* the batches it is about to append, then appends them as an idempotent producer
(``producer_id``, sequence = step number). A crash after the checkpoint re-appends the
same batches with the same sequence on restart (the log drops the duplicates); a crash
before it redoes the step from the previous checkpoint. Either way every example is in
the topic once.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec
import pyarrow as pa

from headwater.errors import CorruptLogError
from headwater.fsync import fsync_dir
from headwater.labels.join import (
    Example,
    JoinRule,
    JoinState,
    Late,
    Outcome,
    outcomes_of,
    predictions_of,
)
from headwater.labels.progress import JoinProgress, JoinStep
from headwater.labels.schema import (
    LATE_OUTCOMES_SCHEMA,
    LATE_OUTCOMES_TOPIC,
    OUTCOMES_SCHEMA,
    OUTCOMES_TOPIC,
    TRAINING_EXAMPLES_SCHEMA,
    TRAINING_EXAMPLES_TOPIC,
)
from headwater.log import Log
from headwater.serving.prediction_log import PREDICTIONS_TOPIC
from headwater.serving.prediction_log import ensure_readable as ensure_predictions
from headwater.time import Clock, SystemClock

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

__all__ = ["JoinStep", "LabelJoiner"]

_CHECKPOINT: Final = "joiner.ckpt"
# Late reasons of a label that came after its prediction's window: closed by timeout, or
# closed so long ago that the joiner no longer holds it (or never logged).
_AFTER_WINDOW: Final = frozenset({"window_closed", "unmatched"})
_TS: Final = pa.timestamp("us", tz="UTC")
_EXAMPLES: Final = TRAINING_EXAMPLES_SCHEMA.arrow_schema()
_LATE: Final = LATE_OUTCOMES_SCHEMA.arrow_schema()


class _Checkpoint(msgspec.Struct, array_like=True):
    sequence: int
    positions: dict[str, list[int]]
    state: bytes
    held: list[Outcome]
    prediction_time: int
    outcome_time: int
    examples: bytes | None = None  # Arrow IPC stream of the step's examples, to append
    late: bytes | None = None


class LabelJoiner:
    """Joins ``predictions`` with ``outcomes`` into ``training_examples`` (see the module)."""

    def __init__(self, log: Log, rule: JoinRule, *, state_dir: str | Path,
                 predictions: str = PREDICTIONS_TOPIC, outcomes: str = OUTCOMES_TOPIC,
                 examples: str = TRAINING_EXAMPLES_TOPIC, late: str = LATE_OUTCOMES_TOPIC,
                 clock: Clock | None = None, fsync: bool = True,
                 producer_id: str = "label-joiner") -> None:
        self.log = log
        self.rule = rule
        self.topics = (predictions, outcomes)
        self.examples_topic = examples
        self.late_topic = late
        self.clock: Clock = clock or SystemClock()
        self.fsync = fsync
        self.producer_id = producer_id
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ensure_predictions(log, predictions)
        log.ensure_topic(outcomes, OUTCOMES_SCHEMA)
        log.ensure_topic(examples, TRAINING_EXAMPLES_SCHEMA)
        log.ensure_topic(late, LATE_OUTCOMES_SCHEMA)
        self.state = JoinState(rule)
        self.sequence = 0
        self.positions = {t: [0] * log.topic(t).partitions for t in self.topics}
        self._prediction_time = self._outcome_time = -(1 << 62)
        self._held: list[Outcome] = []
        #: What the joiner has done since it started, and its warnings.
        self.progress = JoinProgress(rule, late_topic=late)
        #: The rule of the checkpoint resumed from, when ``rule`` differs from it: the new
        #: rule applies to the requests still open (closed ones keep their examples).
        self.previous_rule: JoinRule | None = None
        self._resume()

    # -- the step --------------------------------------------------------------

    def step(self, max_events: int = 100_000) -> JoinStep:
        """Read what is new, join it, checkpoint, append the results."""
        predictions_topic, outcomes_topic = self.topics
        positions = {t: list(p) for t, p in self.positions.items()}
        predictions = self._read(predictions_topic, positions, max_events)
        outcome_batches = self._read(outcomes_topic, positions, max_events)
        pred_rows = [row for b in predictions for row in predictions_of(b)]
        read = [row for b in outcome_batches for row in outcomes_of(b)]
        if pred_rows:
            self._prediction_time = max(self._prediction_time, max(p.ts for p in pred_rows))
        if read:
            self._outcome_time = max(self._outcome_time, max(o.ts for o in read))
        watermark = self._outcome_time
        if self._caught_up(outcomes_topic, positions):
            watermark = max(watermark, self.clock.now_us() - self.rule.lateness)
        # Outcomes newer than every prediction read wait until the predictions catch up:
        # the prediction they answer may not have been read yet.
        outcomes = self._held + read
        if not self._caught_up(predictions_topic, positions):
            horizon = self._prediction_time
            watermark = min(watermark, horizon)
            self._held = [o for o in outcomes if o.ts > horizon]
            outcomes = [o for o in outcomes if o.ts <= horizon]
        else:
            self._held = []
        self.state.add_predictions(pred_rows)
        joined = self.state.apply(outcomes, watermark)
        if not (pred_rows or read or joined.examples or joined.expired):
            return self._done(JoinStep(0, 0, 0, 0, 0))
        self.sequence += 1
        ckpt = _Checkpoint(self.sequence, positions, self.state.snapshot(), self._held,
                           self._prediction_time, self._outcome_time,
                           _ipc(_batch(joined.examples, _EXAMPLES)) if joined.examples else None,
                           _ipc(_batch(joined.late, _LATE)) if joined.late else None)
        self._write(ckpt)
        self.positions = positions
        self._publish(ckpt)
        return self._done(JoinStep(
            len(pred_rows), len(read), len(joined.examples), len(joined.late), joined.expired,
            timeouts=sum(1 for e in joined.examples if e.source == "timeout"),
            late_labels=sum(1 for x in joined.late if x.label is not None
                            and x.reason in _AFTER_WINDOW),
            unlabelled=sum(1 for o in read if o.label is None)))

    def _done(self, step: JoinStep) -> JoinStep:
        self.progress.update(step, open_requests=self.state.open, now_us=self.clock.now_us())
        return step

    def run(self, *, idle_timeout_s: float | None = None, poll_s: float = 0.05,
            on_warning: Callable[[str], None] | None = None,
            on_status: Callable[[str], None] | None = None,
            status_every_s: float = 10.0, stop: threading.Event | None = None
            ) -> JoinProgress:
        """Step until idle for ``idle_timeout_s`` (forever when ``None``) or until ``stop``
        is set (checked between steps, never inside one), saying what it does through
        :attr:`progress`: warnings when the rule does not fit the outcomes, a status line
        every ``status_every_s``. Returns the progress."""
        stop = stop or threading.Event()
        progress = self.progress
        progress.on_warning, progress.on_status = on_warning, on_status
        progress.every_us = round(status_every_s * 1e6)
        idle_since = time.monotonic()
        while not stop.is_set():
            done = self.step()
            if done.predictions or done.outcomes or done.examples:
                idle_since = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - idle_since >= idle_timeout_s:
                return progress
            else:
                stop.wait(poll_s)
        return progress

    def _caught_up(self, topic: str, positions: dict[str, list[int]]) -> bool:
        return all(positions[topic][p] >= end
                   for p, end in enumerate(self.log.end_offsets(topic)))

    def _read(self, topic: str, positions: dict[str, list[int]], max_events: int
              ) -> list[pa.RecordBatch]:
        batches = []
        where = positions[topic]
        partitions = self.log.topic(topic).partitions
        where.extend([0] * (partitions - len(where)))
        for p in range(partitions):
            fetched = self.log.read(topic, p, where[p], max_events)
            if fetched.batch.num_rows:
                batches.append(fetched.batch)
                where[p] = fetched.next_offset
        return batches

    # -- checkpoints -------------------------------------------------------------

    def _resume(self) -> None:
        path = self.state_dir / _CHECKPOINT
        if not path.exists():
            return
        try:
            ckpt = msgspec.msgpack.decode(path.read_bytes(), type=_Checkpoint)
            self.state = JoinState.restore(ckpt.state)
            if self.state.rule != self.rule:
                self.previous_rule = self.state.rule
                self.state = JoinState.restore(ckpt.state, self.rule)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CorruptLogError(f"{path}: unreadable joiner checkpoint ({exc})") from exc
        self.sequence = ckpt.sequence
        self.positions = ckpt.positions
        self._held = [Outcome(*o) for o in ckpt.held]
        self._prediction_time, self._outcome_time = ckpt.prediction_time, ckpt.outcome_time
        self._publish(ckpt)  # a crash may have come between the checkpoint and the append

    def _write(self, ckpt: _Checkpoint) -> None:
        path = self.state_dir / _CHECKPOINT
        staging = path.with_suffix(".tmp")
        with open(staging, "wb") as f:
            f.write(msgspec.msgpack.encode(ckpt))
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(staging, path)
        if self.fsync:
            fsync_dir(self.state_dir)

    def _publish(self, ckpt: _Checkpoint) -> None:
        if ckpt.examples is not None:
            self.log.append(self.examples_topic, _from_ipc(ckpt.examples),
                            producer_id=self.producer_id, sequence=ckpt.sequence)
        if ckpt.late is not None:
            self.log.append(self.late_topic, _from_ipc(ckpt.late),
                            producer_id=self.producer_id, sequence=ckpt.sequence)

    def close(self) -> None:
        """Nothing is buffered between steps; present for symmetry with other components."""

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


def _ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue())


def _from_ipc(data: bytes) -> pa.RecordBatch:
    return pa.ipc.open_stream(data).read_next_batch()
