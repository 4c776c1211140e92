"""A routing bandit serving live learns from the joined labels in the log."""

from __future__ import annotations

from types import SimpleNamespace

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from headwater.bandits import BetaThompson, RewardFeed, rewards_of
from headwater.errors import ValidationError
from headwater.labels import TRAINING_EXAMPLES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.log import Log
from headwater.log.schema import TIMESTAMP
from headwater.serving import Split
from headwater.testing import MemoryBackend


def examples(arms: list[str], labels: list[float], scores: list[float]) -> pa.RecordBatch:
    n = len(arms)
    times = pa.array(range(n), pa.int64()).cast(TIMESTAMP)
    return pa.record_batch({
        "request_id": [f"r{i}" for i in range(n)], "entity": ["e"] * n,
        "features": [msgspec.json.encode({})] * n, "model": ["m"] * n,
        "version": pa.array([1] * n, pa.int64()), "score": scores, "arm": arms,
        "served": [True] * n, "label": labels, "source": ["explicit"] * n,
        "prediction_time": times, "label_time": times,
    }, schema=TRAINING_EXAMPLES_SCHEMA.arrow_schema())


def test_the_better_arm_gets_the_traffic() -> None:
    log = Log(MemoryBackend())
    log.create_topic(TRAINING_EXAMPLES_TOPIC, TRAINING_EXAMPLES_SCHEMA)
    policy = BetaThompson(("champion", "challenger"), rng=np.random.default_rng(0))
    deployment = SimpleNamespace(snapshot=SimpleNamespace(policy=policy))
    feed = RewardFeed(log, deployment)
    assert policy.propensity("challenger") == pytest.approx(0.5, abs=0.05)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400).astype(float)
    arms = ["champion", "challenger"] * 200
    right = np.where(np.array(arms) == "challenger", rng.random(400) < 0.9,
                     rng.random(400) < 0.6)
    scores = np.where(right, y, 1 - y) * 0.8 + 0.1
    log.append(TRAINING_EXAMPLES_TOPIC, examples(arms, y.tolist(), scores.tolist()))
    assert feed.step() == 400
    assert feed.fed == {"champion": 200, "challenger": 200}
    assert policy.propensity("challenger") > 0.95
    assert feed.step() == 0  # nothing new


def test_a_policy_that_does_not_learn_is_left_alone_and_rewards_are_named() -> None:
    log = Log(MemoryBackend())
    log.create_topic(TRAINING_EXAMPLES_TOPIC, TRAINING_EXAMPLES_SCHEMA)
    log.append(TRAINING_EXAMPLES_TOPIC, examples(["champion"], [1.0], [0.9]))
    fixed = SimpleNamespace(snapshot=SimpleNamespace(policy=Split({"champion": 1.0})))
    feed = RewardFeed(log, fixed, from_start=True)
    assert feed.step() == 0
    assert feed.positions == {0: 1}
    with pytest.raises(ValidationError, match="reward"):
        rewards_of("profit", np.zeros(1), np.zeros(1))  # type: ignore[arg-type]
