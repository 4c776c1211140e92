"""Contextual decisions served in-process: choose an action, log it, learn from outcomes.

:class:`ActionService` answers "which action for this request?" (which item to show,
which offer to make) with a contextual bandit (:mod:`headwater.bandits`: epsilon-greedy,
LinUCB, linear Thompson sampling). The context is the request's numbers, completed with
the entity's online features when a :class:`~headwater.features.online.FeatureReader` is
given (a missing feature counts as 0). Every decision is logged with its propensity on
the ``decisions`` topic (:class:`~headwater.bandits.DecisionLog`), so any other policy can
be evaluated on those logs later.

Learning uses the label join (:class:`~headwater.labels.join.JoinState`): each decision
is an open "prediction" until an outcome with its request id arrives within ``window``
(a reward: the outcome's label, or ``positive`` for a click) or the window closes (the
``timeout_label`` reward, e.g. 0 for "not clicked"). :meth:`ActionService.learn` applies
outcomes and hands the policy its rewards in one batch; :meth:`~ActionService.start`
does it from a background thread that follows the outcomes topic. A lock keeps a
decision and an update from interleaving inside the policy.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

from headwater.bandits.decision import ContextualPolicy, Decision
from headwater.bandits.decision_log import DecisionLog
from headwater.errors import ValidationError
from headwater.features.online import EntityKey, FeatureReader, entity_key
from headwater.labels.join import JoinRule, JoinState, LoggedPrediction, Outcome, outcomes_of
from headwater.labels.schema import OUTCOMES_SCHEMA, OUTCOMES_TOPIC
from headwater.log import Log
from headwater.log.follow import TopicFollower
from headwater.repeat import Repeater
from headwater.time import Clock, SystemClock

__all__ = ["ActionService"]

#: A decision is not a score: its open "prediction" in the join carries none.
_NO_SCORE: Final = float("nan")


class ActionService:
    """Serves decisions of ``policy`` and teaches it from outcomes (see the module)."""

    def __init__(self, policy: ContextualPolicy, *, rule: JoinRule,
                 log: DecisionLog | None = None, reader: FeatureReader | None = None,
                 clock: Clock | None = None) -> None:
        self.policy = policy
        self.rule = rule
        self.log = log
        self.reader = reader
        self.clock: Clock = clock or SystemClock()
        self.decisions = 0
        self.rewards = 0
        self._join = JoinState(rule)
        self._contexts: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        self._repeater: Repeater | None = None

    def decide(self, actions: Sequence[str], context: Mapping[str, Any] | None = None, *,
               entities: Mapping[str, EntityKey] | None = None,
               request_id: str | None = None) -> tuple[str, Decision]:
        """The request id and the decision for ``context`` among ``actions``."""
        now = self.clock.now_us()
        values: dict[str, float] = {}
        entities = entities or {}
        if self.reader is not None:
            for name, value in self.reader.read(entities, now, context).items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    values[name] = float(value) if value == value else 0.0
                elif value is None:
                    values[name] = 0.0
        for name, value in (context or {}).items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValidationError(f"context.{name}", f"expected a number, got {value!r}")
            values[name] = float(value)
        rid = request_id or f"{self._prefix}-{next(self._ids)}"
        entity = entity_key(next(iter(entities.values()), rid))
        with self._lock:
            decision = self.policy.choose(values, actions)
            self._contexts[rid] = values
            self._join.add_predictions([LoggedPrediction(
                rid, entity, b"", decision.policy, 0, _NO_SCORE, decision.action, True, now,
                decision.propensity)])
        self.decisions += 1
        if self.log is not None:
            self.log.record(rid, entity, values, decision, now)
        return rid, decision

    def learn(self, outcomes: Sequence[Outcome], watermark: int) -> int:
        """Apply ``outcomes`` (and the windows closed by ``watermark``); teach the policy
        the rewards they decide; the number of rewards."""
        with self._lock:
            joined = self._join.apply(outcomes, watermark)
            rows = [(self._contexts.pop(e.request_id, None), e.arm, e.label)
                    for e in joined.examples]
            for rid in [r for r in self._contexts if not self._join.is_open(r)]:
                del self._contexts[rid]  # closed without an example (no timeout reward)
            learnt = [(c, a, r) for c, a, r in rows if c is not None]
            if learnt:
                self.policy.update([c for c, _, _ in learnt], [a for _, a, _ in learnt],
                                   [r for _, _, r in learnt])
        self.rewards += len(learnt)
        return len(learnt)

    # -- following the outcomes topic ---------------------------------------------

    def start(self, log: Log, *, topic: str = OUTCOMES_TOPIC, poll_s: float = 1.0) -> None:
        """Follow ``topic`` from its end and learn from a background thread."""
        if self._repeater is not None:
            return
        log.ensure_topic(topic, OUTCOMES_SCHEMA)
        follower = TopicFollower(log, topic)

        def step() -> None:
            table = follower.read()
            outcomes = outcomes_of(table) if table is not None else []
            self.learn(outcomes, self.clock.now_us() - self.rule.lateness)

        self._repeater = Repeater(step, poll_s, name="headwater-action-rewards")
        self._repeater.start()

    def stop(self) -> None:
        if self._repeater is not None:
            self._repeater.stop()
