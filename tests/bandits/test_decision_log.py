"""Decision events: on the topic with the context as seen, in batches, losses counted."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from headwater.bandits import (
    DECISIONS_SCHEMA,
    Decision,
    DecisionLog,
    LinearThompson,
    ensure_decisions_topic,
    ips,
    read_decisions,
)
from headwater.errors import TopicExistsError
from headwater.log import Log, Schema
from headwater.testing import ManualClock, MemoryBackend

NOW = 1_700_000_000_000_000


def memory_log() -> Log:
    clock = ManualClock(NOW)
    return Log(MemoryBackend(clock=clock), clock=clock)


def test_decisions_land_with_the_context_and_propensity() -> None:
    log = memory_log()
    policy = LinearThompson(("price", "hour"), rng=np.random.default_rng(0))
    named = {"price": 1.5, "hour": 3.0}
    with DecisionLog(log, flush_ms=5) as decisions:
        first = policy.choose(named, ["down", "up"])
        decisions.record("r-1", "user-1", named, first, ts=NOW)
        second = policy.choose(np.array([0.5, 1.0]), ["down", "up"])
        decisions.record("r-2", "user-2", np.array([0.5, 1.0]), second, ts=NOW + 1)
    assert decisions.logged == 2
    rows: list[dict[str, Any]] = read_decisions(log).to_pylist()
    assert [r["request_id"] for r in rows] == ["r-1", "r-2"]
    assert msgspec.json.decode(rows[0]["context"]) == named
    assert msgspec.json.decode(rows[1]["context"]) == [0.5, 1.0]
    assert msgspec.json.decode(rows[0]["actions"]) == ["down", "up"]
    assert (rows[0]["action"], rows[0]["propensity"], rows[0]["policy"]) == (
        first.action, first.propensity, "linear-thompson")


def test_a_full_queue_drops_and_a_failed_append_counts() -> None:
    log = memory_log()
    decision = Decision("up", 1.0, "p", ("up",), (1.0,))
    plog = DecisionLog(log, capacity=1, flush_ms=60_000)
    plog.record("r-1", "e", [1.0], decision, ts=NOW)
    plog.record("r-2", "e", [1.0], decision, ts=NOW)
    assert (plog.pending, plog.dropped) == (1, 1)
    log.delete_topic("decisions")  # the append now fails
    assert plog.flush() == 0
    assert plog.failed == 1
    plog.close()
    plog.record("r-3", "e", [1.0], decision, ts=NOW)
    assert plog.dropped == 2


def test_a_topic_of_another_schema_is_refused() -> None:
    log = memory_log()
    log.create_topic("decisions", Schema.of({"x": "string", "ts": "timestamp"},
                                            event_time="ts"))
    with pytest.raises(TopicExistsError):
        ensure_decisions_topic(log)
    ensure_decisions_topic(log, "other")
    assert log.topic("other").schema == DECISIONS_SCHEMA
    assert read_decisions(log, "other").num_rows == 0


def test_logged_decisions_give_the_same_estimate_as_the_run() -> None:
    log = memory_log()
    rng = np.random.default_rng(1)
    policy = LinearThompson(2, rng=np.random.default_rng(2), scale=0.5)
    rewards: dict[str, float] = {}
    propensities, got = [], []
    with DecisionLog(log, batch_events=64) as decisions:
        for i in range(500):
            x = rng.normal(size=2)
            d = policy.choose(x, ["a", "b"])
            decisions.record(f"r-{i}", f"e-{i % 7}", x, d, ts=NOW + i)
            reward = float(rng.random() < (0.7 if (d.action == "a") == (x[0] > 0) else 0.3))
            policy.update(x[None, :], [d.action], [reward])
            rewards[f"r-{i}"] = reward
            propensities.append(d.propensity)
            got.append(reward)
    table = read_decisions(log)
    joined = pa.table({"reward": [rewards[r] for r in table.column("request_id").to_pylist()]})
    always_a = [1.0 if a == "a" else 0.0 for a in table.column("action").to_pylist()]
    from_log = ips(joined.column("reward").to_numpy(), table.column("propensity").to_numpy(),
                   always_a)
    in_memory = ips(got, propensities,
                    [1.0 if r["action"] == "a" else 0.0 for r in table.to_pylist()])
    assert from_log.value == pytest.approx(in_memory.value)
