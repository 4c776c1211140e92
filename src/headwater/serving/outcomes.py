"""Outcomes sent to the prediction service: appended to the outcomes topic, once each.

``POST /outcomes`` takes one outcome or a batch (:class:`~headwater.serving.messages.
OutcomeRequest`) and :class:`OutcomeSink` appends them to the ``outcomes`` topic
(:data:`~headwater.labels.OUTCOMES_SCHEMA`), where the label joiner reads them.

Acknowledged after the append: the answer comes once the outcomes are in the log,
durable under the log's fsync policy. A batch is checked whole before anything is
appended, so a bad outcome fails the batch and appends none of it.

Idempotent, by a dedup rule (the log's idempotent producer numbers the batches of one
producer, which does not fit outcomes that each carry their own identity). An outcome
is identified by its ``request_id`` — one prediction has one outcome — or, without one,
by its entity, time and label (so such an outcome must carry its ``ts``: without it a
retry could not be told from a new outcome, and it is refused). The sink remembers the
identities it appended (the latest ``remember``; at start, read back from the end of
the topic, so a restart forgets nothing recent) and does not append one again: the
answer counts it under ``duplicates``. The same request id with another entity or
label is refused as a conflict (409), naming the field. Two servers appending to one
topic do not share what they remember: a retry that reaches the other one appends the
outcome again, and the label joiner then labels the prediction from the first and keeps
the second aside as ``already_labelled`` — a prediction is never labelled twice.

>>> from headwater.log import Log
>>> from headwater.serving.messages import OutcomeRequest
>>> from headwater.testing import ManualClock, MemoryBackend
>>> clock = ManualClock(1_700_000_000_000_000)
>>> sink = OutcomeSink(Log(MemoryBackend(clock=clock), clock=clock), clock=clock)
>>> sink.append([OutcomeRequest("u1", request_id="r1", label=1.0)])
OutcomesAck(appended=1, duplicates=0)
>>> sink.append([OutcomeRequest("u1", request_id="r1", label=1.0)])  # a retry
OutcomesAck(appended=0, duplicates=1)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

import pyarrow as pa

from headwater.errors import ConflictError, ValidationError
from headwater.features.online import entity_key
from headwater.labels.schema import OUTCOMES_SCHEMA, OUTCOMES_TOPIC
from headwater.log import Log
from headwater.log.records import Rejection
from headwater.serving.messages import OutcomeRequest, OutcomesAck
from headwater.time import Clock, SystemClock, parse_timestamp

__all__ = ["OutcomeSink"]

_ARROW: Final = OUTCOMES_SCHEMA.arrow_schema()
_Identity = tuple[str, ...]


class OutcomeSink:
    """Appends outcomes to ``topic`` once each (see the module)."""

    def __init__(self, log: Log, *, topic: str = OUTCOMES_TOPIC, clock: Clock | None = None,
                 remember: int = 100_000) -> None:
        if remember < 1:
            raise ValidationError("remember", f"expected at least 1, got {remember}")
        log.ensure_topic(topic, OUTCOMES_SCHEMA)
        self.log = log
        self.topic = topic
        self.clock: Clock = clock or SystemClock()
        self.remember = remember
        #: Outcomes appended, and retries recognised (not appended again).
        self.appended = 0
        self.duplicates = 0
        self._seen: OrderedDict[_Identity, tuple[str, float | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._read_back()

    def append(self, outcomes: Sequence[OutcomeRequest], field: str = "outcomes"
               ) -> OutcomesAck:
        """Append the outcomes not appended before; fields are named ``<field>[i].…``
        (``field=""`` for a single outcome: ``ts``, ``request_id``)."""
        now = self.clock.now_us()
        rows: list[tuple[str | None, str, float | None, int]] = []
        identities: list[_Identity] = []

        def named(i: int, name: str) -> str:
            return f"{field}[{i}].{name}" if field else name

        for i, outcome in enumerate(outcomes):
            if outcome.ts is None:
                if outcome.request_id is None:
                    raise ValidationError(named(i, "ts"), "required without a request_id, so "
                                          "that a retried outcome can be recognised")
                ts = now
            else:
                ts = parse_timestamp(outcome.ts, field=named(i, "ts"))
            entity = entity_key(outcome.entity, field=named(i, "entity"))  # 42 is "42"
            rows.append((outcome.request_id, entity, outcome.label, ts))
            identities.append(_identity(outcome.request_id, entity, outcome.label, ts))
        with self._lock:
            fresh: list[int] = []
            batch_seen: dict[_Identity, int] = {}
            for i, identity in enumerate(identities):
                request_id, entity, label, _ = rows[i]
                before = self._seen.get(identity)
                if before is None and identity in batch_seen:
                    j = batch_seen[identity]
                    before = (rows[j][1], rows[j][2])
                if before is None:
                    batch_seen[identity] = i
                    fresh.append(i)
                elif before != (entity, label):
                    raise ConflictError(named(i, "request_id"), f"request {request_id!r} "
                                        f"already has an outcome (entity {before[0]!r}, label "
                                        f"{before[1]}); one prediction has one outcome")
            if fresh:
                rejected = self._append([rows[i] for i in fresh], [identities[i] for i in fresh])
                if rejected:  # the others are in: a retry of the batch appends only these
                    first = rejected[0]
                    name = first.field.removeprefix("$").lstrip(".") or "entity"
                    raise ValidationError(named(fresh[first.index], name),
                                          f"{first.reason} (kept on the dead-letter topic)")
            duplicates = len(rows) - len(fresh)
            self.appended += len(fresh)
            self.duplicates += duplicates
        return OutcomesAck(len(fresh), duplicates)

    def _append(self, rows: list[tuple[str | None, str, float | None, int]],
                identities: list[_Identity]) -> tuple[Rejection, ...]:
        """Append ``rows``; remember those appended; return those the log rejected."""
        request_ids, entities, labels, times = zip(*rows, strict=True)
        batch = pa.record_batch([
            pa.array(request_ids, pa.string()), pa.array(entities, pa.string()),
            pa.array(labels, pa.float64()),
            pa.array(times, pa.int64()).cast(_ARROW.field("ts").type)], schema=_ARROW)
        result = self.log.append(self.topic, batch)
        rejected = {r.index for r in result.rejected}
        for i, identity in enumerate(identities):
            if i not in rejected:
                self._remember(identity, rows[i][1], rows[i][2])
        return result.rejected

    def _remember(self, identity: _Identity, entity: str, label: float | None) -> None:
        seen = self._seen
        seen[identity] = (entity, label)
        seen.move_to_end(identity)
        while len(seen) > self.remember:
            seen.popitem(last=False)

    def _read_back(self) -> None:
        """Remember the identities of the last ``remember`` outcomes of each partition."""
        log, topic = self.log, self.topic
        starts, ends = log.start_offsets(topic), log.end_offsets(topic)
        for partition, (start, end) in enumerate(zip(starts, ends, strict=True)):
            offset = max(start, end - self.remember)
            while offset < end:
                fetched = log.read(topic, partition, offset, min(end - offset, 50_000))
                batch = fetched.batch
                if not batch.num_rows:
                    break
                times = batch.column("ts").cast(pa.int64()).to_pylist()
                for rid, entity, label, ts in zip(batch.column("request_id").to_pylist(),
                                                  batch.column("entity").to_pylist(),
                                                  batch.column("label").to_pylist(), times,
                                                  strict=True):
                    self._remember(_identity(rid, entity, label, ts), entity, label)
                offset = fetched.next_offset


def _identity(request_id: str | None, entity: str, label: float | None, ts: int) -> _Identity:
    if request_id is not None:
        return ("request", request_id)
    return ("at", entity, str(ts), repr(label))
