"""A join task: the label join of one slot of partitions, one step at a time, sans I/O.

The label joiner splits its work into *slots*: when the predictions and outcomes topics
are co-partitioned (the same number of partitions, both keyed by entity, so a request's
prediction and its outcomes are in partitions of the same number) slot ``p`` joins
partition ``p`` of both; otherwise one slot joins them all. A :class:`JoinTask` holds a
slot's :class:`~headwater.labels.join.JoinState`, the outcomes it holds back, the
latest times it read in each partition and its positions, and applies one
:class:`StepInput` at a time.

A step input is everything a step read and saw — the predictions and outcomes of each
partition, the positions after them, which partitions were not read to their end, and
the clock's watermark when every outcomes partition was — so :meth:`JoinTask.advance`
is a function of the task and the input: replaying the inputs of a journal from a
snapshot rebuilds the task exactly, and redoes each step's examples and late outcomes
exactly.

The watermark that closes windows is the latest outcome time read or — once every
outcomes partition was read to its end — the clock minus the rule's ``lateness`` when
that is later: a quiet outcomes topic (nobody clicked) still closes windows on time.
While an outcomes partition is behind (not read to its end), the watermark stays at the
latest time read from it, since its next outcomes may be that old. While a predictions
partition is behind, outcomes at or after the latest time read from it wait (the
prediction they answer may not have been read yet), and the watermark stays below it.
(Each partition is taken to be in time order, as the prediction service appends it. Two
servers appending to one partition interleave their batches out of time order; the
joiner reads outcomes only up to where they ended before it read the predictions, so an
outcome appended after its prediction finds it read whenever the predictions were read to
their end. A read cut short by ``max_events`` still relies on the time order.)

>>> from headwater.labels.join import JoinRule, Outcome, LoggedPrediction
>>> task = JoinTask(JoinRule(window=10), {"predictions": {0: 0}, "outcomes": {0: 0}})
>>> p = LoggedPrediction("r1", "u", b"{}", "m", 1, 0.5, "champion", True, 100)
>>> step = StepInput(1, {"predictions": {0: 1}, "outcomes": {0: 1}}, {0: [p]},
...                  {0: [Outcome("r1", "u", 1.0, 104)]}, predictions_behind=[],
...                  outcomes_behind=[], clock_watermark=None)
>>> [(e.request_id, e.label) for e in task.advance(step).examples]
[('r1', 1.0)]
>>> again = JoinTask.restore(task.snapshot())
>>> again.sequence, again.positions["predictions"], again.prediction_times
(1, {0: 1}, {0: 100})
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from headwater.labels.join import Joined, JoinRule, JoinState, LoggedPrediction, Outcome

__all__ = ["JoinTask", "StepInput"]

Positions = dict[str, dict[int, int]]
"""The next offset to read, per topic and partition."""

_NEVER = -(1 << 62)


class StepInput(msgspec.Struct, array_like=True, frozen=True):
    """What one step of a slot read and saw: enough to redo it exactly.

    ``predictions`` and ``outcomes`` are the rows read from each partition, in log
    order; ``positions`` those after the step; ``predictions_behind`` and
    ``outcomes_behind`` the partitions not read to their end; ``clock_watermark`` the
    clock minus the lateness when every outcomes partition was read to its end
    (``None`` otherwise).
    """

    sequence: int
    positions: Positions
    predictions: dict[int, list[LoggedPrediction]]
    outcomes: dict[int, list[Outcome]]
    predictions_behind: list[int]
    outcomes_behind: list[int]
    clock_watermark: int | None


class _Snapshot(msgspec.Struct, array_like=True):
    sequence: int
    positions: Positions
    state: bytes
    held: list[Outcome]
    prediction_times: dict[int, int]
    outcome_times: dict[int, int]


class JoinTask:
    """The join of one slot: state, held outcomes, times read, positions, sequence."""

    def __init__(self, rule: JoinRule, positions: Mapping[str, Mapping[int, int]]) -> None:
        self.state = JoinState(rule)
        self.positions: Positions = {t: dict(p) for t, p in positions.items()}
        #: The number of the last step applied (the journal's and the producer's).
        self.sequence = 0
        self.held: list[Outcome] = []
        #: The latest prediction and outcome times read, per partition.
        self.prediction_times: dict[int, int] = {}
        self.outcome_times: dict[int, int] = {}

    @property
    def rule(self) -> JoinRule:
        return self.state.rule

    def _horizon(self, step: StepInput) -> int | None:
        """Outcomes from this time on wait (``None``: none wait)."""
        if not step.predictions_behind:
            return None
        return min(self.prediction_times.get(p, _NEVER) for p in step.predictions_behind)

    def _watermark(self, step: StepInput, horizon: int | None) -> int:
        if step.outcomes_behind:
            watermark = min(self.outcome_times.get(p, _NEVER) for p in step.outcomes_behind)
        else:
            watermark = max(self.outcome_times.values(), default=_NEVER)
            if step.clock_watermark is not None:
                watermark = max(watermark, step.clock_watermark)
        return watermark if horizon is None else min(watermark, horizon)

    def quiet(self, step: StepInput) -> bool:
        """Whether ``step`` would change nothing (no event read, no outcome to let go,
        no window to close): such a step is neither applied nor journaled."""
        if any(step.predictions.values()) or any(step.outcomes.values()):
            return False
        horizon = self._horizon(step)
        if any(horizon is None or o.ts < horizon for o in self.held):
            return False
        return not self.state.due(self._watermark(step, horizon))

    def advance(self, step: StepInput) -> Joined:
        """Apply one step (the next in sequence): what it joined."""
        if step.sequence != self.sequence + 1:
            raise ValueError(f"step {step.sequence} does not follow step {self.sequence}")
        for p, rows in step.predictions.items():
            if rows:
                self.prediction_times[p] = max(self.prediction_times.get(p, _NEVER),
                                               max(r.ts for r in rows))
        for p, outs in step.outcomes.items():
            if outs:
                self.outcome_times[p] = max(self.outcome_times.get(p, _NEVER),
                                            max(o.ts for o in outs))
        horizon = self._horizon(step)
        watermark = self._watermark(step, horizon)
        outcomes = self.held + [o for p in sorted(step.outcomes) for o in step.outcomes[p]]
        if horizon is None:
            self.held = []
        else:  # an outcome at or after the horizon may answer a prediction not read yet
            self.held = [o for o in outcomes if o.ts >= horizon]
            outcomes = [o for o in outcomes if o.ts < horizon]
        self.state.add_predictions(r for p in sorted(step.predictions)
                                   for r in step.predictions[p])
        joined = self.state.apply(outcomes, watermark)
        self.sequence = step.sequence
        self.positions = {t: dict(p) for t, p in step.positions.items()}
        return joined

    # -- snapshot and restore ----------------------------------------------------

    def snapshot(self) -> bytes:
        """The task as bytes (MessagePack): :meth:`restore` continues from it exactly."""
        return msgspec.msgpack.encode(_Snapshot(
            self.sequence, self.positions, self.state.snapshot(), self.held,
            self.prediction_times, self.outcome_times))

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
        task.prediction_times = dict(snap.prediction_times)
        task.outcome_times = dict(snap.outcome_times)
        return task
