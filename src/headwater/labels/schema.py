"""The topics of the label loop: predictions and outcomes in, training examples and late
outcomes out.

A **prediction** is an event the prediction service logs for every scored model version
(:class:`headwater.serving.PredictionLog` writes them); the joiner reads them.

An **outcome** is something that happened after a prediction and says how it went: a
click, a purchase, or an explicit label. It names the entity and, when the producer
knows it, the request id of the prediction it answers; ``label`` holds an explicit
label value (null for an event such as a click, whose label the window rule decides).

A **training example** is one logged prediction joined with its label: the features
exactly as served, which model version scored them and how, the label, when the
prediction was made and when the label became known (``label_time``, the event time:
a model that trains on the topic never sees a label before it was known). ``source``
says how the label was decided:

- ``"outcome"``: an outcome arrived within the window (a positive, or the outcome's
  explicit label);
- ``"timeout"``: no outcome by the end of the window (a negative, at the window end);
- ``"explicit"``: an explicit label joined by request id or by entity and time.

A prediction scored by several versions (one served, the others shadowed) gives one
example per version; training reads the served ones, evaluation compares them all.

A **late outcome** came after its prediction's window had closed (the prediction is
already a negative) or matched no prediction at all; it is kept on the late topic with
the reason, never dropped.

>>> TRAINING_EXAMPLES_SCHEMA.event_time, TRAINING_EXAMPLES_SCHEMA.key
('label_time', 'entity')
"""

from __future__ import annotations

from typing import Final, Literal

from headwater.errors import TopicExistsError, UnknownTopicError
from headwater.log import Log, Schema

__all__ = [
    "LATE_OUTCOMES_SCHEMA",
    "LATE_OUTCOMES_TOPIC",
    "OUTCOMES_SCHEMA",
    "OUTCOMES_TOPIC",
    "PREDICTIONS_SCHEMA",
    "PREDICTIONS_TOPIC",
    "TRAINING_EXAMPLES_SCHEMA",
    "TRAINING_EXAMPLES_TOPIC",
    "LabelSource",
    "ensure_predictions_readable",
    "ensure_predictions_topic",
]

#: The default topic of outcomes.
OUTCOMES_TOPIC: Final = "outcomes"
#: The default topic of training examples.
TRAINING_EXAMPLES_TOPIC: Final = "training_examples"
#: The default topic of outcomes that came too late or matched no prediction.
LATE_OUTCOMES_TOPIC: Final = "outcomes.late"

LabelSource = Literal["outcome", "timeout", "explicit"]

#: Outcomes: ``request_id`` and ``label`` may be null (see the module docstring).
OUTCOMES_SCHEMA: Final = Schema.of(
    {"request_id": "string", "entity": "string", "label": "float64", "ts": "timestamp"},
    key="entity", event_time="ts", nullable=("request_id", "label"))

#: One logged prediction joined with its label.
TRAINING_EXAMPLES_SCHEMA: Final = Schema.of(
    {"request_id": "string", "entity": "string", "features": "binary", "model": "string",
     "version": "int64", "score": "float64", "arm": "string", "served": "bool",
     "label": "float64", "source": "string", "prediction_time": "timestamp",
     "label_time": "timestamp"},
    key="entity", event_time="label_time")

#: An outcome kept aside: too late for its prediction's window, or matched nothing.
LATE_OUTCOMES_SCHEMA: Final = Schema.of(
    {"request_id": "string", "entity": "string", "label": "float64", "ts": "timestamp",
     "reason": "string", "prediction_time": "timestamp"},
    key="entity", event_time="ts", nullable=("request_id", "label", "prediction_time"))

#: The default topic of prediction events.
PREDICTIONS_TOPIC: Final = "predictions"
_FIELDS: Final = {
    "request_id": "string", "entity": "string", "features": "binary", "model": "string",
    "version": "int64", "score": "float64", "arm": "string", "served": "bool",
    "missing": "string", "ts": "timestamp", "propensity": "float64", "latency_ms": "float64"}
#: One event per scored model version (the returned one and every shadow). ``update`` is
#: the offset of the model update the version served with (null: as registered).
#: ``entity`` is the key the request was routed by; ``entities`` the request's every
#: entity key, as a JSON object of entity name to key (null when the writer did not give
#: them).
PREDICTIONS_SCHEMA: Final = Schema.of(
    {**_FIELDS, "defaulted": "string", "update": "int64", "entities": "string"},
    key="entity", event_time="ts", nullable=("update", "entities"))
#: The schemas of predictions topics written by earlier versions (no ``defaulted``; no
#: ``update``; no ``entities``).
_EARLIER: Final = (Schema.of(_FIELDS, key="entity", event_time="ts"),
                   Schema.of({**_FIELDS, "defaulted": "string"}, key="entity",
                             event_time="ts"),
                   Schema.of({**_FIELDS, "defaulted": "string", "update": "int64"},
                             key="entity", event_time="ts", nullable=("update",)))
_WHY: Final = {"defaulted": "which says which feature values were filled by their default",
               "update": "which says which model update served each prediction",
               "entities": "which names every entity key of the request"}


def ensure_predictions_topic(log: Log, topic: str = PREDICTIONS_TOPIC, *,
                             partitions: int = 1) -> None:
    """Create the predictions topic if it is missing; an existing one must have the
    current schema (:class:`~headwater.errors.TopicExistsError` otherwise, saying what
    to do with a topic an earlier version created)."""
    try:
        schema = log.topic(topic).schema
    except UnknownTopicError:
        log.ensure_topic(topic, PREDICTIONS_SCHEMA, partitions=partitions)
        return
    if schema == PREDICTIONS_SCHEMA:
        return
    if schema in _EARLIER:
        lacking = [f.name for f in PREDICTIONS_SCHEMA.fields
                   if f.name not in {g.name for g in schema.fields}]
        said = "; ".join(f"{name!r} field, {_WHY[name]}" for name in lacking)
        raise TopicExistsError(
            f"topic {topic!r} was created by an earlier version of Headwater: its events "
            f"have no {said}, so new predictions are not logged to it. Its events stay "
            "readable (labels, evaluation, replay); log new predictions to another topic: "
            "headwater serve --predictions-topic NAME, and join them with "
            "headwater labels run --predictions NAME")
    raise TopicExistsError(f"topic {topic!r} exists with another schema than a predictions "
                           "topic's; choose another topic for predictions")


def ensure_predictions_readable(log: Log, topic: str = PREDICTIONS_TOPIC, *,
                                partitions: int = 1) -> None:
    """Create the predictions topic if it is missing; an existing one may also have the
    schema of an earlier version (what a reader of predictions calls at start-up)."""
    try:
        schema = log.topic(topic).schema
    except UnknownTopicError:
        log.ensure_topic(topic, PREDICTIONS_SCHEMA, partitions=partitions)
        return
    if schema != PREDICTIONS_SCHEMA and schema not in _EARLIER:
        raise TopicExistsError(f"topic {topic!r} exists with another schema than a "
                               "predictions topic's")
