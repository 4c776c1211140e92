"""Contextual decisions in the prediction service: chosen, logged with propensities, and
learnt from outcomes joined by request id (silence is a reward of 0)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from headwater.bandits import DECISIONS_TOPIC, DecisionLog, EpsilonGreedy, read_decisions
from headwater.labels.join import JoinRule, Outcome
from headwater.log import Log
from headwater.serving.actions import ActionService
from headwater.serving.app import ServingApp
from headwater.testing import ManualClock, MemoryBackend
from tests.serving.conftest import World, train, world  # noqa: F401
from tests.serving.test_app import call, error_of

SECOND = 1_000_000


def service(clock: ManualClock, log: DecisionLog | None = None) -> ActionService:
    policy = EpsilonGreedy(["x"], rng=np.random.default_rng(0), epsilon=0.2)
    return ActionService(policy, rule=JoinRule(window=10 * SECOND, timeout_label=0.0),
                         log=log, clock=clock)


def test_decisions_are_logged_and_learnt_from_outcomes() -> None:
    clock = ManualClock(1_000 * SECOND)
    log = Log(MemoryBackend())
    decisions = DecisionLog(log, flush_ms=60_000)
    actions = service(clock, decisions)
    rng = np.random.default_rng(1)
    for round_ in range(40):
        outcomes = []
        for i in range(25):
            x = float(rng.normal())
            rid, decision = actions.decide(["left", "right"], {"x": x},
                                           request_id=f"r{round_}-{i}")
            assert rid == f"r{round_}-{i}"
            assert decision.action in ("left", "right")
            good = "right" if x > 0 else "left"
            if decision.action == good:  # a click: the right side for the sign of x
                outcomes.append(Outcome(rid, rid, None, clock.now_us() + SECOND))
        clock.advance(11 * SECOND)  # every window of this round closes
        actions.learn(outcomes, clock.now_us())
    assert actions.rewards == actions.decisions == 1_000
    decisions.close()
    logged = read_decisions(log, DECISIONS_TOPIC)
    assert logged.num_rows == 1_000
    assert set(np.round(logged.column("propensity").to_numpy(), 6)) <= {0.1, 0.5, 0.9}  # 0.5: a tie
    late = [actions.decide(["left", "right"], {"x": 2.0})[1].action for _ in range(200)]
    assert late.count("right") > 150  # it learnt: exploit right when x > 0, explore 10 %


def test_a_context_value_must_be_a_number() -> None:
    from headwater.errors import ValidationError

    with pytest.raises(ValidationError, match=r"context\.x"):
        service(ManualClock(0)).decide(["a", "b"], {"x": "tall"})


def test_post_decide(world: World) -> None:  # noqa: F811
    world.register(train(1), "champion")
    deployment = world.deployment()
    app = ServingApp(world.predictor(deployment), deployment,
                     actions=service(world.clock))
    status, _, body = call(app, "POST", "/decide", {"actions": ["a", "b"], "context": {"x": 1.0},
                                                    "request_id": "q1"})
    assert status == 200
    answer = json.loads(body)
    assert answer["request_id"] == "q1"
    assert answer["action"] in ("a", "b")
    assert 0.0 < answer["propensity"] <= 1.0
    assert error_of(call(app, "POST", "/decide", {"actions": ["a"], "context": {"x": "no"}}))[
        :2] == (422, "context.x")
    plain = ServingApp(world.predictor(deployment), deployment)
    assert error_of(call(plain, "POST", "/decide", {"actions": ["a"]}))[0] == 404
