"""Rewards for a routing bandit serving live, from the joined labels in the log.

A bandit policy in the prediction service learns which version earns most only if it is
told what each served prediction earned. :class:`RewardFeed` reads the training-examples
topic (each prediction joined with its label by the label joiner), keeps the rows of
the arm that answered (``served``), turns each into a reward and hands each arm's
rewards to the deployment's current policy (``update(arm, rewards)``), in batches, from
a background thread — never on the request path. Rewards:

- ``"accuracy"``: 1 when the prediction was right (score above 0.5 and label 1, or
  not and label 0), else 0;
- ``"likelihood"``: the probability the prediction gave the true label;
- ``"label"``: the label itself (a click, a purchase): which version's traffic earns more.

A policy without ``update`` (a fixed split) is left alone; the feed still moves on.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.labels import TRAINING_EXAMPLES_TOPIC
from headwater.log import Log
from headwater.log.follow import TopicFollower
from headwater.repeat import Repeater
from headwater.routing.policies import Policy

__all__ = ["Reward", "RewardFeed", "Routed", "rewards_of"]

Reward = Literal["accuracy", "likelihood", "label"]
_REWARDS: Final = ("accuracy", "likelihood", "label")


def rewards_of(kind: Reward, y: npt.NDArray[np.float64], scores: npt.NDArray[np.float64]
               ) -> npt.NDArray[np.float64]:
    """Each served prediction's reward.

    >>> rewards_of("likelihood", np.array([1.0, 0.0]), np.array([0.8, 0.3])).tolist()
    [0.8, 0.7]
    """
    if kind == "accuracy":
        right: npt.NDArray[np.float64] = ((scores > 0.5) == (y > 0.5)).astype(np.float64)
        return right
    if kind == "likelihood":
        out: npt.NDArray[np.float64] = np.where(y > 0.5, scores, 1.0 - scores)
        return out
    if kind == "label":
        return y.astype(np.float64)
    raise ValidationError("reward", f"expected one of {', '.join(_REWARDS)}, got {kind!r}")


class _Snapshot(Protocol):
    @property
    def policy(self) -> Policy: ...


class Routed(Protocol):
    """What routes requests now: a :class:`headwater.serving.Deployment`, whose
    ``snapshot.policy`` is the policy serving at this moment."""

    @property
    def snapshot(self) -> _Snapshot: ...


class RewardFeed:
    """Feeds ``deployment``'s policy the rewards of its served arms (see the module).

    It starts at the end of the topic (rewards of predictions made before it started
    belong to an earlier policy), unless ``from_start``.
    """

    def __init__(self, log: Log, deployment: Routed, *, reward: Reward = "accuracy",
                 topic: str = TRAINING_EXAMPLES_TOPIC, from_start: bool = False) -> None:
        rewards_of(reward, np.zeros(0), np.zeros(0))  # checks the kind
        self.log = log
        self.deployment = deployment
        self.reward: Reward = reward
        self.topic = topic
        self.fed: dict[str, int] = {}
        self._follower = TopicFollower(log, topic, start="start" if from_start else "end")
        self._repeater: Repeater | None = None

    @property
    def positions(self) -> dict[int, int]:
        """Where the feed reads on, per partition."""
        return self._follower.positions

    def step(self, max_events: int = 100_000) -> int:
        """Read what is new and feed it; the number of rewards fed."""
        policy = self.deployment.snapshot.policy
        update = getattr(policy, "update", None)
        if update is None:  # nothing learns: skip, never decode rewards nobody uses
            self._follower.skip()
            return 0
        table = self._follower.read(max_events)
        if table is None:
            return 0
        table = table.filter(table.column("served"))
        if not table.num_rows:
            return 0
        arms = np.asarray(table.column("arm").to_pylist(), dtype=object)
        rewards = rewards_of(self.reward, table.column("label").to_numpy(),
                             table.column("score").to_numpy())
        fed = 0
        for arm in policy.arms:
            mine = rewards[arms == arm]
            if len(mine):
                update(arm, mine)
                self.fed[arm] = self.fed.get(arm, 0) + len(mine)
                fed += len(mine)
        return fed

    def start(self, poll_s: float = 1.0) -> None:
        """Feed from a background thread every ``poll_s`` seconds until :meth:`stop`."""
        if self._repeater is None:
            self._repeater = Repeater(self.step, poll_s, name="headwater-reward-feed")
        self._repeater.start()

    def stop(self) -> None:
        if self._repeater is not None:
            self._repeater.stop()
