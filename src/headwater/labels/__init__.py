"""Labels: joining outcomes to logged predictions to make training examples.

The prediction service logs every prediction with the features as served; outcomes
(clicks, explicit labels) arrive later on their own topic. The label joiner pairs them
under a window rule and emits training examples, so a model trains on exactly what it
saw when it predicted ("log and wait"): the :class:`LabelJoiner` does it, under a
:class:`JoinRule`.
"""

from headwater.labels.join import JoinRule
from headwater.labels.joiner import LabelJoiner
from headwater.labels.schema import (
    LATE_OUTCOMES_SCHEMA,
    LATE_OUTCOMES_TOPIC,
    OUTCOMES_SCHEMA,
    OUTCOMES_TOPIC,
    TRAINING_EXAMPLES_SCHEMA,
    TRAINING_EXAMPLES_TOPIC,
    LabelSource,
)
from headwater.labels.served import decode_features

__all__ = [
    "LATE_OUTCOMES_SCHEMA",
    "LATE_OUTCOMES_TOPIC",
    "OUTCOMES_SCHEMA",
    "OUTCOMES_TOPIC",
    "TRAINING_EXAMPLES_SCHEMA",
    "TRAINING_EXAMPLES_TOPIC",
    "JoinRule",
    "LabelJoiner",
    "LabelSource",
    "decode_features",
]
