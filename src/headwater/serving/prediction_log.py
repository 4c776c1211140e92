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

Logging is off the hot path but for one step. The caller encodes the model input to JSON
(:func:`encode_features`) — a microsecond or so while the row is still in the CPU's cache,
and the event then holds no mutable object — and :meth:`PredictionLog.record` appends the
event (a :class:`~headwater.log.system.PredictionRow`) to a bounded in-memory queue and
returns; a background thread drains the queue every ``flush_ms`` or as soon as
``batch_events`` are waiting and appends the events to the log as one Arrow batch.
(Encoding in the background thread instead cost more CPU in all: the thread read every
row from another core's cache; ``benchmarks/serving.py`` measures both threads.) A
request never waits for the log: when the queue is full the event is dropped and
counted (``dropped``, exported as a metric), never blocked on. A failed append is
counted too (``failed``) and its events dropped; events still queued at :meth:`close`
are flushed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec
import pyarrow as pa

from headwater.labels.schema import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from headwater.labels.schema import ensure_predictions_readable as ensure_readable
from headwater.labels.schema import ensure_predictions_topic as ensure_topic
from headwater.log import Log
from headwater.log.appender import BatchAppender
from headwater.log.system import PREDICTIONS, PredictionRow

__all__ = ["PREDICTIONS_SCHEMA", "PREDICTIONS_TOPIC", "PredictionLog", "PredictionRow",
           "encode_entities", "encode_features", "ensure_readable", "ensure_topic"]

_ENCODE: Final = msgspec.json.Encoder().encode


def encode_features(features: Mapping[str, Any]) -> bytes:
    """The model input as a prediction event holds it (a JSON object)."""
    return _ENCODE(features)


def encode_entities(entities: Mapping[str, str] | None) -> str | None:
    """A request's key of every entity as a prediction event holds it (a JSON object of
    entity name to key; ``None`` when the writer did not give them)."""
    return None if entities is None else _ENCODE(entities).decode()


class PredictionLog(BatchAppender[PredictionRow]):
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

    def record(self, event: PredictionRow) -> None:
        """Queue one event; never blocks (a full queue drops it and counts)."""
        self._put(event)

    def encode(self, events: list[PredictionRow]) -> pa.RecordBatch:
        return PREDICTIONS.encode(events)

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
