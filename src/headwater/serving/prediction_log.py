"""Prediction logging: every prediction is an event on the ``predictions`` topic.

An event holds the request id, the entity, the model input *as served* (a JSON object
in the binary ``features`` column: feature values, request values and defaults that
filled gaps), the model version, the score, the policy arm, whether the score was
returned or only shadowed, the names of the inputs the model's neutral defaults filled
(``missing``: no value at all), the time, and the propensity: the probability the
routing policy gave the arm (for off-policy estimates), the latency of the prediction in
the service (for canary guardrails), the names of the features whose value is their
definition's default because the entity had none (``defaulted``: a count of 0 for an
entity never seen is a value, and is flagged as a filled one), the model update the
version served with (``update``, an offset in the ``model_updates`` topic; null for the
version as registered): the served state is exactly (version, update), and the key of
every entity of the request (``entities``, a JSON object: ``entity`` holds only the key
the request was routed by), so a replay can look each entity's features up again.
Labels are later joined to these events, and a training set rebuilt from them sees
exactly what the model saw.

The topic and its schema are defined with the other topics of the label loop
(:mod:`headwater.labels.schema`). A predictions topic created by an earlier version of
Headwater (without ``defaulted``) is still read by every reader (:func:`ensure_readable`),
but a server refuses to write to it (:func:`ensure_topic` raises, naming the topic and how
to move on): its events could not say which values were filled.

Logging is off the hot path but for one step. :meth:`PredictionLog.record` encodes the
model input to JSON — a microsecond or so while the row is still in the CPU's cache, and
the event then holds no mutable object — appends a tuple to a bounded in-memory queue
and returns; a background thread drains the queue every ``flush_ms`` or as soon as
``batch_events`` are waiting and appends the events to the log as one Arrow batch.
(Encoding in the background thread instead cost more CPU in all: the thread read every
row from another core's cache; ``benchmarks/serving.py`` measures both threads.) A
request never waits for the log: when the queue is full the event is dropped and
counted (``dropped``, exported as a metric), never blocked on. A failed append is
counted too (``failed``) and its events dropped; events still queued at :meth:`close`
are flushed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
import pyarrow as pa

from headwater.labels.schema import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from headwater.labels.schema import ensure_predictions_readable as ensure_readable
from headwater.labels.schema import ensure_predictions_topic as ensure_topic
from headwater.log import Log
from headwater.log.appender import BatchAppender

__all__ = ["PREDICTIONS_SCHEMA", "PREDICTIONS_TOPIC", "PredictionLog", "ensure_readable",
           "ensure_topic"]

_ENCODE: Final = msgspec.json.Encoder().encode
_Event = tuple[str, str, bytes, str, int, float, str, bool, Sequence[str], int, float, float,
               Sequence[str], int | None, bytes | None]


class PredictionLog(BatchAppender[_Event]):
    """Appends prediction events to ``topic`` in batches from a background thread.

    ``capacity`` bounds the queue (events beyond it are dropped and counted);
    ``batch_events`` and ``flush_ms`` set how often the thread appends
    (:class:`~headwater.log.appender.BatchAppender`).
    """

    def __init__(self, log: Log, topic: str = PREDICTIONS_TOPIC, *, capacity: int = 100_000,
                 batch_events: int = 1_000, flush_ms: float = 50.0) -> None:
        ensure_topic(log, topic)
        super().__init__(log, topic, capacity=capacity, batch_events=batch_events,
                         flush_ms=flush_ms, name="headwater-prediction-log")

    def record(self, request_id: str, entity: str, features: Mapping[str, Any], model: str,
               version: int, score: float, arm: str, served: bool, missing: Sequence[str],
               ts: int, propensity: float = 1.0, latency_ms: float = 0.0,
               defaulted: Sequence[str] = (), update: int | None = None,
               entities: Mapping[str, str] | None = None) -> None:
        """Queue one event (``features`` encoded now); never blocks. ``propensity`` is the
        probability the routing policy gave ``arm`` (1 for a shadow: always scored);
        ``latency_ms`` how long the prediction took in the service (features, routing,
        scoring); ``defaulted`` the features whose value is their default; ``update``
        the offset of the model update the version served with (``None``: none);
        ``entities`` the request's key of every entity (``entity`` is the one it was
        routed by)."""
        queue = self._queue
        if len(queue) >= self.capacity or self._closed:
            self.dropped += 1
            return
        queue.append((request_id, entity, _ENCODE(features), model, version, score, arm,
                      served, missing, ts, propensity, latency_ms, defaulted, update,
                      None if entities is None else _ENCODE(entities)))
        if len(queue) == self.batch_events:
            self._wake.set()

    def encode(self, events: list[_Event]) -> pa.RecordBatch:
        columns = list(zip(*events, strict=True))
        return pa.record_batch([
            pa.array(columns[0], pa.string()),
            pa.array(columns[1], pa.string()),
            pa.array(columns[2], pa.binary()),
            pa.array(columns[3], pa.string()),
            pa.array(columns[4], pa.int64()),
            pa.array(columns[5], pa.float64()),
            pa.array(columns[6], pa.string()),
            pa.array(columns[7], pa.bool_()),
            pa.array([",".join(m) for m in columns[8]], pa.string()),
            pa.array(columns[9], pa.timestamp("us", tz="UTC")),
            pa.array(columns[10], pa.float64()),
            pa.array(columns[11], pa.float64()),
            pa.array([",".join(d) for d in columns[12]], pa.string()),
            pa.array(columns[13], pa.int64()),
            pa.array([None if e is None else e.decode() for e in columns[14]], pa.string()),
        ], schema=PREDICTIONS_SCHEMA.arrow_schema())

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
