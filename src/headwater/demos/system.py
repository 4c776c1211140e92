"""The system the demos drive: the real components, wired in one directory, on a manual clock.

:class:`DemoSystem` clears ``directory`` and builds, on the embedded backends (no
servers, fsync off: a demo is rebuilt, not recovered):

- the log, with the demo's event topics and the outcomes topic;
- the feature engine over the feature set's stream features, into the online store;
- the model store, with version 1 of ``model`` — a model that has learnt nothing —
  behind every arm, so each arm is scored (and logged) from the first request;
- a deployment routing to the first arm and scoring the others in the shadow, the
  prediction log and the predictor;
- the label joiner with ``rule``.

The demo moves the clock to each event's time and calls the components in turn.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from headwater.config import Settings
from headwater.features import Feature, FeatureSet
from headwater.features.engine import FeatureEngine
from headwater.features.online import FeatureReader
from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC
from headwater.labels.join import JoinRule
from headwater.labels.joiner import LabelJoiner
from headwater.log import Log, Schema
from headwater.log.embedded import EmbeddedBackend
from headwater.models import LogisticRegression
from headwater.registry import Creator, Lineage, ModelRegistry, open_registry
from headwater.routing.policies import Shadow
from headwater.serving.deployment import Deployment
from headwater.serving.prediction_log import PredictionLog
from headwater.serving.predictor import Predictor
from headwater.store.online import EmbeddedOnlineStore
from headwater.time import ManualClock

__all__ = ["DemoSystem"]


class DemoSystem:
    """The demos' components (see the module); ``arms[0]`` answers, the rest shadow."""

    def __init__(self, directory: Path, *, model: str, start_us: int,
                 topics: Mapping[str, Schema], features: FeatureSet, arms: Sequence[str],
                 rule: JoinRule) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self.directory = directory
        self.model = model
        self.features = features
        self.clock = ManualClock(start_us)
        self.log = Log(EmbeddedBackend(directory / "log", fsync="never"), clock=self.clock)
        for name, schema in topics.items():
            self.log.create_topic(name, schema)
        self.log.ensure_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA)
        self.online = EmbeddedOnlineStore(directory / "online", fsync="never")
        self.engine = FeatureEngine(self.log, [f for f in features.features
                                               if isinstance(f, Feature)],
                                    self.online, state_dir=directory / "engine",
                                    fsync="never")
        self.registry: ModelRegistry = open_registry(
            directory / "registry", clock=self.clock,
            settings=Settings(home=str(directory), fsync="never"))
        self._first_version(arms)
        self.deployment = Deployment(self.registry, model, Shadow(arms[0], tuple(arms[1:])),
                                     clock=self.clock)
        self.deployment.reload()
        self.predictions = PredictionLog(self.log, flush_ms=60_000.0)
        self.predictor = Predictor(FeatureReader(self.online, features), self.deployment,
                                   log=self.predictions, clock=self.clock)
        self.joiner = LabelJoiner(self.log, rule, state_dir=directory / "joiner",
                                  clock=self.clock, fsync="never")

    def _first_version(self, arms: Sequence[str]) -> None:
        fresh = LogisticRegression()
        path = self.directory / "initial"
        fresh.save(path)
        version = self.registry.register(self.model, path, lineage=Lineage(
            hyperparameters=dict(fresh.params()),
            created_by=Creator(trainer="demo", trigger="initial",
                               reason="nothing learnt yet: answers 0.5")))
        for alias in arms:
            self.registry.promote(self.model, version.version, alias, actor="demo",
                                  reason="the initial version")
        shutil.rmtree(path)

    def close(self) -> None:
        self.predictions.close()
        self.joiner.close()
        self.engine.close()
        self.online.close()
        self.registry.close()
        self.log.close()
