"""The service's Prometheus metrics, in a registry of its own (not the global one).

Counted by the HTTP app: requests by endpoint and status, and a latency histogram by
endpoint. Read from the serving objects at scrape time (their counters are plain ints,
so the hot path pays nothing for them): predictions, fallbacks, model errors, shadow
errors, prediction-log events appended, dropped (queue full) and failed (append
raised), swaps and model load errors, and the generation of the snapshot serving.

Needs ``prometheus-client`` (``pip install 'headwater[serve]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from headwater.errors import MissingExtraError
from headwater.serving.deployment import Deployment
from headwater.serving.predictor import Predictor

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("The serving metrics", "serve", "prometheus-client") from exc

__all__ = ["CONTENT_TYPE", "ServingMetrics"]

#: The content type of the Prometheus text format.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 1.0)


class _Counters(Collector):
    """Reads the serving objects' counters at scrape time."""

    def __init__(self, predictor: Predictor, deployment: Deployment) -> None:
        self.predictor = predictor
        self.deployment = deployment

    def collect(self) -> Iterator[Metric]:
        p, d, log = self.predictor, self.deployment, self.predictor.log
        for name, doc, value in [
            ("headwater_predictions", "Predictions answered.", p.predictions),
            ("headwater_prediction_fallbacks", "Predictions answered by a fallback version.",
             p.fallbacks),
            ("headwater_model_errors", "Scoring calls that raised.", p.model_errors),
            ("headwater_shadow_errors", "Shadow scoring calls that raised.", p.shadow_errors),
            ("headwater_model_swaps", "Snapshots swapped in.", d.swaps),
            ("headwater_model_load_errors", "Versions or aliases that failed to load.",
             d.load_errors),
        ]:
            yield CounterMetricFamily(name, doc, value=value)
        if log is not None:
            for name, doc, value in [
                ("headwater_prediction_log_events", "Prediction events appended to the log.",
                 log.logged),
                ("headwater_prediction_log_dropped",
                 "Prediction events dropped because the queue was full.", log.dropped),
                ("headwater_prediction_log_failed",
                 "Prediction events lost because an append failed.", log.failed),
            ]:
                yield CounterMetricFamily(name, doc, value=value)
            yield GaugeMetricFamily("headwater_prediction_log_pending",
                                    "Prediction events queued, not yet appended.",
                                    value=log.pending)
        yield GaugeMetricFamily("headwater_model_generation", "Swaps behind the snapshot serving.",
                                value=d.snapshot.generation)


class ServingMetrics:
    """Request counters and latencies, plus the serving objects' counters."""

    def __init__(self, predictor: Predictor, deployment: Deployment) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("headwater_http_requests", "HTTP requests by endpoint and status.",
                                ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("headwater_http_request_seconds",
                                 "HTTP request latency in the app, by endpoint.", ["endpoint"],
                                 buckets=_BUCKETS, registry=self.registry)
        self.registry.register(_Counters(predictor, deployment))
        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        children = self._children.get((endpoint, status))
        if children is None:
            children = (self.requests.labels(endpoint, str(status)),
                        self.latency.labels(endpoint))
            self._children[(endpoint, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
