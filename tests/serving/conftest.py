"""A small world for the serving tests: events, online features, a registry with versions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from headwater.config import Settings
from headwater.features import Entity, Feature, FeatureSet, StreamSource
from headwater.features.engine import FeatureEngine
from headwater.features.online import FeatureReader
from headwater.log import Log, Schema
from headwater.models import LogisticRegression, Model
from headwater.registry import LoadedVersion, ModelRegistry, open_registry
from headwater.serving import ChampionOnly, Deployment, Policy, PredictionLog, Predictor
from headwater.serving.app import ServingApp
from headwater.store.online.memory import MemoryOnlineStore
from headwater.testing import ManualClock, MemoryBackend

NOW = 1_700_000_000_000_000
USER = Entity("user", key="user")
PAY = StreamSource.of("pay")
FEATURES = FeatureSet("checkout", (
    Feature.of("spend", USER, PAY, "sum", column="amount"),
    Feature.of("txns", USER, PAY, "count"),
    Feature.of("biggest", USER, PAY, "max", column="amount"),
))
COLUMNS = ("spend", "txns", "biggest", "price", "device")


def training_batch(seed: int) -> dict[str, np.ndarray]:
    """Rows of the three features and two request values."""
    rng = np.random.default_rng(seed)
    n = 400
    batch = {"spend": rng.gamma(2.0, 50.0, n), "txns": rng.integers(1, 20, n).astype(float),
             "biggest": rng.gamma(2.0, 20.0, n), "price": rng.gamma(2.0, 10.0, n),
             "device": rng.choice(np.array(["ios", "android", "web"]), n)}
    return batch


def train(seed: int) -> LogisticRegression:
    """A model over the three features and two request values."""
    batch = training_batch(seed)
    y = (batch["price"] > batch["spend"] / batch["txns"]).astype(int)
    model = LogisticRegression(alpha=0.5, hash_bits=8)
    model.learn(batch, y)
    return model


class Wrapped:
    """The registry as a version source, each loaded model passed through ``wrap``."""

    def __init__(self, registry: ModelRegistry, wrap: Callable[[Model], Any]) -> None:
        self.registry, self.wrap = registry, wrap

    def aliases(self, name: str) -> dict[str, int]:
        return self.registry.aliases(name)

    def load(self, name: str, ref: int | str) -> LoadedVersion:
        loaded = self.registry.load(name, ref)
        return loaded._replace(model=self.wrap(loaded.model))


@dataclass
class World:
    clock: ManualClock
    log: Log
    online: MemoryOnlineStore
    registry: ModelRegistry
    reader: FeatureReader
    tmp: Path

    def register(self, model: LogisticRegression, alias: str | None = None) -> int:
        directory = self.tmp / f"model-{len(list(self.tmp.iterdir()))}"
        model.save(directory)
        version = self.registry.register("fraud", directory).version
        if alias is not None:
            self.registry.promote("fraud", version, alias, actor="test", reason="test")
        return version

    def deployment(self, policy: Policy | None = None,
                   on_problem: Callable[[str], None] | None = None) -> Deployment:
        deployment = Deployment(self.registry, "fraud", policy or ChampionOnly(),
                                clock=self.clock, on_problem=on_problem)
        deployment.reload()
        return deployment

    def predictor(self, deployment: Deployment, log: PredictionLog | None = None) -> Predictor:
        return Predictor(self.reader, deployment, log=log, clock=self.clock)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = ManualClock(NOW - 10_000_000)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic("pay", Schema.of({"user": "string", "amount": "float64", "ts": "timestamp"},
                                      key="user", event_time="ts"))
    events = [{"user": f"u{i % 5}", "amount": 10.0 + 7 * i, "ts": NOW - 5_000_000 + i}
              for i in range(20)]
    log.append("pay", events)
    online = MemoryOnlineStore()
    with FeatureEngine(log, [f for f in FEATURES.features if isinstance(f, Feature)], online,
                       state_dir=tmp_path / "state") as engine:
        engine.run(idle_timeout_s=0)
    clock.set(NOW)
    settings = Settings(home=str(tmp_path / "home"), fsync="never")
    registry = open_registry("memory://", artifacts=tmp_path / "artifacts", settings=settings,
                             clock=clock)
    models = tmp_path / "models"
    models.mkdir()
    yield World(clock, log, online, registry, FeatureReader(online, FEATURES), models)
    registry.close()


@pytest.fixture
def app(world: World) -> ServingApp:
    """The HTTP app over fraud v1 as champion, admin token ``s3cret``."""
    world.register(train(1), "champion")
    deployment = world.deployment()
    return ServingApp(world.predictor(deployment), deployment, registry=world.registry,
                      admin_token="s3cret")
