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
