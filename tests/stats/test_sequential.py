"""The one mixture SPRT: a known answer, constant arms, and the bandits' stopping rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from headwater.bandits import SequentialTest, SplitTest
from headwater.stats import MixtureSPRT


def test_a_known_answer() -> None:
    # A = 0 0 1 1: mean 1/2, sample variance 1/3; B = 1 1 1 0: mean 3/4, variance 1/4.
    # V = (1/3)/4 + (1/4)/4 = 7/48; with tau = 0.1 (tau^2 = 1/100) and theta = 1/4,
    # Lambda = sqrt(V / (V + 1/100)) * exp((1/100)(1/16) / (2 V (V + 1/100))) = 0.98078...
    test = MixtureSPRT(tau=0.1, min_samples=2)
    test.update([0, 0, 1, 1], [1, 1, 1, 0])
    assert test.estimate == 0.25
    assert test.variance == pytest.approx(7 / 48, rel=1e-12)
    assert test.likelihood_ratio == pytest.approx(0.980777, abs=1e-6)
    assert test.p_value == 1.0
    assert not test.rejected


def test_a_clear_difference_is_rejected_and_its_interval_excludes_zero() -> None:
    rng = np.random.default_rng(5)
    test = MixtureSPRT(alpha=0.05, tau=0.1)
    test.update(rng.normal(0.0, 1.0, 2_000), rng.normal(0.5, 1.0, 2_000))
    assert test.rejected
    assert test.p_value < 1e-20
    assert 0.0 < test.low < 0.5 < test.high


def test_constant_arms_that_differ_are_a_difference() -> None:
    test = MixtureSPRT()
    test.update([0.0] * 30, [1.0] * 30)
    assert test.likelihood_ratio == math.inf
    assert test.rejected
    assert test.p_value == 0.0
    assert (test.low, test.high) == (1.0, 1.0)
    test.update([0.0] * 10, [1.0] * 10)
    assert test.rejected  # once rejected, it stays


def test_equal_constant_arms_are_no_evidence() -> None:
    test = MixtureSPRT()
    test.update([1.0] * 100, [1.0] * 100)
    assert test.likelihood_ratio == 1.0
    assert not test.rejected
    assert (test.low, test.high) == (0.0, 0.0)


def test_nothing_is_said_before_the_minimum_sample() -> None:
    test = MixtureSPRT(min_samples=30)
    test.update([0.0] * 29, [1.0] * 29)
    assert not test.rejected
    assert math.isnan(test.variance)


def test_the_bandits_stopping_rule_is_the_same_test() -> None:
    assert SequentialTest().observe([0.0] * 30, [1.0] * 30) == 1
    assert SequentialTest().observe([1.0] * 30, [0.0] * 30) == 0
    assert SequentialTest().observe([1.0] * 30, [1.0] * 30) is None
    assert SequentialTest(max_per_arm=30).observe([1.0] * 30, [1.0] * 30) == 0
    rng = np.random.default_rng(9)
    for effect in (0.0, 0.05, 0.1, 0.2):
        a = rng.binomial(1, 0.3, 400).astype(float).tolist()
        b = rng.binomial(1, 0.3 + effect, 400).astype(float).tolist()
        rule, test = SequentialTest(tau=0.1), MixtureSPRT(tau=0.1)
        test.update(a, b)
        verdict = rule.observe(a, b)
        assert (verdict is not None) == test.rejected
        if test.rejected:
            assert verdict == (1 if test.estimate > 0 else 0)


def test_an_ab_policy_stops_on_constant_arms() -> None:
    ab = SplitTest(("champion", "challenger"), test=SequentialTest())
    ab.update("champion", [0.0] * 30)
    ab.update("challenger", [1.0] * 30)
    assert ab.winner == "challenger"
    assert ab.decided_at == 60
