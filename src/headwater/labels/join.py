"""The label join, sans I/O: logged predictions + outcomes → training examples.

:class:`JoinState` holds the open predictions (waiting for their outcome) and applies
events in event-time order. The rule (:class:`JoinRule`):

- A prediction made at ``t`` is *open* until its deadline ``t + window``.
- A request id names one prediction: the rows logged under it at its time (the served
  version and the shadows) gather; rows logged under an id already taken at another
  time (a request repeated beyond what the server remembers) are set aside, the served
  ones counted (``repeated``), so the first prediction logged under an id is the one
  labelled, as the server answers a repeated id with its first answer.
- An outcome at ``ts`` matches by ``request_id`` when it carries one, otherwise the
  latest open prediction of its entity made at or before ``ts``. A match inside the
  window (``ts <= deadline``) closes the prediction and makes one example per scored
  version: with the outcome's ``label`` when it has one (source ``"explicit"``), else
  ``positive`` (source ``"outcome"``, e.g. a click).
- A prediction still open when time passes its deadline closes. With a
  ``timeout_label`` it becomes an example with that label (source ``"timeout"``, e.g.
  0 for "no click within 10 minutes"), at the deadline; without one (the default) it
  makes no example and is counted as ``expired``. Silence means a negative only for
  *natural* labels, events such as clicks whose absence is the outcome; for *explicit*
  labels (a fraud verdict, a rating) silence means "not known yet", and a timeout
  label would turn every label later than the window into its opposite. So the rule
  never assumes one: a stream of clicks says ``timeout_label=0.0``.
- An outcome that names a request id the join has not seen (its prediction not read
  yet: a server appends its predictions in batches, so an outcome can reach the log
  first) waits for it as long as a prediction waits for its outcome: until the watermark
  passes the outcome's time plus the window. Its prediction read meanwhile is matched as
  if it had come first.
- An outcome that matches nothing open is *late*, never dropped: ``"window_closed"``
  when its prediction already closed by timeout, ``"already_labelled"`` when another
  outcome closed it, ``"before_prediction"`` when it is older than the prediction it
  names, ``"unmatched"`` otherwise (no prediction of that request id came within a
  window of the outcome, or none of its entity was open).

Order. Events are applied by (time, kind, arrival) with predictions before outcomes at
equal times, and a prediction expires when an event with a *later* time is applied or
the watermark passes its deadline: so an outcome exactly at the deadline still counts,
and the result depends only on the events and the watermark, never on how they were
batched. An outcome read ahead of a partition that is behind closes nothing past the
watermark (that partition's outcomes may still answer); it is compared with the deadline
of the prediction it names. Closed predictions are remembered for one more window, so a
late outcome can be told from one that matched nothing.

>>> rule = JoinRule(window=10, timeout_label=0.0)  # clicks: silence is a 0
>>> state = JoinState(rule)
>>> state.add_predictions([LoggedPrediction("r1", "u", b"{}", "m", 1, 0.7, "champion", True, 100)])
>>> done = state.apply([Outcome("r1", "u", None, 105)], watermark=105)
>>> [(e.request_id, e.label, e.source, e.label_time) for e in done.examples]
[('r1', 1.0, 'outcome', 105)]
>>> state.add_predictions([LoggedPrediction("r2", "u", b"{}", "m", 1, 0.2, "champion", True, 120)])
>>> [(e.request_id, e.label, e.source) for e in state.apply([], watermark=131).examples]
[('r2', 0.0, 'timeout')]
>>> [(x.request_id, x.reason) for x in state.apply([Outcome("r2", "u", None, 129)], 131).late]
[('r2', 'window_closed')]
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import msgspec
import pyarrow as pa

from headwater.errors import ValidationError

__all__ = [
    "Example",
    "JoinRule",
    "JoinState",
    "Joined",
    "Late",
    "LoggedPrediction",
    "Outcome",
    "outcomes_of",
    "predictions_of",
]


class JoinRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How outcomes become labels (see the module docstring).

    ``timeout_label`` is the label of a prediction with no outcome in its window
    (``None``, the default: no example). ``lateness`` (µs) is how long after the
    joiner's clock an outcome may still be appended: an idle outcomes topic advances
    the watermark to ``now - lateness``.
    """

    window: int
    positive: float = 1.0
    timeout_label: float | None = None
    lateness: int = 0

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise ValidationError("window", "must be a positive duration")
        if self.lateness < 0:
            raise ValidationError("lateness", "must not be negative")


class LoggedPrediction(NamedTuple):
    """One logged prediction event (one scored version of a request)."""

    request_id: str
    entity: str
    features: bytes
    model: str
    version: int
    score: float
    arm: str
    served: bool
    ts: int
    #: The probability the routing policy gave ``arm`` (1 when always scored).
    propensity: float = 1.0


class Outcome(NamedTuple):
    """One outcome event; ``request_id`` and ``label`` may be ``None``."""

    request_id: str | None
    entity: str
    label: float | None
    ts: int


class Example(NamedTuple):
    """A prediction joined with its label (a row of the training-examples topic)."""

    request_id: str
    entity: str
    features: bytes
    model: str
    version: int
    score: float
    arm: str
    served: bool
    label: float
    source: str
    prediction_time: int
    label_time: int


class Late(NamedTuple):
    """An outcome that matched no open prediction, with the reason."""

    request_id: str | None
    entity: str
    label: float | None
    ts: int
    reason: str
    prediction_time: int | None


def predictions_of(batch: pa.RecordBatch | pa.Table) -> list[LoggedPrediction]:
    """The rows of a batch of the predictions topic."""
    cols = [batch.column(n).to_pylist() for n in
            ("request_id", "entity", "features", "model", "version", "score", "arm", "served")]
    ts = batch.column("ts").cast(pa.int64()).to_pylist()
    propensity = batch.column("propensity").to_pylist()
    return [LoggedPrediction(*row) for row in zip(*cols, ts, propensity, strict=True)]


def outcomes_of(batch: pa.RecordBatch | pa.Table) -> list[Outcome]:
    """The rows of a batch of an outcomes topic."""
    cols = [batch.column(n).to_pylist() for n in ("request_id", "entity", "label")]
    ts = batch.column("ts").cast(pa.int64()).to_pylist()
    return [Outcome(*row) for row in zip(*cols, ts, strict=True)]


class Joined(NamedTuple):
    """What one :meth:`JoinState.apply` produced."""

    examples: list[Example]
    late: list[Late]
    expired: int


class _Open(msgspec.Struct, array_like=True):
    time: int
    rows: list[LoggedPrediction]


class _Snapshot(msgspec.Struct, array_like=True):
    rule: JoinRule
    watermark: int
    open: dict[str, _Open]
    closed: dict[str, tuple[int, str]]
    expired: int
    repeated: int = 0
    waiting: list[Outcome] = []


class JoinState:
    """Open predictions and recently closed ones; see the module docstring."""

    def __init__(self, rule: JoinRule) -> None:
        self.rule = rule
        self.watermark = -(1 << 62)
        self.expired = 0
        #: Served predictions logged again under a request id already taken (set aside).
        self.repeated = 0
        self._open: dict[str, _Open] = {}
        self._by_entity: dict[str, list[tuple[int, str]]] = {}
        self._deadlines: list[tuple[int, str]] = []
        self._closed: dict[str, tuple[int, str]] = {}  # request id -> (prediction time, how)
        self._forget: list[tuple[int, str]] = []
        #: Outcomes naming a request id not seen yet, in arrival order (see the module).
        self._waiting: list[Outcome] = []

    @property
    def open(self) -> int:
        """Requests waiting for their outcome."""
        return len(self._open)

    @property
    def waiting(self) -> int:
        """Outcomes waiting for the prediction they name."""
        return len(self._waiting)

    def is_open(self, request_id: str) -> bool:
        """Whether ``request_id`` still waits for its outcome."""
        return request_id in self._open

    def due(self, watermark: int) -> bool:
        """Whether :meth:`apply` with ``watermark`` and no outcome would close a window."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][1] not in self._open:
            heapq.heappop(deadlines)  # a request closed by an outcome: nothing is due
        if any(o.ts + self.rule.window <= watermark - 1 for o in self._waiting):
            return True
        return bool(deadlines) and deadlines[0][0] <= watermark - 1

    def add_predictions(self, rows: Iterable[LoggedPrediction]) -> None:
        """Open the requests of ``rows`` (rows of one request gather, served or shadow)."""
        window = self.rule.window
        for row in rows:
            entry = self._open.get(row.request_id)
            if entry is not None:
                if row.ts != entry.time or (row.served and any(r.served for r in entry.rows)):
                    self.repeated += row.served  # the id again: the first prediction stands
                    continue
                entry.rows.append(row)
                continue
            if row.request_id in self._closed:
                self.repeated += row.served  # a request already closed, logged again
                continue
            self._open[row.request_id] = _Open(row.ts, [row])
            self._by_entity.setdefault(row.entity, []).append((row.ts, row.request_id))
            heapq.heappush(self._deadlines, (row.ts + window, row.request_id))

    def apply(self, outcomes: Sequence[Outcome], watermark: int) -> Joined:
        """Apply ``outcomes`` in time order, then expire up to ``watermark``."""
        examples: list[Example] = []
        late: list[Late] = []
        expired = self.expired
        # Outcomes that waited for their prediction go first among equal times: they came
        # before the ones read now. The sort is stable, so arrival order breaks ties.
        waiting, self._waiting = self._waiting, []
        for outcome in sorted([*waiting, *outcomes], key=lambda o: o.ts):
            # Time is known to have passed only up to the watermark: an outcome of another
            # partition, read ahead of one behind, must not close what that one may answer.
            self._expire(min(outcome.ts, watermark) - 1, examples)
            self._match(outcome, watermark, examples, late)
        self._expire(watermark - 1, examples)
        if watermark > self.watermark:
            self.watermark = watermark
        self._forget_closed()
        return Joined(examples, late, self.expired - expired)

    def _match(self, outcome: Outcome, watermark: int, examples: list[Example],
               late: list[Late]) -> None:
        rid = outcome.request_id
        if rid is None:
            rid = self._latest_open(outcome.entity, outcome.ts)
            if rid is None:
                late.append(Late(*outcome, "unmatched", None))
                return
        entry = self._open.get(rid)
        if entry is None:
            closed = self._closed.get(rid)
            if closed is None:
                if outcome.ts + self.rule.window > max(watermark, self.watermark) - 1:
                    self._waiting.append(outcome)  # its prediction may not be read yet
                else:
                    late.append(Late(*outcome, "unmatched", None))
            else:
                late.append(Late(*outcome, closed[1], closed[0]))
            return
        if outcome.ts < entry.time:
            late.append(Late(*outcome, "before_prediction", entry.time))
            return
        if outcome.ts > entry.time + self.rule.window:  # its window closed before it came
            self._time_out(rid, entry, examples)
            late.append(Late(*outcome, "window_closed", entry.time))
            return
        label, source = ((self.rule.positive, "outcome") if outcome.label is None
                         else (float(outcome.label), "explicit"))
        self._close(rid, entry, "already_labelled")
        examples.extend(Example(*row[:8], label, source, entry.time, outcome.ts)
                        for row in entry.rows)

    def _latest_open(self, entity: str, ts: int) -> str | None:
        found: tuple[int, str] | None = None
        window = self.rule.window
        for made, rid in self._by_entity.get(entity, ()):
            if (made <= ts <= made + window and rid in self._open
                    and (found is None or made >= found[0])):
                found = (made, rid)
        return None if found is None else found[1]

    def _expire(self, until: int, examples: list[Example]) -> None:
        """Close, by timeout, every open prediction whose deadline is at or before ``until``."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= until:
            _, rid = heapq.heappop(deadlines)
            entry = self._open.get(rid)
            if entry is not None:
                self._time_out(rid, entry, examples)

    def _time_out(self, rid: str, entry: _Open, examples: list[Example]) -> None:
        """Close ``rid`` at its deadline: the timeout label's example, or counted."""
        self._close(rid, entry, "window_closed")
        timeout = self.rule.timeout_label
        if timeout is None:
            self.expired += 1
            return
        deadline = entry.time + self.rule.window
        examples.extend(Example(*row[:8], timeout, "timeout", entry.time, deadline)
                        for row in entry.rows)

    def _close(self, rid: str, entry: _Open, how: str) -> None:
        del self._open[rid]
        made = self._by_entity.get(entry.rows[0].entity)
        if made is not None:
            made.remove((entry.time, rid))
            if not made:
                del self._by_entity[entry.rows[0].entity]
        self._closed[rid] = (entry.time, how)
        heapq.heappush(self._forget, (entry.time + 2 * self.rule.window, rid))

    def _forget_closed(self) -> None:
        """Drop closed requests two windows after they were made (the watermark passed)."""
        forget = self._forget
        while forget and forget[0][0] < self.watermark:
            self._closed.pop(heapq.heappop(forget)[1], None)

    # -- snapshot and restore ----------------------------------------------------

    def snapshot(self) -> bytes:
        """The state as bytes (MessagePack): :meth:`restore` continues from it exactly."""
        return msgspec.msgpack.encode(_Snapshot(self.rule, self.watermark, self._open,
                                                self._closed, self.expired, self.repeated,
                                                self._waiting))

    @classmethod
    def restore(cls, data: bytes, rule: JoinRule | None = None) -> JoinState:
        """The state :meth:`snapshot` saved, under its own rule or under ``rule`` (which
        then applies to the requests still open: closed ones stay closed)."""
        snap = msgspec.msgpack.decode(data, type=_Snapshot)
        rule = rule or snap.rule
        state = cls(rule)
        state.watermark = snap.watermark
        state.expired = snap.expired
        state.repeated = snap.repeated
        state._waiting = [Outcome(*o) for o in snap.waiting]
        # In the order they were opened (a dict keeps it): an entity's open requests are
        # then listed as before the snapshot, so ties in time resolve the same way.
        for rid, entry in snap.open.items():
            entry.rows = [LoggedPrediction(*row) for row in entry.rows]
            state._open[rid] = entry
            state._by_entity.setdefault(entry.rows[0].entity, []).append((entry.time, rid))
            heapq.heappush(state._deadlines, (entry.time + rule.window, rid))
        window = rule.window
        for rid, (made, how) in sorted(snap.closed.items(), key=lambda kv: kv[1][0]):
            state._closed[rid] = (made, how)
            heapq.heappush(state._forget, (made + 2 * window, rid))
        return state
