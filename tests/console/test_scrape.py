"""Reading Prometheus text: totals and histogram quantiles agree with the observations."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from headwater.console.rates import Rates
from headwater.console.scrape import Sample, parse, quantile, total

BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 1.0)


def histogram(observations: list[float]) -> list[Sample]:
    """The cumulative buckets Prometheus exposes for ``observations``."""
    return [Sample("lat_bucket", {"le": repr(b) if b != math.inf else "+Inf"},
                   float(sum(o <= b for o in observations)))
            for b in (*BOUNDS, math.inf)]


@given(st.lists(st.floats(0.0, 2.0), min_size=1, max_size=200), st.floats(0.01, 1.0))
def test_a_quantile_lies_in_the_bucket_of_the_true_one(observations: list[float],
                                                       q: float) -> None:
    """Within the bounds of the bucket holding the exact order statistic: a histogram
    knows no more than that."""
    ranked = sorted(observations)
    exact = ranked[max(0, math.ceil(q * len(ranked)) - 1)]
    upper = next((b for b in BOUNDS if exact <= b), math.inf)
    lower = max((b for b in BOUNDS if b < exact), default=0.0)
    found = quantile(histogram(observations), "lat", q)
    assert found is not None
    if upper == math.inf:
        assert found == BOUNDS[-1]  # past the last bound: the last bound is all it knows
    else:
        assert lower - 1e-12 <= found <= upper + 1e-12


def test_no_observation_is_no_quantile() -> None:
    assert quantile(histogram([]), "lat", 0.5) is None


@given(st.dictionaries(st.sampled_from(["200", "404", "500", "503"]),
                       st.integers(0, 10**9)))
def test_totals_agree_with_the_text(counts: dict[str, int]) -> None:
    text = "".join(f'req_total{{status="{s}"}} {n}.0\n' for s, n in counts.items())
    samples = parse(text)
    assert total(samples, "req_total") == sum(counts.values())
    assert total(samples, "req_total", lambda lb: lb["status"].startswith("5")) == sum(
        n for s, n in counts.items() if s.startswith("5"))


@given(st.lists(st.tuples(st.integers(1, 10**7), st.integers(0, 10**6)), min_size=2,
                max_size=50))
def test_rates_agree_with_differences(readings: list[tuple[int, int]]) -> None:
    """Each rate is the increase over its interval (0 across a restart), per second."""
    rates, at, expected, last = Rates(points=100), 0, [], None
    for step, value in readings:
        at += step
        rates.observe("c", value, at_us=at)
        if last is not None:
            expected.append(max(0, value - last[1]) * 1e6 / (at - last[0]))
        last = (at, value)
    assert rates.series("c")[1] == expected
