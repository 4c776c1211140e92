"""The service's Prometheus metrics, in a registry of its own (not the global one).

Counted by the HTTP app: requests by endpoint and status, and a latency histogram by
endpoint. A request adds to plain ints (a dict entry and a histogram bucket found by
bisection): prometheus-client's ``Counter`` and ``Histogram`` take a lock and walk
their objects per observation, several microseconds of a request that costs tens, so
they are built only at scrape time from these counts. The counts are touched by the
event loop's thread only. Read from the serving objects at scrape time too (their
counters are plain ints, so the hot path pays nothing for them): predictions,
fallbacks, model errors, shadow errors, prediction-log events appended, dropped (queue
full) and failed (append raised), swaps and model load errors, model updates applied,
ignored and failed, and the generation of the snapshot serving.

Needs ``prometheus-client`` (``pip install 'headwater[serve]'``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from typing import Final

from headwater.errors import MissingExtraError
from headwater.serving.deployment import Deployment
from headwater.serving.predictor import Predictor

try:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
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
            ("headwater_model_updates_applied", "Model updates swapped in.",
             d.updates_applied),
            ("headwater_model_updates_ignored",
             "Model updates of a version no arm serves, not applied.", d.updates_ignored),
            ("headwater_model_updates_failed", "Model updates that could not apply.",
             d.updates_failed),
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


class _Requests(Collector):
    """The request counts and latency histograms, as Prometheus families at scrape time."""

    def __init__(self, metrics: ServingMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        counts = CounterMetricFamily("headwater_http_requests",
                                     "HTTP requests by endpoint and status.",
                                     labels=["endpoint", "status"])
        for (endpoint, code), value in sorted(self.metrics.requests.items()):
            counts.add_metric([endpoint, str(code)], value)
        yield counts
        latency = HistogramMetricFamily("headwater_http_request_seconds",
                                        "HTTP request latency in the app, by endpoint.",
                                        labels=["endpoint"])
        bounds = [*(repr(float(b)) for b in _BUCKETS), "+Inf"]
        for endpoint, (buckets, total) in sorted(self.metrics.latency.items()):
            cumulative, running = [], 0
            for bound, count in zip(bounds, buckets, strict=True):
                running += count
                cumulative.append((bound, running))
            latency.add_metric([endpoint], cumulative, sum_value=total[0])
        yield latency


class ServingMetrics:
    """Request counters and latencies, plus the serving objects' counters.

    >>> from types import SimpleNamespace as Fake
    >>> metrics = ServingMetrics(
    ...     Fake(predictions=1, fallbacks=0, model_errors=0, shadow_errors=0, log=None),
    ...     Fake(swaps=1, load_errors=0, updates_applied=0, updates_ignored=0,
    ...          updates_failed=0, snapshot=Fake(generation=1)))
    >>> metrics.observe("/predict", 200, 0.0003)
    >>> text = metrics.render().decode()
    >>> 'headwater_http_request_seconds_bucket{endpoint="/predict",le="0.0005"} 1.0' in text
    True
    >>> 'headwater_http_requests_total{endpoint="/predict",status="200"} 1.0' in text
    True
    """

    def __init__(self, predictor: Predictor, deployment: Deployment) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        #: Requests by (endpoint, status).
        self.requests: dict[tuple[str, int], int] = {}
        #: By endpoint: the count of each bucket of ``_BUCKETS`` (and +Inf), and [the sum].
        self.latency: dict[str, tuple[list[int], list[float]]] = {}
        self.registry.register(_Requests(self))
        self.registry.register(_Counters(predictor, deployment))

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        key = (endpoint, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        latency = self.latency.get(endpoint)
        if latency is None:
            latency = self.latency[endpoint] = ([0] * (len(_BUCKETS) + 1), [0.0])
        latency[0][bisect_left(_BUCKETS, seconds)] += 1
        latency[1][0] += seconds

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
