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

from headwater.log import Log
from headwater.log.system import LATE_OUTCOMES, OUTCOMES, PREDICTIONS, TRAINING_EXAMPLES

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

# The topics and their schemas are rows of the catalogue of system topics
# (:mod:`headwater.log.system`); these names are kept for the label loop's readers.

#: The default topic of outcomes.
OUTCOMES_TOPIC: Final = OUTCOMES.name
#: The default topic of training examples.
TRAINING_EXAMPLES_TOPIC: Final = TRAINING_EXAMPLES.name
#: The default topic of outcomes that came too late or matched no prediction.
LATE_OUTCOMES_TOPIC: Final = LATE_OUTCOMES.name
#: The default topic of prediction events.
PREDICTIONS_TOPIC: Final = PREDICTIONS.name

LabelSource = Literal["outcome", "timeout", "explicit"]

#: Outcomes: ``request_id`` and ``label`` may be null (see the module docstring).
OUTCOMES_SCHEMA: Final = OUTCOMES.schema
#: One logged prediction joined with its label.
TRAINING_EXAMPLES_SCHEMA: Final = TRAINING_EXAMPLES.schema
#: An outcome kept aside: too late for its prediction's window, or matched nothing.
LATE_OUTCOMES_SCHEMA: Final = LATE_OUTCOMES.schema
#: One event per scored model version (the returned one and every shadow).
PREDICTIONS_SCHEMA: Final = PREDICTIONS.schema


def ensure_predictions_topic(log: Log, topic: str = PREDICTIONS_TOPIC, *,
                             partitions: int = 1) -> None:
    """Create the predictions topic if it is missing; an existing one must have the
    current schema (:class:`~headwater.errors.TopicExistsError` otherwise, saying what
    to do with a topic an earlier version created)."""
    PREDICTIONS.ensure(log, topic, partitions=partitions)


def ensure_predictions_readable(log: Log, topic: str = PREDICTIONS_TOPIC, *,
                                partitions: int = 1) -> None:
    """Create the predictions topic if it is missing; an existing one may also have the
    schema of an earlier version (what a reader of predictions calls at start-up)."""
    PREDICTIONS.ensure(log, topic, partitions=partitions, readable=True)
