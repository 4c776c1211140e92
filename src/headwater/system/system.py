"""The whole loop in one process: features, serving, labels and training, wired once.

:class:`System` builds, from a :class:`~headwater.system.SystemConfig` and the stores it
is given (a log, an online store, a model store) — or in one directory with
:meth:`System.open` —

- the :class:`~headwater.features.FeatureEngine` over the feature set's stream features;
- the first version when the model has none (:func:`~headwater.system.first_version`);
- the :class:`~headwater.system.Serving` half: deployment, prediction log, predictor;
- the :class:`~headwater.labels.LabelJoiner` under the configured rule;
- the :class:`~headwater.learning.Trainer` with the configured strategy, trigger and gate,

and drives them in the order that makes them agree: :meth:`System.features` applies
what the log holds to the online store; :meth:`System.predict` answers; and
:meth:`System.learn` flushes the prediction log (the joiner reads predictions from the
log, not from memory), joins, trains, and reloads the deployment when the trainer moved
an alias, so the next request is answered by the promoted version on any clock.

Every component's CPU time (of the calling thread) is summed in :attr:`System.cpu_s`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from headwater.config import Settings
from headwater.errors import HeadwaterError
from headwater.features import FeatureEngine
from headwater.features.online import EntityKey
from headwater.fsync import FsyncPolicy
from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC, LabelJoiner
from headwater.labels.progress import JoinStep
from headwater.learning import Published, Trainer
from headwater.log import Log, Schema
from headwater.log.embedded import EmbeddedBackend
from headwater.registry import ModelRegistry, ModelVersion, open_registry
from headwater.serving import Prediction
from headwater.store.online import EmbeddedOnlineStore, OnlineStore
from headwater.system.config import SystemConfig
from headwater.system.serving import Serving
from headwater.system.versions import first_version
from headwater.time import Clock, SystemClock

__all__ = ["COMPONENTS", "System"]

#: The components whose CPU time :class:`System` accounts for.
COMPONENTS = ("features", "serving", "labels", "training")


class System:
    """The configured loop over ``log``, ``online`` and ``registry`` (see the module).

    ``state_dir`` holds the engine's and the joiner's checkpoints. The system does not
    own the stores it is given; :meth:`open` builds embedded ones it does own.
    """

    def __init__(self, config: SystemConfig, *, log: Log, online: OnlineStore,
                 registry: ModelRegistry, state_dir: str | Path, clock: Clock | None = None,
                 fsync: FsyncPolicy = "group", actor: str = "headwater") -> None:
        self.config = config
        self.log = log
        self.online = online
        self.registry = registry
        self.clock: Clock = clock or SystemClock()
        state = Path(state_dir)
        log.ensure_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA)  # label features may read it
        #: CPU seconds each component spent in this thread, by :data:`COMPONENTS`.
        self.cpu_s: dict[str, float] = dict.fromkeys(COMPONENTS, 0.0)
        self._owned: list[Any] = []
        self.engine = FeatureEngine(log, config.stream_features, online,
                                    state_dir=state / "engine", fsync=fsync)
        #: The version this system registered because the model had none.
        self.first: ModelVersion | None = first_version(registry, config, actor=actor)
        self.serving = Serving(config, online=online, registry=registry, log=log,
                               clock=self.clock, flush_ms=60_000.0)
        self.serving.deployment.reload()
        self.predictor = self.serving.predictor
        self.deployment = self.serving.deployment
        self.joiner = LabelJoiner(log, config.rule, state_dir=state / "labels",
                                  predictions=config.predictions_topic, clock=self.clock,
                                  fsync=fsync)
        self.trainer = Trainer(log, registry, config.model, config.model_class,
                               strategy=config.strategy, alias=config.alias,
                               trigger=config.trigger(), gate=config.gate(),
                               trainer=f"{config.strategy}-{actor}",
                               feature_set=config.features.version, clock=self.clock)
        #: Every version the trainer published, promoted or not.
        self.published: list[Published] = []

    @classmethod
    def open(cls, config: SystemConfig, directory: str | Path, *,
             topics: Mapping[str, Schema] | None = None, clock: Clock | None = None,
             fsync: FsyncPolicy = "group") -> System:
        """The system on embedded stores in ``directory`` (its ``log``, ``online``,
        ``registry`` and ``state``), which it closes with itself; ``topics`` are the
        event topics to create (each kept if it exists with that schema)."""
        root = Path(directory)
        log = Log(EmbeddedBackend(root / "log", fsync=fsync), clock=clock)
        for name, schema in (topics or {}).items():
            log.ensure_topic(name, schema)
        online = EmbeddedOnlineStore(root / "online", fsync=fsync)
        registry = open_registry(root / "registry", clock=clock,
                                 settings=Settings(home=str(root), fsync=fsync))
        system = cls(config, log=log, online=online, registry=registry,
                     state_dir=root / "state", clock=clock, fsync=fsync)
        system._owned = [registry, online, log]
        return system

    @contextmanager
    def _cpu(self, component: str) -> Iterator[None]:
        started = time.thread_time()
        try:
            yield
        finally:
            self.cpu_s[component] += time.thread_time() - started

    # -- the loop ------------------------------------------------------------------

    def features(self) -> int:
        """Apply every event the log holds to the features; the events applied."""
        total = 0
        with self._cpu("features"):
            while applied := self.engine.step():
                total += applied
        return total

    def predict(self, entities: Mapping[str, EntityKey],
                request: Mapping[str, Any] | None = None, *,
                request_id: str | None = None) -> Prediction:
        """Answer one request with the features as they are now (logged)."""
        with self._cpu("serving"):
            return self.predictor.predict(entities, request, request_id=request_id)

    def learn(self) -> list[Published]:
        """Flush the prediction log, join every outcome the log holds, let the trainer
        learn and publish, and serve what it promoted; the versions published."""
        with self._cpu("serving"):
            self.serving.flush()
        log = self.serving.prediction_log
        if log is not None and (log.dropped or log.failed):
            raise HeadwaterError(f"the prediction log lost {log.dropped + log.failed} "
                                 "predictions: the labels of the loop would be incomplete")
        with self._cpu("labels"):
            while True:
                done: JoinStep = self.joiner.step()
                if not (done.predictions or done.outcomes):
                    break
        published: list[Published] = []
        with self._cpu("training"):
            while True:
                before = dict(self.trainer.position)
                done_version = self.trainer.step()
                if done_version is not None:
                    published.append(done_version)
                if self.trainer.position == before:
                    break
        self.published += published
        if any(p.verdict.promote for p in published):
            with self._cpu("serving"):
                self.deployment.reload()
        return published

    def step(self) -> list[Published]:
        """:meth:`features`, then :meth:`learn`."""
        self.features()
        return self.learn()

    def close(self) -> None:
        """Flush the prediction log, checkpoint the engine and the joiner, and close the
        stores :meth:`open` made."""
        self.serving.close()
        self.joiner.close()
        self.engine.close()
        for store in self._owned:
            store.close()

    def __enter__(self) -> System:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
