"""Trainers: the four stages of continual learning over the training-examples topic.

One :class:`Trainer` reads the examples topic and publishes versions of one model to the
model store, under one alias. Its ``strategy`` is the stage:

- ``"stateless"``: each run fits a fresh model on the examples of a window (all of them
  by default, or the last ``history`` µs of label time); no parent. Run by hand
  (:meth:`Trainer.train`, ``headwater train --from --to``) it is stage 1; on a schedule
  (``trigger=Daily()`` or ``Every(...)``) stage 2.
- ``"stateful"``: each run loads the alias's version and updates it on the examples
  since that version's slice ended; lineage records the parent (stage 3).
- ``"continual"``: the trainer keeps a live model, learns every batch of examples as it
  arrives, and publishes it when the trigger fires (stage 4).

Every learning pass is test-then-train: each batch is scored before it is learnt, so the
trainer always holds honest (prequential) scores for its model. Publishing saves the
model, registers it with its lineage (parent, the exact slice read, hyper-parameters,
metrics, cost, trainer and trigger), then asks the :class:`~headwater.learning.gate.Gate`
— the candidate's prequential scores against the champion's predictions on the same
recent examples — and either moves the alias (recorded with the reason) or marks the
version rejected, keeping it. Cost accounting: each version records the rows it learnt
(``rows``), and the CPU seconds (``cpu_s``) and wall seconds (``wall_s``) spent
learning them, guarding them and publishing the version (judging it and saving its
artifact; the registry's copy of the artifact is made after the record is written).

A continual trainer also guards every update: the gate's test, run sequentially
(:class:`~headwater.learning.gate.Guard`), compares the live model's prequential scores
with its last checkpoint's (the last version it published and went on from) on the same
incoming labels. On a significant drop it reverts the live model to the checkpoint: the
dropped state is registered as a rejected version whose reason says why (its lineage
names what it had learnt), the next version's slice starts after it, and
:attr:`Trainer.reverts` counts the reverts. A continual version the gate refuses on
enough examples (significantly worse than the champion, or scores that are not finite)
is reverted the same way: the live model goes on from the checkpoint, not from the
refused version. The trainer holds at most two stored models beside its live one: the
champion and the checkpoint (usually the same version).

Resuming needs no checkpoint: the model store is one. A trainer started again loads the
alias's version and reads on from where its slice ended. A trainer killed between
registering a version and moving the alias leaves that version as a leaf nobody
promoted; its successor resumes from the alias, so what it serves never skips an
example and never learns one twice.

A continual trainer given an :class:`~headwater.learning.updates.UpdatePublisher` also
appends its live model's updates to the ``model_updates`` topic between versions, so
servers serve what it learnt within a second; its versions are then checkpoints. A model
that cannot learn continually is refused (:class:`~headwater.errors.NotContinualError`).

A trainer learns only what its model served: the examples a version of ``examples_of``
(by default the trained model itself) scored; the others are counted in
:attr:`Trainer.skipped`. One trainer per model: a trainer given a
:class:`~headwater.learning.lease.TrainerLease` renews it at every step and registers
and promotes its versions under it, so once another trainer has taken the model over
this one can no longer publish (:class:`~headwater.errors.FencedError`).
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from headwater.errors import UnknownAliasError, ValidationError
from headwater.evaluation.arms import Cost
from headwater.labels.schema import TRAINING_EXAMPLES_TOPIC
from headwater.learning.examples import ExampleSlice, read_examples, slice_end
from headwater.learning.gate import Gate, Verdict
from headwater.learning.lease import TrainerLease
from headwater.learning.score_then_learn import BATCH_ROWS, check_batch_rows, score_then_learn
from headwater.learning.triggers import Fire, Observation, Trigger
from headwater.learning.updates import UpdatePublisher
from headwater.log import Log
from headwater.models import Model
from headwater.models.updates import check_continual
from headwater.registry import (
    Creator,
    Lineage,
    ModelRegistry,
    ModelVersion,
    OffsetRange,
    TopicSlice,
    TrainingSlice,
)
from headwater.registry.lineage import flatten_params
from headwater.time import Clock, SystemClock

__all__ = ["Published", "Strategy", "Trainer"]

Strategy = Literal["stateless", "stateful", "continual"]
_STRATEGIES = ("stateless", "stateful", "continual")


@dataclass(frozen=True)
class Published:
    """A version a trainer registered, and what the gate said."""

    version: ModelVersion
    verdict: Verdict
    fire: Fire
    cost: Cost


@dataclass
class _Recent:
    """The last examples seen, with the trainer's prequential scores, for the gate."""

    size: int
    y: deque[float] = field(default_factory=deque)
    own: deque[float] = field(default_factory=deque)
    rows: deque[dict[str, Any]] = field(default_factory=deque)


class Trainer:
    """Publishes versions of model ``name`` under ``alias``; see the module docstring.

    ``make_model`` builds a fresh model (stateless runs and the first version).
    ``arm`` chooses the examples read: the rows scored by that routing arm (a shadow
    arm's rows carry the same features and label); ``None`` reads the served rows.
    ``examples_of`` is the model whose examples are read (default: ``name``); ``lease``
    makes this trainer the model's one trainer (it must be acquired).
    """

    def __init__(self, log: Log, registry: ModelRegistry, name: str,
                 make_model: Callable[[], Model], *, strategy: Strategy,
                 alias: str = "champion", trigger: Trigger | None = None,
                 gate: Gate | None = None, trainer: str | None = None,
                 topic: str = TRAINING_EXAMPLES_TOPIC, arm: str | None = None,
                 history: int | None = None, batch_rows: int = BATCH_ROWS,
                 feature_set: str | None = None, clock: Clock | None = None,
                 cpu_time: Callable[[], float] = time.process_time,
                 examples_of: str | None = None, lease: TrainerLease | None = None,
                 updates: UpdatePublisher | None = None) -> None:
        if strategy not in _STRATEGIES:
            raise ValidationError("strategy", f"unknown strategy {strategy!r}; use "
                                  f"{', '.join(_STRATEGIES)}")
        self.log = log
        self.registry = registry
        self.name = name
        self.make_model = make_model
        self.strategy: Strategy = strategy
        self.alias = alias
        self.trigger = trigger
        self.gate = gate or Gate()
        self.trainer = trainer or f"{strategy}-trainer"
        self.topic = topic
        self.arm = arm
        self.history = history
        self.batch_rows = check_batch_rows(batch_rows)
        self.feature_set = feature_set
        self.clock: Clock = clock or SystemClock()
        self._cpu = cpu_time
        self.examples_of = examples_of or name
        self.lease = lease
        #: Examples read and left out because another model served them, per model.
        self.skipped: Counter[str] = Counter()
        self.published: list[Published] = []
        self.cost = Cost()  # everything this trainer learnt, published or not
        self._pending = Cost()  # learnt into the live model since its last version
        self._recent = _Recent(self.gate.window)
        self._models: dict[int, Model] = {}  # the champion and the checkpoint, at most
        self._guard = self.gate.guard()
        #: Times the live model was reverted to its checkpoint (continual only).
        self.reverts = 0
        self.parent: ModelVersion | None = self._current()
        start = self._start_of(self.parent)
        self.position: dict[int, int] = dict(start)  # examples read (triggers have seen them)
        self.model: Model | None = None
        self._slice_start = dict(start)
        #: Sends the live model's updates to servers (continual only), see
        #: :mod:`headwater.learning.updates`.
        self.updates = updates if strategy == "continual" else None
        if strategy == "continual":
            self.model = (self._load(self.parent) if self.parent is not None
                          else make_model())
            check_continual(self.model)
            if self.updates is not None:
                self.updates.rebase(self.model, None if self.parent is None
                                    else self.parent.version, self.topic, start)

    # -- one step of the loop ------------------------------------------------------

    def step(self, max_examples: int = 100_000) -> Published | None:
        """Read the new examples (learning them when continual), show them to the
        trigger, and publish when it fires."""
        if self.lease is not None:
            self.lease.renew()
        stop = self._stop(max_examples)
        fresh = self._read(self.position, stop)
        self.position = stop
        if not len(fresh):
            fired = self._observe(Observation(now=self.clock.now_us()))
            return self._run(fired) if fired is not None else None
        own = None
        if self.strategy == "continual":
            assert self.model is not None
            own, cost = self._learn(self.model, fresh)
            self._pending.add(cost)
            self.cost.add(cost)
            if self._guarded(fresh, own):  # reverted to the checkpoint
                own = None
                self._resync_updates()
            else:
                self._remember(fresh, own)
                if self.updates is not None:
                    self.updates.learnt(len(fresh), self.position)
        obs = Observation(now=self.clock.now_us(), y=fresh.y, served=fresh.scores,
                          own=own if own is not None else np.zeros(0), features=fresh.features)
        fired = self._observe(obs)
        return self._run(fired) if fired is not None else None

    def _observe(self, obs: Observation) -> Fire | None:
        return None if self.trigger is None else self.trigger.observe(obs)

    def _run(self, fired: Fire) -> Published | None:
        if self.strategy == "continual":
            return self._publish_live(fired)
        return self.train(stop=self.position, fire=fired)

    # -- training runs ----------------------------------------------------------

    def train(self, start: Mapping[int, int] | None = None, stop: Mapping[int, int] | None = None,
              *, fire: Fire | None = None, event_time: tuple[int, int] | None = None
              ) -> Published | None:
        """One stateless or stateful run over ``[start, stop)`` (offsets per partition;
        by default the strategy's window), or over the examples whose label time is in
        ``event_time``; publishes and gates the result. ``None`` when there was nothing
        to learn."""
        fire = fire or Fire("manual", "trained by hand")
        if self.lease is not None:
            self.lease.renew()
        if event_time is not None:
            start, stop = self._offsets_at(event_time[0]), self._offsets_at(event_time[1])
        parent = self._current() if self.strategy == "stateful" else None
        if start is None:
            start = self._start_of(parent) if self.strategy == "stateful" else self._window()
        examples = self._read(start, stop)
        if not len(examples):
            return None
        model = self._load(parent) if parent is not None else self.make_model()
        own, cost = self._learn(model, examples)
        self.cost.add(cost)
        recent = _Recent(self.gate.window)
        self._remember(examples, own, recent)
        published = self._publish(model, parent, examples.slice, fire, cost, recent)
        if self.trigger is not None:
            self.trigger.reset(self.clock.now_us())
        return published

    def checkpoint(self, reason: str = "checkpoint on demand") -> Published | None:
        """Publish a version now (gated like any other): a continual trainer's live model,
        another trainer's run on what it read. ``None`` when nothing new was learnt."""
        fire = Fire("manual", reason)
        if self.strategy == "continual":
            return self._publish_live(fire)
        return self.train(stop=self.position, fire=fire)

    def _publish_live(self, fired: Fire) -> Published | None:
        assert self.model is not None
        if self._pending.rows == 0:
            return None
        examples_slice = self._slice(self._slice_start, self.position)
        published = self._publish(self.model, self.parent, examples_slice, fired,
                                   self._pending, self._recent)
        verdict = published.verdict
        if (not verdict.promote and verdict.examples >= self.gate.min_examples
                and self.parent is not None):  # judged worse: go on from the checkpoint
            self.model = self._load(self.parent)
            self.reverts += 1
            self._resync_updates()
        else:
            self.parent = published.version
        self._guard.reset()
        self._recent = _Recent(self.gate.window)  # the next gate judges on rows no version learnt
        self._slice_start = dict(self.position)
        if self.updates is not None and published.verdict.promote:
            self.updates.rebase(self.model, published.version.version, self.topic,
                                self.position)
        self._pending = Cost()
        if self.trigger is not None:
            self.trigger.reset(self.clock.now_us())
        return published

    def _publish(self, model: Model, parent: ModelVersion | None, examples_slice: TrainingSlice,
                 fire: Fire, cost: Cost, recent: _Recent) -> Published:
        cpu0, wall0 = self._cpu(), time.perf_counter()
        y = np.array(recent.y)
        own = np.array(recent.own)
        champion = self._champion_scores(list(recent.rows))
        verdict = self.gate.judge(y, own, champion)
        return self._register(model, parent, examples_slice, fire, cost, verdict,
                              (cpu0, wall0))

    def _register(self, model: Model, parent: ModelVersion | None,
                  examples_slice: TrainingSlice, fire: Fire, learnt: Cost, verdict: Verdict,
                  started: tuple[float, float]) -> Published:
        """Save ``model``, register it with its lineage (its cost counting the time since
        ``started``, CPU and wall), then promote or reject it as ``verdict`` says."""
        with tempfile.TemporaryDirectory(prefix="headwater-train-") as tmp:
            model.save(Path(tmp) / "model")
            publishing = Cost(0, self._cpu() - started[0], time.perf_counter() - started[1])
            self.cost.add(publishing)
            cost = Cost()
            cost.add(learnt)
            cost.add(publishing)
            lineage = self._lineage(model, parent, examples_slice, fire, cost, verdict)
            lease = self.lease.current if self.lease is not None else None
            version = self.registry.register(self.name, Path(tmp) / "model", lineage=lineage,
                                             lease=lease)
        if verdict.promote:
            self.registry.promote(self.name, version.version, self.alias, actor=self.trainer,
                                  reason=f"{fire.kind}: {fire.reason}; gate: {verdict.reason}",
                                  lease=lease)
        else:
            version = self.registry.reject(self.name, version.version,
                                           reason=f"gate: {verdict.reason}")
        published = Published(version, verdict, fire, cost)
        self.published.append(published)
        return published

    def _lineage(self, model: Model, parent: ModelVersion | None,
                 examples_slice: TrainingSlice, fire: Fire, cost: Cost,
                 verdict: Verdict) -> Lineage:
        metrics = {"rows": float(cost.rows), "cpu_s": cost.cpu_s, "wall_s": cost.wall_s,
                   "gate_examples": float(verdict.examples)}
        if verdict.candidate == verdict.candidate:  # not NaN
            metrics[f"prequential_{verdict.metric}"] = verdict.candidate
        return Lineage(
            parent=parent.version if parent is not None else None,
            training=examples_slice, feature_set=self.feature_set,
            hyperparameters=flatten_params(model.params()), metrics=metrics,
            created_by=Creator(trainer=self.trainer, trigger=fire.kind, reason=fire.reason,
                               arm=self.arm, batch_rows=self.batch_rows,
                               examples_of=self.examples_of))

    # -- the guard on continual updates ---------------------------------------------

    def _guarded(self, fresh: ExampleSlice, own: npt.NDArray[np.float64]) -> bool:
        """Show the guard the live model's scores and its checkpoint's on ``fresh``;
        revert to the checkpoint on a significant drop (then ``True``)."""
        checkpoint = self.parent
        if checkpoint is None:
            return False
        cpu0, wall0 = self._cpu(), time.perf_counter()
        theirs = np.asarray(self._stored(checkpoint).predict(fresh.features), np.float64)
        dropped = self._guard.update(fresh.y, own, theirs)
        cost = Cost(0, self._cpu() - cpu0, time.perf_counter() - wall0)
        self._pending.add(cost)
        self.cost.add(cost)
        if dropped:
            self._revert(checkpoint)
        return dropped

    def _revert(self, checkpoint: ModelVersion) -> None:
        """Record the live model's state as a rejected version (why, and what it had
        learnt since the checkpoint), then carry on from the checkpoint."""
        assert self.model is not None
        started = self._cpu(), time.perf_counter()
        guard = self._guard
        reason = f"reverted to version {checkpoint.version}: {guard.reason}"
        (ours, theirs), (_, low, high) = guard.values, guard.worse_by
        verdict = Verdict(self.gate.metric, ours, theirs, self.gate.margin, False, reason,
                          guard.examples, low, high)
        dropped = self._slice(self._slice_start, self.position)
        self._register(self.model, checkpoint, dropped, Fire("performance", reason),
                       self._pending, verdict, started)
        self.model = self._load(checkpoint)
        self.reverts += 1
        self._guard.reset()
        self._slice_start = dict(self.position)
        self._pending = Cost()
        self._recent = _Recent(self.gate.window)

    def _resync_updates(self) -> None:
        """After a revert the live model is a checkpoint again, and servers must stop
        serving the dropped state at once: when the checkpoint is the version they serve,
        that version goes out now as an update; otherwise the live model goes back to the
        version they serve (its updates are cumulative from it), which goes out."""
        updates = self.updates
        if updates is None or updates.base is None or self.model is None:
            return
        if self.parent is None or self.parent.version != updates.base:
            self.parent = self.registry.get(self.name, updates.base)
            self.model = self._load(self.parent)
        updates.rebase(self.model, updates.base, self.topic, self.position)
        updates.flush(self.position, force=True)

    # -- helpers -----------------------------------------------------------------

    def _learn(self, model: Model, examples: ExampleSlice
               ) -> tuple[npt.NDArray[np.float64], Cost]:
        """Test-then-train over ``examples`` in batches: the scores before learning."""
        cpu0, wall0 = self._cpu(), time.perf_counter()
        scores = score_then_learn(model, examples.features, examples.y,
                                  batch_rows=self.batch_rows)
        return scores, Cost(len(examples), self._cpu() - cpu0, time.perf_counter() - wall0)

    def _remember(self, examples: ExampleSlice, own: npt.NDArray[np.float64],
                  recent: _Recent | None = None) -> None:
        recent = recent if recent is not None else self._recent
        keep = recent.size
        tail = examples.take(slice(max(0, len(examples) - keep), None))
        names = list(tail.features)
        for i in range(len(tail)):
            recent.rows.append({n: tail.features[n][i] for n in names})
        recent.y.extend(tail.y.tolist())
        recent.own.extend(own[-keep:].tolist())
        while len(recent.y) > keep:
            recent.y.popleft()
            recent.own.popleft()
            recent.rows.popleft()

    def _champion_scores(self, rows: list[dict[str, Any]]) -> npt.NDArray[np.float64] | None:
        current = self._current()
        if current is None or not rows:
            return None
        model = self._stored(current)
        names = list(rows[0])
        batch = {n: np.array([r[n] for r in rows]) for n in names}
        return np.asarray(model.predict(batch), dtype=np.float64)

    def _stored(self, version: ModelVersion) -> Model:
        """A stored version's model, read once and kept while it is the champion or the
        checkpoint (never learnt into: the live model is a copy of its own)."""
        model = self._models.get(version.version)
        if model is None:
            current = self._current()
            keep = {v.version for v in (current, self.parent) if v is not None}
            for number in [n for n in self._models if n not in keep]:
                del self._models[number]  # before loading: one stored model less at peak
            model = self._models[version.version] = self._load(version)
        return model

    def _current(self) -> ModelVersion | None:
        try:
            return self.registry.get(self.name, self.alias)
        except (UnknownAliasError, KeyError):
            return None

    def _load(self, version: ModelVersion) -> Model:
        """The version's model, by the registry's trust rule (never trusted implicitly)."""
        return self.registry.load(self.name, version.version).model

    def _read(self, start: Mapping[int, int], stop: Mapping[int, int] | None) -> ExampleSlice:
        examples = read_examples(self.log, start, stop, topic=self.topic, arm=self.arm,
                                 model=self.examples_of)
        self.skipped.update(examples.others)
        return examples

    def _start_of(self, version: ModelVersion | None) -> dict[int, int]:
        if version is not None and version.lineage.training is not None:
            end = slice_end(version.lineage.training, self.topic)
            if end:
                return end
        return dict(enumerate(self.log.start_offsets(self.topic)))

    def _window(self) -> dict[int, int]:
        if self.history is None:
            return dict(enumerate(self.log.start_offsets(self.topic)))
        return self._offsets_at(self.clock.now_us() - self.history)

    def _offsets_at(self, event_time: int) -> dict[int, int]:
        partitions = self.log.topic(self.topic).partitions
        return {p: self.log.seek(self.topic, p, event_time=event_time) for p in range(partitions)}

    def _stop(self, max_examples: int) -> dict[int, int]:
        ends = self.log.end_offsets(self.topic)
        return {p: min(end, self.position.get(p, 0) + max_examples) for p, end in enumerate(ends)}

    def _slice(self, start: Mapping[int, int], stop: Mapping[int, int]) -> TrainingSlice:
        """The record of a continual version's slice: every example read since the last
        version (the hash is recomputed by reading them again, in order)."""
        examples = read_examples(self.log, start, stop, topic=self.topic, arm=self.arm,
                                 model=self.examples_of)
        ranges = tuple(OffsetRange(partition=p, start=start.get(p, 0), end=end)
                       for p, end in sorted(stop.items()) if end > start.get(p, 0))
        return TrainingSlice(topics=(TopicSlice(topic=self.topic, ranges=ranges),),
                             event_time_start=examples.slice.event_time_start,
                             event_time_end=examples.slice.event_time_end,
                             examples=len(examples),
                             examples_sha256=examples.slice.examples_sha256)

