"""Decision logging: every contextual decision is an event on the ``decisions`` topic.

An event holds the request id, the entity, the context the policy saw (JSON in the
binary ``context`` column: an object for a named context, an array for a vector), the
actions it could choose from (a JSON array), the action chosen, its propensity, the
policy's name and the time. With the rewards that come later (joined by request id),
these events are what off-policy estimates (:mod:`headwater.bandits.offpolicy`) read.

Logging is off the hot path, as for predictions
(:class:`~headwater.serving.prediction_log.PredictionLog`): :meth:`DecisionLog.record`
encodes the context and appends a :class:`~headwater.log.system.DecisionRow` to a bounded
queue and returns; a background thread appends the queue
to the log as one Arrow batch every ``flush_ms`` or once ``batch_events`` wait. A full
queue drops the event and counts it (``dropped``); a failed append counts its events
(``failed``); :meth:`DecisionLog.close` flushes what is left. :func:`read_decisions`
reads the topic back as columns.

>>> from headwater.log import Log
>>> from headwater.testing import ManualClock, MemoryBackend
>>> from headwater.bandits.decision import Decision
>>> log = Log(MemoryBackend(clock=ManualClock(0)))
>>> with DecisionLog(log) as decisions:
...     decisions.record("r-1", "user-1", {"hour": 3.0},
...                      Decision("up", 0.9, "linucb", ("down", "up"), (0.1, 0.9)), ts=0)
>>> read_decisions(log).column("propensity").to_pylist()
[0.9]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec
import numpy as np
import pyarrow as pa

from headwater.bandits.decision import Context, Decision
from headwater.log import Log
from headwater.log.appender import BatchAppender
from headwater.log.system import DECISIONS, DecisionRow

__all__ = ["DECISIONS_SCHEMA", "DECISIONS_TOPIC", "DecisionLog", "ensure_topic",
           "read_decisions"]

#: The default topic of decision events.
DECISIONS_TOPIC: Final = DECISIONS.name
#: One event per decision (:class:`~headwater.log.system.DecisionRow`).
DECISIONS_SCHEMA: Final = DECISIONS.schema

_ENCODE: Final = msgspec.json.Encoder().encode


def _jsonable(context: Context) -> Any:
    if isinstance(context, Mapping):
        return {str(k): float(v) for k, v in context.items()}
    return np.asarray(context, dtype=np.float64).tolist()


def ensure_topic(log: Log, topic: str = DECISIONS_TOPIC, *, partitions: int = 1) -> None:
    """Create the decisions topic if it is missing (an existing one must match)."""
    DECISIONS.ensure(log, topic, partitions=partitions)


def read_decisions(log: Log, topic: str = DECISIONS_TOPIC) -> pa.Table:
    """Every decision on ``topic``, partition after partition, as one table."""
    return log.read_table(topic).select(list(DECISIONS_SCHEMA.names))


class DecisionLog(BatchAppender[DecisionRow]):
    """Appends decision events to ``topic`` in batches from a background thread."""

    def __init__(self, log: Log, topic: str = DECISIONS_TOPIC, *, capacity: int = 100_000,
                 batch_events: int = 1_000, flush_ms: float = 50.0) -> None:
        ensure_topic(log, topic)
        super().__init__(log, topic, capacity=capacity, batch_events=batch_events,
                         flush_ms=flush_ms, name="headwater-decision-log")

    def record(self, request_id: str, entity: str, context: Context, decision: Decision,
               ts: int) -> None:
        """Queue one decision (its context encoded now); never blocks."""
        self._put(DecisionRow(request_id, entity, _ENCODE(_jsonable(context)),
                              _ENCODE(list(decision.actions)), decision.action,
                              decision.propensity, decision.policy, ts))

    def encode(self, events: list[DecisionRow]) -> pa.RecordBatch:
        return DECISIONS.encode(events)

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
