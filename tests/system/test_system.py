"""The system built from one configuration: the loop runs in order on a manual clock."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from headwater import ManualClock, Schema
from headwater.errors import ValidationError
from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC, JoinRule
from headwater.learning import Gate, Volume
from headwater.registry import open_registry
from headwater.routing import ShadowSpec
from headwater.system import System, SystemConfig, first_version

START = 1_767_225_600_000_000
SCHEMA = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"}, key="user",
                   event_time="ts")
USER = Entity("user", key="user")
FS = FeatureSet("fs", (Feature.of("total", USER, StreamSource.of("events"), "sum",
                                  column="x", window=Lifetime()),))


def _config(**changes: object) -> SystemConfig:
    return SystemConfig("m", FS, rule=JoinRule(window=60_000_000),
                        trigger=lambda: Volume(50),
                        gate=lambda: Gate(window=50, min_examples=20), **changes)  # type: ignore[arg-type]


def _at(clock: ManualClock) -> pa.Array:
    return pa.array([clock.now_us()], pa.timestamp("us", tz="UTC"))


def _drive(system: System, clock: ManualClock, n: int) -> None:
    for i in range(n):
        clock.advance(1_000_000)
        user = f"u{i % 4}"
        system.log.append("events", pa.record_batch(
            {"user": [user], "x": [float(i % 4)], "ts": _at(clock)}))
        system.features()
        system.predict({"user": user}, request_id=f"r{i}")
        system.log.append(OUTCOMES_TOPIC, pa.record_batch(
            {"request_id": [f"r{i}"], "entity": [user], "label": [float(i % 4 >= 2)],
             "ts": _at(clock)}, schema=OUTCOMES_SCHEMA.arrow_schema()))
        if i % 25 == 24:
            system.learn()


def test_the_loop_starts_from_nothing_learns_and_serves_what_it_promoted(
        tmp_path: Path) -> None:
    clock = ManualClock(START)
    with System.open(_config(), tmp_path, topics={"events": SCHEMA}, clock=clock,
                     fsync="never") as system:
        assert system.first is not None
        assert system.first.version == 1
        assert system.predict({"user": "u3"}).score == pytest.approx(0.5)
        _drive(system, clock, 400)
        promoted = [p for p in system.published if p.verdict.promote]
        assert promoted, [p.verdict.reason for p in system.published]
        served = system.predict({"user": "u3"})
        # the deployment was reloaded after the last promotion: the champion serves
        assert served.version == system.registry.aliases("m")["champion"]
        assert served.version == max(p.version.version for p in promoted)
        assert served.score > 0.8
        assert system.predict({"user": "u0"}).score < 0.2
        # every prediction was logged and joined: none lost on the way
        examples = system.log.read("training_examples", 0, 0, 10_000).batch.num_rows
        assert examples == 400
        assert all(system.cpu_s[c] > 0 for c in ("features", "serving", "labels", "training"))


def test_a_first_version_is_registered_once_behind_every_arm(tmp_path: Path) -> None:
    config = _config(policy=ShadowSpec("champion", ("challenger",)))
    with open_registry(tmp_path) as registry:
        first = first_version(registry, config)
        assert first is not None
        assert registry.aliases("m") == {"champion": 1, "challenger": 1}
        assert first_version(registry, config) is None
        assert [v.version for v in registry.versions("m")] == [1]


def test_the_trainers_alias_must_be_an_arm() -> None:
    with pytest.raises(ValidationError, match="alias"):
        _config(alias="elsewhere")
