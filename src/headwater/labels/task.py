"""A join task: the label join of one slot of partitions, one step at a time, sans I/O.

The label joiner splits its work into *slots*: when the predictions and outcomes topics
are co-partitioned (the same number of partitions, both keyed by entity, so a request's
prediction and its outcomes are in partitions of the same number) slot ``p`` joins
partition ``p`` of both; otherwise one slot joins them all. A :class:`JoinTask` holds a
slot's :class:`~headwater.labels.join.JoinState`, the outcomes it holds back, the
latest times it read and its positions, and applies one :class:`StepInput` at a time.

A step input is everything a step read and saw — the predictions and outcomes, the
positions after them, whether the predictions were read to their end, and the clock's
watermark when the outcomes were — so :meth:`JoinTask.advance` is a function of the
task and the input: replaying the inputs of a journal from a snapshot rebuilds the task
exactly, and redoes each step's examples and late outcomes exactly.

The watermark that closes windows is the latest outcome time read, or — once the
outcomes were read to their end — the clock minus the rule's ``lateness`` when that is
later: a quiet outcomes topic (nobody clicked) still closes windows on time. While the
predictions are not read to their end, outcomes at or after the latest prediction time
read wait (the prediction they answer may not have been read yet), and the watermark
stays below it.

>>> from headwater.labels.join import JoinRule, Outcome, Prediction
>>> task = JoinTask(JoinRule(window=10), {"predictions": {0: 0}, "outcomes": {0: 0}})
>>> p = Prediction("r1", "u", b"{}", "m", 1, 0.5, "champion", True, 100)
>>> step = StepInput(1, {"predictions": {0: 1}, "outcomes": {0: 1}}, [p],
...                  [Outcome("r1", "u", 1.0, 104)], caught_up=True, clock_watermark=None)
>>> [(e.request_id, e.label) for e in task.advance(step).examples]
[('r1', 1.0)]
>>> again = JoinTask.restore(JoinTask(JoinRule(window=10), step.positions).snapshot())
>>> again.sequence, again.positions["predictions"]
(0, {0: 1})
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from headwater.labels.join import Joined, JoinRule, JoinState, Outcome, Prediction

__all__ = ["JoinTask", "StepInput"]

Positions = dict[str, dict[int, int]]
"""The next offset to read, per topic and partition."""

_NEVER = -(1 << 62)


class StepInput(msgspec.Struct, array_like=True, frozen=True):
    """What one step of a slot read and saw: enough to redo it exactly.

    ``positions`` are those after the step; ``caught_up`` says whether the predictions
    were read to their end; ``clock_watermark`` is the clock minus the lateness when the
    outcomes were read to their end (``None`` otherwise).
    """

    sequence: int
    positions: Positions
    predictions: list[Prediction]
    outcomes: list[Outcome]
    caught_up: bool
    clock_watermark: int | None


class _Snapshot(msgspec.Struct, array_like=True):
    sequence: int
    positions: Positions
    state: bytes
    held: list[Outcome]
    prediction_time: int
    outcome_time: int


class JoinTask:
    """The join of one slot: state, held outcomes, times read, positions, sequence."""

    def __init__(self, rule: JoinRule, positions: Mapping[str, Mapping[int, int]]) -> None:
        self.state = JoinState(rule)
        self.positions: Positions = {t: dict(p) for t, p in positions.items()}
        #: The number of the last step applied (the journal's and the producer's).
        self.sequence = 0
        self.held: list[Outcome] = []
        self.prediction_time = _NEVER
        self.outcome_time = _NEVER

    @property
    def rule(self) -> JoinRule:
        return self.state.rule

    def _watermark(self, prediction_time: int, outcome_time: int, step: StepInput) -> int:
        watermark = outcome_time
        if step.clock_watermark is not None:
            watermark = max(watermark, step.clock_watermark)
        if not step.caught_up:
            watermark = min(watermark, prediction_time)
        return watermark

    def quiet(self, step: StepInput) -> bool:
        """Whether ``step`` would change nothing (no event read, no outcome to let go,
        no window to close): such a step is neither applied nor journaled."""
        if step.predictions or step.outcomes or (self.held and step.caught_up):
            return False
        watermark = self._watermark(self.prediction_time, self.outcome_time, step)
        return not self.state.due(watermark)

    def advance(self, step: StepInput) -> Joined:
        """Apply one step (the next in sequence): what it joined."""
        if step.sequence != self.sequence + 1:
            raise ValueError(f"step {step.sequence} does not follow step {self.sequence}")
        if step.predictions:
            self.prediction_time = max(self.prediction_time,
                                       max(p.ts for p in step.predictions))
        if step.outcomes:
            self.outcome_time = max(self.outcome_time, max(o.ts for o in step.outcomes))
        watermark = self._watermark(self.prediction_time, self.outcome_time, step)
        outcomes = self.held + list(step.outcomes)
        if step.caught_up:
            self.held = []
        else:  # an outcome at or after the horizon may answer a prediction not read yet
            horizon = self.prediction_time
            self.held = [o for o in outcomes if o.ts >= horizon]
            outcomes = [o for o in outcomes if o.ts < horizon]
        self.state.add_predictions(step.predictions)
        joined = self.state.apply(outcomes, watermark)
        self.sequence = step.sequence
        self.positions = {t: dict(p) for t, p in step.positions.items()}
        return joined

    # -- snapshot and restore ----------------------------------------------------

    def snapshot(self) -> bytes:
        """The task as bytes (MessagePack): :meth:`restore` continues from it exactly."""
        return msgspec.msgpack.encode(_Snapshot(
            self.sequence, self.positions, self.state.snapshot(), self.held,
            self.prediction_time, self.outcome_time))

    @classmethod
    def restore(cls, data: bytes, rule: JoinRule | None = None) -> JoinTask:
        """The task :meth:`snapshot` saved, under its own rule or under ``rule`` (see
        :meth:`JoinState.restore`)."""
        snap = msgspec.msgpack.decode(data, type=_Snapshot)
        state = JoinState.restore(snap.state, rule)
        task = cls(state.rule, snap.positions)
        task.state = state
        task.sequence = snap.sequence
        task.held = [Outcome(*o) for o in snap.held]
        task.prediction_time, task.outcome_time = snap.prediction_time, snap.outcome_time
        return task
