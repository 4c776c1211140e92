"""Prometheus metrics of the long-running components, on ``--metrics-port``.

One naming scheme: ``headwater_<component>_<what>[_<unit>][_total]`` — the feature
engine's ``headwater_engine_*``, the label joiner's ``headwater_joiner_*``, the trainer's
``headwater_trainer_*`` (the prediction server's are ``headwater_*`` on its own
``/metrics``). Like the server's, these are read from the components' plain counters
when Prometheus scrapes (a collector per component): the components pay a counter
increment, never a lock. The Grafana dashboard shipped in the package,
``headwater/console/grafana.json``, charts them with the server's.

Needs ``prometheus-client`` (``pip install 'headwater[serve]'``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from headwater.cli.statusline import TrainerCounts
from headwater.errors import MissingExtraError
from headwater.features.engine import FeatureEngine
from headwater.features.state import NO_TIME
from headwater.labels.joiner import LabelJoiner
from headwater.time import Clock

try:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("The components' metrics", "serve", "prometheus-client") from exc

__all__ = ["EngineMetrics", "JoinerMetrics", "TrainerMetrics", "exposed"]

_US: Final = 1e6


class EngineMetrics(Collector):
    """The feature engine: events applied and late per topic; per partition, the
    watermark (the newest event time applied) and the freshness (now minus the
    watermark: how far behind the world the online store is, in event time)."""

    def __init__(self, engine: FeatureEngine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        applied = CounterMetricFamily("headwater_engine_events", "Events applied to the "
                                      "online store.", labels=["topic"])
        late = CounterMetricFamily("headwater_engine_late_events", "Events too late to "
                                   "apply (kept in the dead-letter topic).", labels=["topic"])
        counted, too_late = dict(self.engine.applied), dict(self.engine.late)
        for topic in sorted(self.engine.features):
            applied.add_metric([topic], counted.get(topic, 0))
            late.add_metric([topic], too_late.get(topic, 0))
        yield applied
        yield late
        watermark = GaugeMetricFamily("headwater_engine_watermark_seconds", "The newest event "
                                      "time applied.", labels=["topic", "partition"])
        fresh = GaugeMetricFamily("headwater_engine_freshness_seconds", "Now minus the "
                                  "watermark.", labels=["topic", "partition"])
        now = self.clock.now_us()
        for (topic, partition), task in sorted(dict(self.engine.tasks).items()):
            if task.watermark != NO_TIME:
                labels = [topic, str(partition)]
                watermark.add_metric(labels, task.watermark / _US)
                fresh.add_metric(labels, max(0, now - task.watermark) / _US)
        yield watermark
        yield fresh


class JoinerMetrics(Collector):
    """The label joiner: predictions and outcomes read, examples joined and timed out,
    outcomes kept aside by reason."""

    def __init__(self, joiner: LabelJoiner) -> None:
        self.joiner = joiner

    def collect(self) -> Iterator[Metric]:
        c = self.joiner.progress.counts
        for name, doc, value in [
            ("predictions", "Predictions read.", c.predictions),
            ("outcomes", "Outcomes read.", c.outcomes),
        ]:
            yield CounterMetricFamily(f"headwater_joiner_{name}", doc, value=value)
        examples = CounterMetricFamily("headwater_joiner_examples", "Training examples "
                                       "written, by how they were labelled.", labels=["label"])
        examples.add_metric(["joined"], c.examples - c.timeouts)
        examples.add_metric(["timed_out"], c.timeouts)
        yield examples
        late = CounterMetricFamily("headwater_joiner_late_outcomes", "Outcomes kept aside "
                                   "in the late topic, by reason.", labels=["reason"])
        late.add_metric(["after_window"], c.late_labels)
        late.add_metric(["other"], c.late - c.late_labels)
        yield late
        yield CounterMetricFamily("headwater_joiner_expired_predictions", "Predictions whose "
                                  "window closed without an outcome.", value=c.expired)
        yield GaugeMetricFamily("headwater_joiner_open_requests", "Predictions waiting for "
                                "their outcome.", value=self.joiner.progress.open_requests)


class TrainerMetrics(Collector):
    """The trainer: examples learnt, versions published and rejected, trigger fires by
    kind, and the time since it last published."""

    def __init__(self, counts: TrainerCounts, clock: Clock) -> None:
        self.counts = counts
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        c = self.counts
        yield CounterMetricFamily("headwater_trainer_examples_learnt", "Examples learnt.",
                                  value=c.rows())
        versions = CounterMetricFamily("headwater_trainer_versions", "Versions registered, "
                                       "by the gate's verdict.", labels=["verdict"])
        versions.add_metric(["promoted"], c.published - c.rejected)
        versions.add_metric(["rejected"], c.rejected)
        yield versions
        yield CounterMetricFamily("headwater_trainer_reverts", "Reverts of the live model "
                                  "to its checkpoint.", value=c.reverts)
        fires = CounterMetricFamily("headwater_trainer_trigger_fires", "Trigger fires, by "
                                    "kind.", labels=["trigger"])
        for kind, n in sorted(dict(c.fires).items()):
            fires.add_metric([kind], n)
        yield fires
        if c.last_published_us is not None:
            yield GaugeMetricFamily(
                "headwater_trainer_since_last_publish_seconds", "Time since the last version.",
                value=max(0, self.clock.now_us() - c.last_published_us) / _US)


@contextmanager
def exposed(port: int | None, collector: Collector, *, host: str = "127.0.0.1"
            ) -> Iterator[None]:
    """Serve ``collector`` on ``http://host:port/metrics`` for the ``with`` block (nothing
    when ``port`` is ``None``)."""
    if port is None:
        yield
        return
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    server, thread = start_http_server(port, addr=host, registry=registry)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        if isinstance(thread, threading.Thread):
            thread.join(5)
