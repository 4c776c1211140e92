"""Replaying a history through the whole system on a simulated clock.

:func:`simulate` takes a user's events (a table of the event topic's schema, each with a
request id) and outcomes (a request id, a label and the time the label became known),
and replays them in time order through a :class:`~headwater.system.System`: the clock
moves one ``tick`` at a time; in each tick the events and the outcomes known by its end
are appended to the log, the engine applies them, every event is a prediction request
for its entity (with the ``request`` columns as request values), and every
``learn_every`` the system joins, trains and hot-swaps (the cycles due while nothing
came are one cycle, at the last of them: with no new event or outcome they would only
move the clock). An outcome is released at its own time, never with its event: a label
known hours later is learnt hours later.

The log, the model store and the online store it writes are those of a live run, so
``headwater report`` and ``headwater models lineage`` read the result. The
:class:`Scorecard` says what the loop did: quality per arm on the joined examples, the
age of the newest label the served model had learnt at each prediction (median and
p90), versions promoted and rejected, and each component's CPU time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import ValidationError
from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC, TRAINING_EXAMPLES_TOPIC
from headwater.models.metrics import accuracy, log_loss, roc_auc
from headwater.registry import ModelVersion
from headwater.system.system import System
from headwater.time import ManualClock

__all__ = ["Arm", "Progress", "Scorecard", "simulate"]


@dataclass(frozen=True)
class Arm:
    """One routing arm's prequential quality on its joined examples."""

    arm: str
    examples: int
    auc: float | None
    log_loss: float
    accuracy: float


@dataclass(frozen=True)
class Progress:
    """How far the replay is: events replayed of all, and the wall seconds so far."""

    done: int
    total: int
    wall_s: float

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 100.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the pace so far (``None`` before the first event)."""
        if not self.done:
            return None
        return self.wall_s * (self.total - self.done) / self.done


@dataclass
class Scorecard:
    """What the replay did (see the module)."""

    events: int = 0
    outcomes: int = 0
    predictions: int = 0
    examples: int = 0
    late_outcomes: int = 0
    arms: list[Arm] = field(default_factory=list)
    label_age_median_s: float | None = None
    label_age_p90_s: float | None = None
    never_learnt: int = 0
    promoted: int = 0
    rejected: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _newest_label(version: ModelVersion) -> int | None:
    training = version.lineage.training
    return None if training is None else training.event_time_end


def simulate(system: System, clock: ManualClock, *, topic: str, events: pa.Table,
             ids: str, outcomes: pa.Table, request: Sequence[str] = (),
             tick_us: int = 1_000_000, learn_every_us: int = 60_000_000,
             on_progress: Callable[[Progress], None] | None = None,
             progress_every: int = 10_000) -> Scorecard:
    """Replay ``events`` (the topic's schema plus the request-id column ``ids``) and
    ``outcomes`` (``request_id``, ``label`` and ``known_at``, int64 µs) through
    ``system``, whose clock is ``clock`` (see the module)."""
    if tick_us <= 0 or learn_every_us <= 0:
        raise ValidationError("tick", "the tick and the learning interval must be positive")
    info = system.log.topic(topic)
    schema = info.schema
    if ids not in events.column_names:
        raise ValidationError("ids", f"the events have no column {ids!r}")
    if schema.key is None:
        raise ValidationError("topic", f"topic {topic!r} has no key: a request needs one")
    entity_names = system.predictor.entities
    if len(entity_names) != 1:
        raise ValidationError("features", "a replay sends one entity per request; the "
                              f"feature set has {len(entity_names)}")
    entity = entity_names[0]
    for name in request:
        if name not in events.column_names:
            raise ValidationError("request", f"the events have no column {name!r}")
    times = events.column(schema.event_time).cast(pa.int64()).to_numpy()
    order = np.argsort(times, kind="stable")
    events = events.take(pa.array(order))
    times = times[order]
    keys = events.column(schema.key).cast(pa.string()).to_pylist()
    request_ids = events.column(ids).cast(pa.string()).to_pylist()
    if len(set(request_ids)) != len(request_ids):
        raise ValidationError(ids, "request ids repeat: each event must name one request")
    entity_of = dict(zip(request_ids, keys, strict=True))
    request_values = [events.column(n).to_pylist() for n in request]
    stored = events.select([f.name for f in schema.fields])
    # outcomes: the entity of the request each names; unknown ids are refused, not lost
    out_ids = outcomes.column("request_id").cast(pa.string()).to_pylist()
    unknown = [i for i in out_ids if i not in entity_of]
    if unknown:
        raise ValidationError("outcomes.request_id", f"{len(unknown)} outcomes name no event "
                              f"(first: {unknown[0]!r})")
    known = outcomes.column("known_at").cast(pa.int64()).to_numpy()
    out_order = np.argsort(known, kind="stable")
    known = known[out_order]
    labels = outcomes.column("label").cast(pa.float64()).take(pa.array(out_order))
    out_ids = [out_ids[i] for i in out_order]
    ts_type = pa.timestamp("us", tz="UTC")

    card = Scorecard(events=len(times), outcomes=len(known))
    started = time.perf_counter()
    ages: list[int] = []
    served_newest = _served_newest(system)
    n, m = len(times), len(known)
    i = j = 0
    start = int(min(times[0] if n else 1 << 62, known[0] if m else 1 << 62))
    now = start - 1
    next_learn = start + learn_every_us
    shown = 0
    fresh = False  # events or outcomes appended since the last learning cycle
    while i < n or j < m:
        upcoming = min(int(times[i]) if i < n else 1 << 62, int(known[j]) if j < m else 1 << 62)
        now = start + -(-(upcoming - start) // tick_us) * tick_us  # the end of its tick
        if next_learn <= now:  # labels and training as time passes, not all at once
            due = next_learn + (now - next_learn) // learn_every_us * learn_every_us
            # the first cycle due sees what came; the ones after it saw nothing new, and
            # one cycle at the last of them stands for them all
            for at in (next_learn, due) if fresh and due > next_learn else (due,):
                clock.set(max(clock.now_us(), at))
                if system.learn():
                    served_newest = _served_newest(system)
            fresh = False
            next_learn = due + learn_every_us
        clock.set(now)
        hi = int(np.searchsorted(known, now, side="right"))
        if hi > j:
            appended = system.log.append(OUTCOMES_TOPIC, pa.record_batch({
                "request_id": out_ids[j:hi], "entity": [entity_of[r] for r in out_ids[j:hi]],
                "label": labels.slice(j, hi - j).combine_chunks(),
                "ts": pa.array(known[j:hi], pa.int64()).cast(ts_type)},
                schema=OUTCOMES_SCHEMA.arrow_schema()))
            if appended.rejected:
                bad = appended.rejected[0]
                raise ValidationError(f"outcomes.{bad.field}", f"the outcome of request "
                                      f"{out_ids[j + bad.index]!r} refused: {bad.reason}")
            j = hi
            fresh = True
        hi = int(np.searchsorted(times, now, side="right"))
        if hi > i:
            result = system.log.append(topic, stored.slice(i, hi - i))
            if result.rejected:
                first = result.rejected[0]
                raise ValidationError(f"events.{first.field}", f"row {i + first.index + 1} "
                                      f"(in time order) refused: {first.reason}")
            system.features()
            for k in range(i, hi):
                values = {name: col[k] for name, col in zip(request, request_values,
                                                            strict=True)}
                system.predict({entity: keys[k]}, values, request_id=request_ids[k])
                if served_newest is None:
                    card.never_learnt += 1
                else:
                    ages.append(now - served_newest)
            card.predictions += hi - i
            i = hi
            fresh = True
        if on_progress is not None and i - shown >= progress_every:
            shown = i
            on_progress(Progress(i, n, time.perf_counter() - started))
    clock.set(max(now, next_learn))
    system.learn()
    system.serving.flush()
    card.wall_s = time.perf_counter() - started
    if on_progress is not None:
        on_progress(Progress(n, n, card.wall_s))
    _score(system, card, ages)
    return card


def _served_newest(system: System) -> int | None:
    """The time of the newest label the version the first arm serves had learnt."""
    served = system.deployment.snapshot.model_for(system.config.arms[0])
    if served is None:
        return None
    newest = _newest_label(system.registry.get(system.config.model, served.version))
    if newest is None:  # a continual version: its slice starts where its parent's ended
        for parent in system.registry.ancestors(system.config.model, served.version):
            newest = _newest_label(parent)
            if newest is not None:
                break
    return newest


def _score(system: System, card: Scorecard, ages: list[int]) -> None:
    card.late_outcomes = system.joiner.progress.counts.late
    card.promoted = sum(p.verdict.promote for p in system.published)
    card.rejected = len(system.published) - card.promoted
    card.cpu_s = {k: round(v, 3) for k, v in system.cpu_s.items()}
    if ages:
        card.label_age_median_s = float(np.median(ages)) / 1e6
        card.label_age_p90_s = float(np.percentile(ages, 90)) / 1e6
    tables = []
    for partition in range(system.log.topic(TRAINING_EXAMPLES_TOPIC).partitions):
        offset = 0
        while True:
            fetched = system.log.read(TRAINING_EXAMPLES_TOPIC, partition, offset, 100_000)
            if not fetched.batch.num_rows:
                break
            tables.append(pa.Table.from_batches([fetched.batch]).select(
                ["arm", "score", "label"]))
            offset = fetched.next_offset
    if not tables:
        return
    examples = pa.concat_tables(tables)
    card.examples = examples.num_rows
    for arm in sorted(set(examples.column("arm").to_pylist())):
        rows = examples.filter(pc.equal(examples.column("arm"), arm))
        y = rows.column("label").to_numpy()
        s = rows.column("score").to_numpy()
        both = len(np.unique(y)) == 2
        card.arms.append(Arm(arm, rows.num_rows, round(roc_auc(y, s), 6) if both else None,
                             round(log_loss(y, s), 6), round(accuracy(y, s), 6)))
