"""Triggers and the gate: each fires when and only when it should."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import ValidationError
from headwater.learning import (
    AnyOf,
    Daily,
    Drift,
    Every,
    Gate,
    Observation,
    Performance,
    RateLimited,
    Volume,
)

HOUR = 3_600_000_000
DAY = 24 * HOUR


def obs(now: int, y: list[float] | None = None, served: list[float] | None = None,
        own: list[float] | None = None) -> Observation:
    return Observation(now=now, y=np.array(y or [], float), served=np.array(served or [], float),
                       own=np.array(own or [], float))


def test_every_fires_after_the_interval_and_starts_over_on_reset() -> None:
    every = Every(HOUR)
    assert every.observe(obs(0)) is None
    fired = every.observe(obs(HOUR))
    assert fired is not None
    assert fired.kind == "time"
    every.reset(HOUR)
    assert every.observe(obs(HOUR + 1)) is None


def test_daily_fires_once_per_day_at_the_time() -> None:
    daily = Daily(at=2 * HOUR)
    times = range(0, 3 * DAY, HOUR // 2)
    fired = [t for t in times if daily.observe(obs(t)) is not None]
    assert fired == [2 * HOUR, DAY + 2 * HOUR, 2 * DAY + 2 * HOUR]


@given(st.lists(st.integers(0, 50), max_size=30), st.integers(1, 200))
def test_volume_fires_exactly_when_the_count_is_reached(sizes: list[int], count: int) -> None:
    volume = Volume(count)
    seen = 0
    for size in sizes:
        seen += size
        fired = volume.observe(obs(0, [0.0] * size))
        assert (fired is not None) == (seen >= count)
        if fired is not None:
            volume.reset(0)
            seen = 0


def test_performance_threshold_and_margin() -> None:
    low = Performance("accuracy", window=4, threshold=0.8)
    assert low.observe(obs(0, [1, 0, 1, 0], [0.9, 0.1, 0.9, 0.9])) is not None  # 0.75 < 0.8
    assert Performance("accuracy", window=4, threshold=0.7).observe(
        obs(0, [1, 0, 1, 0], [0.9, 0.1, 0.9, 0.9])) is None
    margin = Performance("accuracy", window=4, margin=0.2)
    fired = margin.observe(obs(0, [1, 0, 1, 0], [0.9, 0.9, 0.1, 0.9], [0.9, 0.1, 0.9, 0.1]))
    assert fired is not None
    assert "trainer 1.0000" in fired.reason
    with pytest.raises(ValidationError, match="threshold"):
        Performance("accuracy")


def test_drift_detects_a_change_in_the_error_rate_and_rate_limiting_counts_bursts() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000).astype(float)
    good = np.where(rng.random(4000) < 0.95, y, 1 - y)  # 5% errors, then 50%
    bad = np.where(rng.random(4000) < 0.5, y, 1 - y)
    detector = Drift("adwin", on="error")
    assert detector.observe(obs(0, y.tolist(), good.tolist())) is None
    assert detector.observe(obs(1, y.tolist(), bad.tolist())) is not None
    limited = RateLimited(Drift("adwin", on="score"), interval=DAY)
    fires = 0
    for i in range(20):  # the score level jumps every 4 hours: an alarm each time
        served = rng.normal(0.2 if i // 4 % 2 else 0.9, 0.05, 200).clip(0, 1)
        if limited.observe(obs(i * HOUR, [0.0] * 200, served.tolist())) is not None:
            fires += 1
            limited.reset(i * HOUR)
    assert fires == 1
    assert limited.suppressed >= 1


def test_any_of_shows_every_trigger_each_observation() -> None:
    volume = Volume(10)
    both = AnyOf(Every(HOUR), volume)
    assert both.observe(obs(0, [0.0] * 4)) is None
    assert volume.seen == 4
    fired = both.observe(obs(HOUR, [0.0] * 4))
    assert fired is not None
    assert fired.kind == "time"


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValidationError, match="interval"):
        Every(0)
    with pytest.raises(ValidationError, match="detector"):
        Drift("nope")
    with pytest.raises(ValidationError, match="metric"):
        Gate("f1")


def test_gate_orients_log_loss_and_passes_without_a_champion() -> None:
    y = np.array([1.0, 0.0, 1.0, 0.0])
    sharp, vague = np.array([0.9, 0.1, 0.9, 0.1]), np.array([0.6, 0.4, 0.6, 0.4])
    gate = Gate("log_loss", margin=0.0, window=10, min_examples=4)
    assert gate.judge(y, sharp, vague).promote
    verdict = gate.judge(y, vague, sharp)
    assert not verdict.promote
    assert "worse than the champion" in verdict.reason
    assert gate.judge(y, vague, None).promote
    assert not gate.judge(y[:0], vague[:0], None).promote
