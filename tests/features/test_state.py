"""Folding micro-batches into tile rings, then reading online, equals the oracle."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from headwater.features.definitions import Feature
from headwater.features.online import value_at
from headwater.features.state import FeatureState, TileRing
from headwater.features.windows import Window
from tests.features.oracle import Event, oracle
from tests.features.test_pointintime import KINDS, SOURCE, USER, WINDOWS, same, streams

ENTITIES = "abc"


@given(
    streams(),
    st.lists(st.integers(1, 12), max_size=6),
    st.sampled_from(KINDS),
    st.sampled_from(WINDOWS),
    st.sampled_from([None, 7, 25]),
    st.lists(st.integers(0, 70), min_size=1, max_size=6),
)
def test_rings_read_online_equal_the_oracle(
    events: list[Event], cuts: list[int], kind: str, window: Window, ttl: int | None,
    later: list[int],
) -> None:
    feature = Feature.of("f", USER, SOURCE, kind, column=None if kind == "count" else "x",
                         window=window, ttl=ttl, n=3 if kind == "last_n" else None)
    state = FeatureState(feature, capacity=1)
    ids = np.array([ENTITIES.index(e.entity) for e in events], np.int64)
    times = np.array([e.time for e in events], np.int64)
    offsets = np.array([e.offset for e in events], np.int64)
    values = np.array([e.value for e in events], np.float64)
    bounds = sorted({0, len(events), *[min(c, len(events)) for c in np.cumsum(cuts).tolist()]})
    for lo, hi in itertools.pairwise(bounds):  # micro-batches in log order
        state.apply(ids[lo:hi], times[lo:hi], offsets[lo:hi], values[lo:hi])
    seen = sorted(set(ids.tolist()))
    entries = dict(zip(seen, state.encode(np.array(seen, np.int64)), strict=True))
    end = max((e.time for e in events), default=0)
    for entity in range(len(ENTITIES)):
        for delta in later:
            t = end + delta
            data = entries.get(entity)
            got = value_at(feature, data, t)
            want = oracle(feature, events, ENTITIES[entity], t, "event_time")
            assert same(got, want), (ENTITIES[entity], t, got, want)


def test_snapshot_and_restore_then_continue_equals_an_uninterrupted_run() -> None:
    feature = Feature.of("f", USER, SOURCE, "mean", column="x", window=WINDOWS[2])
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 50, 400)
    times = np.sort(rng.integers(0, 200, 400))
    offsets = np.arange(400)
    values = rng.integers(-5, 5, 400).astype(np.float64)
    whole = FeatureState(feature)
    whole.apply(ids, times, offsets, values)
    first = FeatureState(feature)
    first.apply(ids[:150], times[:150], offsets[:150], values[:150])
    resumed = FeatureState(feature)
    resumed.restore(first.snapshot(50))
    resumed.apply(ids[150:], times[150:], offsets[150:], values[150:])
    everyone = np.arange(50)
    assert resumed.encode(everyone) == whole.encode(everyone)


@given(streams(), st.lists(st.integers(1, 12), max_size=6), st.sampled_from(WINDOWS))
def test_features_sharing_a_ring_equal_features_with_rings_of_their_own(
    events: list[Event], cuts: list[int], window: Window
) -> None:
    features = [Feature.of(kind, USER, SOURCE, kind, column=None if kind == "count" else "x",
                           window=window, n=3 if kind == "last_n" else None) for kind in KINDS]
    ring = TileRing(window, capacity=1)
    shared = [FeatureState(f, ring=ring) for f in features]
    alone = [FeatureState(f, capacity=1) for f in features]
    ids = np.array([ENTITIES.index(e.entity) for e in events], np.int64)
    times = np.array([e.time for e in events], np.int64)
    offsets = np.array([e.offset for e in events], np.int64)
    values = np.array([e.value for e in events], np.float64)
    bounds = sorted({0, len(events), *[min(c, len(events)) for c in np.cumsum(cuts).tolist()]})
    for lo, hi in itertools.pairwise(bounds):
        if hi == lo:
            continue
        placed = ring.place(ids[lo:hi], times[lo:hi])  # once for every feature of the ring
        keep = slice(None) if placed.keep is None else placed.keep
        for state in shared:
            state.fold(placed, times[lo:hi][keep], offsets[lo:hi][keep], values[lo:hi][keep])
        for state in alone:
            state.apply(ids[lo:hi], times[lo:hi], offsets[lo:hi], values[lo:hi])
    seen = np.array(sorted(set(ids.tolist())), np.int64)
    ages = ring.ages(seen)
    for one, other in zip(shared, alone, strict=True):
        assert one.encode(seen, ages) == other.encode(seen)
