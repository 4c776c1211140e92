"""The serving half of the system: deployment, prediction log and predictor, wired once.

:class:`Serving` is what ``headwater serve`` runs behind its HTTP app and what
:class:`~headwater.system.System` answers requests with: a
:class:`~headwater.serving.Deployment` of the configured model under the configured
policy, a :class:`~headwater.serving.PredictionLog` on the configured topic (none when
``log`` is ``None``), and a :class:`~headwater.serving.Predictor` reading the feature
set's online features.
"""

from __future__ import annotations

from collections.abc import Callable

from headwater.features.online import FeatureReader, OnlineReader
from headwater.log import Log
from headwater.routing import build
from headwater.serving import Deployment, PredictionLog, Predictor
from headwater.serving.deployment import VersionSource
from headwater.system.config import SystemConfig
from headwater.time import Clock, SystemClock

__all__ = ["Serving"]


class Serving:
    """The configured model served from ``registry`` over the ``online`` store.

    ``flush_ms`` is how often the prediction log appends what it holds;
    ``on_problem`` hears why an arm cannot serve its alias's version.
    """

    def __init__(self, config: SystemConfig, *, online: OnlineReader, registry: VersionSource,
                 log: Log | None, clock: Clock | None = None, flush_ms: float = 50.0,
                 on_problem: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.deployment = Deployment(registry, config.model, build(config.policy),
                                     clock=self.clock, on_problem=on_problem)
        self.prediction_log = (None if log is None else
                               PredictionLog(log, config.predictions_topic, flush_ms=flush_ms))
        self.predictor = Predictor(FeatureReader(online, config.features), self.deployment,
                                   log=self.prediction_log, clock=self.clock)

    def flush(self) -> None:
        """Append every prediction recorded so far to the log (the label joiner reads
        them there)."""
        if self.prediction_log is not None:
            self.prediction_log.flush()

    def close(self) -> None:
        """Stop following the aliases; flush and close the prediction log."""
        self.deployment.stop()
        if self.prediction_log is not None:
            self.prediction_log.close()
