"""Reading a component's Prometheus text: sample values and latency percentiles.

>>> text = '''
... headwater_http_requests_total{endpoint="/predict",status="200"} 8.0
... headwater_http_requests_total{endpoint="/predict",status="503"} 2.0
... headwater_http_request_seconds_bucket{endpoint="/predict",le="0.001"} 5.0
... headwater_http_request_seconds_bucket{endpoint="/predict",le="0.01"} 10.0
... headwater_http_request_seconds_bucket{endpoint="/predict",le="+Inf"} 10.0
... '''
>>> samples = parse(text)
>>> total(samples, "headwater_http_requests_total")
10.0
>>> total(samples, "headwater_http_requests_total", lambda labels: labels["status"] >= "500")
2.0
>>> round(quantile(samples, "headwater_http_request_seconds", 0.5, endpoint="/predict"), 6)
0.001
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Sample", "parse", "quantile", "total"]


class Sample(NamedTuple):
    """One line of the exposition: the sample's name, labels and value."""

    name: str
    labels: Mapping[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """Every sample of the Prometheus text ``text``."""
    return [Sample(s.name, s.labels, float(s.value))
            for family in text_string_to_metric_families(text) for s in family.samples]


def total(samples: list[Sample], name: str,
          where: Callable[[Mapping[str, str]], bool] | None = None) -> float:
    """The sum of the samples named ``name`` (whose labels pass ``where``)."""
    return sum(s.value for s in samples
               if s.name == name and (where is None or where(s.labels)))


def quantile(samples: list[Sample], histogram: str, q: float, **labels: str) -> float | None:
    """The ``q`` quantile of a histogram, by linear interpolation inside the bucket it
    falls in (as Prometheus' ``histogram_quantile``); ``None`` with no observations.
    ``labels`` pick the series; buckets of every other label are summed."""
    buckets: dict[float, float] = {}
    for s in samples:
        if s.name != f"{histogram}_bucket":
            continue
        if any(s.labels.get(k) != v for k, v in labels.items()):
            continue
        bound = float(s.labels["le"])
        buckets[bound] = buckets.get(bound, 0.0) + s.value
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower  # past the last finite bound: the best known is that bound
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower
