"""Learning: trainers for the four stages of continual learning, their triggers and gate.

A trainer reads the training-examples topic (predictions joined with their labels),
learns, and publishes versions with lineage to the model store; a trigger decides when
(time, volume, performance, drift), and the gate decides whether a new version may
serve (unless it is significantly worse than the champion on recent examples, judged
prequentially); a continual trainer runs the gate's test after every update as a
:class:`Guard` against its last checkpoint and reverts to the checkpoint on a
significant drop. A trainer holds its model's lease, so a model has one trainer at a
time.

Every trainer learns with one loop, :func:`score_then_learn` (test-then-train: each batch
scored before it is learnt), and :func:`reproduce` replays a version's recorded slice
with that same loop, then has :func:`headwater.registry.judge` say whether the same
version came out.
"""

from headwater.evaluation.arms import Cost
from headwater.learning.examples import (
    ExampleSlice,
    examples_hash,
    read_examples,
    slice_end,
)
from headwater.learning.gate import Gate, Guard, Verdict
from headwater.learning.lease import TrainerLease
from headwater.learning.reproduce import reproduce
from headwater.learning.score_then_learn import score_then_learn
from headwater.learning.trainer import Published, Strategy, Trainer
from headwater.learning.triggers import (
    AnyOf,
    Daily,
    Drift,
    Every,
    Fire,
    Observation,
    Performance,
    RateLimited,
    Trigger,
    Volume,
)

__all__ = [
    "AnyOf",
    "Cost",
    "Daily",
    "Drift",
    "Every",
    "ExampleSlice",
    "Fire",
    "Gate",
    "Guard",
    "Observation",
    "Performance",
    "Published",
    "RateLimited",
    "Strategy",
    "Trainer",
    "TrainerLease",
    "Trigger",
    "Verdict",
    "Volume",
    "examples_hash",
    "read_examples",
    "reproduce",
    "score_then_learn",
    "slice_end",
]
