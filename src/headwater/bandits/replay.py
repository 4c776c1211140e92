"""Playing a contextual policy on recorded data where every action's reward is known.

A supervised data set becomes a bandit problem when the policy only sees the reward of
the action it chose: :class:`BanditData` holds contexts, the reward every action *would*
have earned (for a classification stream, 1 for the true class and 0 otherwise), and
the action names. :func:`play` runs a policy through it in order — choose, observe the
chosen action's reward, and update every ``batch`` rows (labels arriving late) — and
records each decision's action, propensity and the probabilities of all actions, which
off-policy estimators need.

>>> import numpy as np
>>> from headwater.bandits.epsilon import EpsilonGreedy
>>> data = BanditData.classification(np.array([[0.0], [1.0]] * 200), np.array([0, 1] * 200),
...                                  ("zero", "one"))
>>> run = play(EpsilonGreedy(1, rng=np.random.default_rng(0), epsilon=0.1), data)
>>> run.mean_reward > 0.9
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from headwater.bandits.decision import ContextualPolicy, check_actions
from headwater.errors import ValidationError

__all__ = ["BanditData", "PlayedRun", "play"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BanditData:
    """Contexts ``(n, d)``, the reward of every action ``(n, k)``, action names, features."""

    contexts: FloatArray
    rewards: FloatArray
    actions: tuple[str, ...]
    features: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_actions(self.actions)
        if self.contexts.ndim != 2 or self.rewards.shape != (len(self.contexts),
                                                             len(self.actions)):
            raise ValidationError("rewards", f"expected shape ({len(self.contexts)}, "
                                  f"{len(self.actions)}), got {self.rewards.shape}")

    @classmethod
    def classification(cls, contexts: FloatArray, labels: npt.NDArray[np.integer],
                       actions: Sequence[str], features: Sequence[str] = ()) -> BanditData:
        """Action ``i`` earns 1 when the label is ``i``, else 0."""
        k = len(actions)
        labels = np.asarray(labels)
        if labels.shape != (len(contexts),) or labels.min(initial=0) < 0 \
                or labels.max(initial=0) >= k:
            raise ValidationError("labels", f"expected one label in 0..{k - 1} per context")
        return cls(np.asarray(contexts, dtype=np.float64),
                   np.eye(k)[labels].astype(np.float64), tuple(actions), tuple(features))

    def __len__(self) -> int:
        return len(self.contexts)

    def head(self, n: int) -> BanditData:
        """The first ``n`` rows."""
        return BanditData(self.contexts[:n], self.rewards[:n], self.actions, self.features)


@dataclass(frozen=True)
class PlayedRun:
    """Each decision of a played policy: action index, propensity, reward, probabilities."""

    policy: str
    actions: IntArray
    propensities: FloatArray
    rewards: FloatArray
    probabilities: FloatArray

    @property
    def mean_reward(self) -> float:
        return float(self.rewards.mean()) if len(self.rewards) else 0.0


def play(policy: ContextualPolicy, data: BanditData, *, batch: int = 1) -> PlayedRun:
    """Run ``policy`` through ``data`` in order, updating it every ``batch`` rows."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValidationError("batch", f"expected an int >= 1, got {batch!r}")
    n, actions = len(data), data.actions
    index = {a: i for i, a in enumerate(actions)}
    chosen = np.empty(n, dtype=np.int64)
    propensities = np.empty(n)
    probabilities = np.empty((n, len(actions)))
    rewards = np.empty(n)
    for start in range(0, n, batch):
        end = min(start + batch, n)
        names = []
        for t in range(start, end):
            decision = policy.choose(data.contexts[t], actions)
            i = index[decision.action]
            chosen[t], propensities[t] = i, decision.propensity
            probabilities[t] = decision.probabilities
            rewards[t] = data.rewards[t, i]
            names.append(decision.action)
        policy.update(data.contexts[start:end], names, rewards[start:end])
    return PlayedRun(policy.name, chosen, propensities, rewards, probabilities)
