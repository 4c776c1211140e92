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

import threading
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import ValidationError
from headwater.labels import TRAINING_EXAMPLES_TOPIC
from headwater.log import Log

if TYPE_CHECKING:
    from headwater.serving.deployment import Deployment

__all__ = ["Reward", "RewardFeed", "rewards_of"]

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


class RewardFeed:
    """Feeds ``deployment``'s policy the rewards of its served arms (see the module).

    It starts at the end of the topic (rewards of predictions made before it started
    belong to an earlier policy), unless ``from_start``.
    """

    def __init__(self, log: Log, deployment: Deployment, *, reward: Reward = "accuracy",
                 topic: str = TRAINING_EXAMPLES_TOPIC, from_start: bool = False) -> None:
        rewards_of(reward, np.zeros(0), np.zeros(0))  # checks the kind
        self.log = log
        self.deployment = deployment
        self.reward: Reward = reward
        self.topic = topic
        self.fed: dict[str, int] = {}
        offsets = log.start_offsets(topic) if from_start else log.end_offsets(topic)
        self.positions = dict(enumerate(offsets))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self, max_events: int = 100_000) -> int:
        """Read what is new and feed it; the number of rewards fed."""
        batches = []
        for p in range(self.log.topic(self.topic).partitions):
            fetched = self.log.read(self.topic, p, self.positions.get(p, 0), max_events)
            if fetched.batch.num_rows:
                batches.append(fetched.batch)
                self.positions[p] = fetched.next_offset
        if not batches:
            return 0
        table = pa.Table.from_batches(batches)
        table = table.filter(table.column("served"))
        policy = self.deployment.snapshot.policy
        update = getattr(policy, "update", None)
        if update is None or not table.num_rows:
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
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(poll_s):
                try:
                    self.step()
                except Exception:  # the log is away: try again next time
                    continue

        self._thread = threading.Thread(target=loop, name="headwater-reward-feed",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
