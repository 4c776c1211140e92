"""The shortcuts of aggregations agree with their definitions from ``combine``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.features.aggregations import AGGREGATIONS, Aggregation, Partial, make

KINDS = [*AGGREGATIONS, "last_n"]


def tiles(agg: Aggregation, rows: int, n: int, values: list[float], seed: int) -> Partial:
    """``rows`` entities of ``n`` tile partials, each from some of ``values`` (or empty)."""
    rng = np.random.default_rng(seed)
    slot = rng.integers(0, rows * n, len(values))
    order = np.argsort(slot, kind="stable")
    slot = slot[order]
    v = np.array(values, np.float64)[order]
    times = rng.integers(0, 5, len(values))
    lifted = agg.lift(v, times, np.arange(len(values)))
    out = agg.empty(rows * n)
    if len(values):
        starts = np.flatnonzero(np.diff(slot, prepend=-1))
        reduced = agg.reduce(lifted, starts)
        for k, array in out.items():
            array[slot[starts]] = reduced[k]
    return {k: array.reshape(rows, n, *array.shape[1:]) for k, array in out.items()}


@given(st.sampled_from(KINDS), st.integers(1, 4), st.integers(1, 6),
       st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=40), st.integers(0, 9))
def test_accumulate_equals_combining_tile_by_tile(
    kind: str, rows: int, n: int, values: list[float], seed: int
) -> None:
    agg = make(kind, 2 if kind == "last_n" else None)
    partial = tiles(agg, rows, n, values, seed)
    got = agg.accumulate(partial)
    want = Aggregation.accumulate(agg, partial)  # the definition, whatever the override
    assert set(got) == set(want)
    for k in want:  # the same additions in the same order: equal bit for bit
        np.testing.assert_array_equal(got[k], want[k])


@pytest.mark.parametrize("kind", KINDS)
def test_the_identity_finalizes_to_the_empty_value(kind: str) -> None:
    agg = make(kind, 2 if kind == "last_n" else None)
    out = agg.finalize(agg.empty(3))
    if kind == "last_n":
        assert np.isnan(out).all()
    else:
        np.testing.assert_array_equal(out, np.full(3, agg.empty_value))


@pytest.mark.parametrize("distinct", [1, 10, 100, 1_000, 10_000, 100_000])
def test_approx_distinct_is_within_its_error_bound_of_the_exact_count(distinct: int) -> None:
    """HyperLogLog's 256 registers give a relative standard error of 1.04 / 16 = 6.5 %.
    Over 20 independent sets of each size, the mean absolute error (5.2 % expected for
    that standard error) stays under 8 %, no set is off by more than four standard errors,
    and one value is counted exactly."""
    agg = make("approx_distinct")
    rng = np.random.default_rng(distinct)
    errors = []
    for _ in range(20):
        values = rng.choice(2**40, size=distinct, replace=False).astype(np.float64)
        repeated = np.concatenate([values, values[: distinct // 2]])  # duplicates count once
        times = np.zeros(len(repeated), np.int64)
        lifted = agg.lift(repeated, times, np.arange(len(repeated), dtype=np.int64))
        estimate = agg.finalize(agg.reduce(lifted, np.array([0])))[0]
        errors.append(abs(estimate - distinct) / distinct)
    assert max(errors) <= 4 * 0.065, (distinct, errors)
    assert float(np.mean(errors)) <= 0.08, (distinct, errors)
    if distinct == 1:
        assert max(errors) == 0.0, errors
