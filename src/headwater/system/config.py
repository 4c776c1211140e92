"""What the running system is: one model, served and trained over one feature set.

A :class:`SystemConfig` names everything :class:`~headwater.system.System`,
``headwater run`` and ``headwater simulate`` need to put the loop together: the model and
its feature set, the routing policy, the join rule, the trainer's strategy, trigger and
gate, and the class of a model that has learnt nothing (the first version). The defaults
are those of the command line.

>>> from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
>>> user = Entity("user", key="user")
>>> fs = FeatureSet("fs", (Feature.of("n", user, StreamSource.of("clicks"), "count",
...                                   window=Lifetime()),))
>>> config = SystemConfig("ctr", fs)
>>> config.strategy, config.rule.window, config.arms
('continual', 600000000, ('champion',))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from headwater.errors import ValidationError
from headwater.features import Feature, FeatureSet
from headwater.labels.join import JoinRule
from headwater.learning import Every, Gate, Strategy, Trigger
from headwater.models import LogisticRegression, Model
from headwater.routing import ChampionSpec, PolicySpec, build
from headwater.serving.prediction_log import PREDICTIONS_TOPIC

__all__ = ["DEFAULT_RULE", "SystemConfig"]

#: The command line's join rule: an outcome counts for ten minutes; silence is no example.
DEFAULT_RULE: Final = JoinRule(window=600_000_000)
_HOUR: Final = 3_600_000_000


def _hourly() -> Trigger | None:
    return Every(_HOUR)


@dataclass(frozen=True)
class SystemConfig:
    """One model served over ``features`` and trained from its own logged predictions.

    ``trigger`` builds the trainer's trigger (a trigger keeps state, so each system gets
    its own; ``None``: a stateless or stateful trainer that runs only when asked);
    ``model_class`` builds a model that has learnt nothing, registered as the first
    version when the model has none.
    """

    model: str
    features: FeatureSet
    policy: PolicySpec = field(default_factory=ChampionSpec)
    rule: JoinRule = DEFAULT_RULE
    strategy: Strategy = "continual"
    trigger: Callable[[], Trigger | None] = _hourly
    gate: Callable[[], Gate] = Gate
    model_class: Callable[[], Model] = LogisticRegression
    alias: str = "champion"
    predictions_topic: str = PREDICTIONS_TOPIC

    def __post_init__(self) -> None:
        if not self.model:
            raise ValidationError("model", "name the model")
        if self.alias not in self.arms:
            raise ValidationError("alias", f"the trainer's alias {self.alias!r} is none of "
                                  f"the policy's arms ({', '.join(self.arms)})")

    @property
    def arms(self) -> tuple[str, ...]:
        """The aliases the policy routes to (the first answers)."""
        return tuple(build(self.policy).arms)

    @property
    def stream_features(self) -> list[Feature]:
        """The features the engine computes from the log."""
        return [f for f in self.features.features if isinstance(f, Feature)]

    @property
    def topics(self) -> list[str]:
        """The topics the features read."""
        return sorted({f.source.topic for f in self.stream_features})
