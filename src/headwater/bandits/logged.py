"""Logged decisions joined with their rewards, and what other policies would have earned.

:func:`join_rewards` joins decision events (the ``decisions`` topic) with outcomes (the
``outcomes`` topic of :mod:`headwater.labels.schema`) by request id: an outcome's
``label`` is the reward of the decision it answers (the last one, if several do).
Decisions without an outcome are counted, not guessed. :func:`fixed_action_values`
then estimates, for every action, the value of the policy that always takes it — IPS,
SNIPS and doubly robust, the last with a reward model of per-action running means,
each taken before the row it predicts.

>>> import pyarrow as pa
>>> decisions = pa.table({"request_id": ["r1", "r2", "r3"], "action": ["a", "b", "a"],
...                       "propensity": [0.5, 0.5, 0.5],
...                       "actions": [b'["a","b"]'] * 3})
>>> outcomes = pa.table({"request_id": ["r1", "r2"], "label": [1.0, 0.0]})
>>> logged = join_rewards(decisions, outcomes)
>>> logged.actions.tolist(), logged.rewards.tolist(), logged.unjoined
(['a', 'b'], [1.0, 0.0], 1)
>>> fixed_action_values(logged)["a"][0].value
1.0
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.bandits.offpolicy import Estimate, doubly_robust, ips, snips
from headwater.errors import ValidationError

__all__ = ["LoggedDecisions", "fixed_action_values", "join_rewards"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LoggedDecisions:
    """Decisions with a reward: action names, rewards, propensities, action sets."""

    actions: npt.NDArray[np.str_]
    rewards: FloatArray
    propensities: FloatArray
    choices: tuple[tuple[str, ...], ...]
    policies: tuple[str, ...]
    unjoined: int

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def names(self) -> tuple[str, ...]:
        """Every action that was a choice, in order of first appearance."""
        seen: dict[str, None] = {}
        for choice in self.choices:
            seen.update(dict.fromkeys(choice))
        return tuple(seen)


def join_rewards(decisions: pa.Table, outcomes: pa.Table) -> LoggedDecisions:
    """Decisions (columns of the decisions schema) with the label of their outcome."""
    for table, field, columns in ((decisions, "decisions", ("request_id", "action",
                                                            "propensity", "actions")),
                                  (outcomes, "outcomes", ("request_id", "label"))):
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise ValidationError(field, f"missing columns {missing}")
    rewards: dict[str, float] = {}
    for request_id, label in zip(outcomes.column("request_id").to_pylist(),
                                 outcomes.column("label").to_pylist(), strict=True):
        if request_id is not None and label is not None:
            rewards[request_id] = float(label)
    keep: list[int] = []
    got: list[float] = []
    for i, request_id in enumerate(decisions.column("request_id").to_pylist()):
        if request_id in rewards:
            keep.append(i)
            got.append(rewards[request_id])
    chosen = decisions.take(pa.array(keep, pa.int64()))
    choices = tuple(tuple(msgspec.json.decode(raw)) for raw in chosen.column("actions")
                    .to_pylist())
    policies = tuple(chosen.column("policy").to_pylist()) if "policy" in chosen.column_names \
        else ("",) * len(keep)
    return LoggedDecisions(np.asarray(chosen.column("action").to_pylist(), dtype=np.str_),
                           np.asarray(got, dtype=np.float64),
                           chosen.column("propensity").to_numpy().astype(np.float64),
                           choices, policies, decisions.num_rows - len(keep))


def _running_means(logged: LoggedDecisions, names: tuple[str, ...]) -> FloatArray:
    """Each action's mean reward so far, before each row (0.5 before any)."""
    out = np.empty((len(logged), len(names)))
    sums, counts = np.zeros(len(names)), np.zeros(len(names))
    index = {a: i for i, a in enumerate(names)}
    for i, (action, reward) in enumerate(zip(logged.actions.tolist(), logged.rewards.tolist(),
                                             strict=True)):
        out[i] = np.divide(sums, counts, out=np.full(len(names), 0.5), where=counts > 0)
        sums[index[action]] += reward
        counts[index[action]] += 1.0
    return out


def fixed_action_values(logged: LoggedDecisions, *, level: float = 0.95
                        ) -> dict[str, list[Estimate]]:
    """IPS, SNIPS and doubly robust values of "always take this action", per action."""
    if len(logged) == 0:
        raise ValidationError("decisions", "no decision has a reward to evaluate")
    names = logged.names
    model = _running_means(logged, names)
    rows = np.arange(len(logged))
    taken = np.array([names.index(a) for a in logged.actions.tolist()])
    out: dict[str, list[Estimate]] = {}
    for j, action in enumerate(names):
        pi = (logged.actions == action).astype(np.float64)
        out[action] = [
            ips(logged.rewards, logged.propensities, pi, level=level),
            snips(logged.rewards, logged.propensities, pi, level=level),
            doubly_robust(logged.rewards, logged.propensities, pi, model[rows, taken],
                          model[:, j], level=level),
        ]
    return out
