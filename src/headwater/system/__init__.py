"""The running system, built from one configuration.

A :class:`SystemConfig` says what runs — the model and its feature set, the routing
policy, the join rule, the trainer's strategy, trigger and gate. From it,
:class:`System` builds the loop in one process (feature engine, deployment, prediction
log, predictor, label joiner, trainer) and drives it in the order that keeps the parts
agreeing; :class:`Serving` is its serving half, behind ``headwater serve``;
:func:`first_version` gives a model with no version one that has learnt nothing, so a
loop can start; :func:`simulate` replays a history through the same parts on a
simulated clock and returns its :class:`Scorecard`.
"""

from headwater.system.config import DEFAULT_RULE, SystemConfig
from headwater.system.serving import Serving
from headwater.system.system import COMPONENTS, System
from headwater.system.versions import first_version

__all__ = [
    "COMPONENTS",
    "DEFAULT_RULE",
    "Serving",
    "System",
    "SystemConfig",
    "first_version",
]
