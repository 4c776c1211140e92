"""Canary: drift statistics, guardrails, the ramp, rollback through the registry and serving."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import EvaluationError, ValidationError
from headwater.evaluation.canary import CanaryController, CanaryRamp, replay_canary
from headwater.evaluation.drift import ks, psi
from headwater.evaluation.guardrails import ArmWindow, Guardrails
from headwater.models import LogisticRegression
from headwater.registry import LocalArtifacts, MemoryRegistryBackend, ModelRegistry
from headwater.serving import Canary, ChampionOnly, Deployment, Policy
from headwater.time import ManualClock

SAMPLES = st.lists(st.sampled_from([0.0, 0.1, 0.2, 0.5, 0.9, 1.0]), min_size=1, max_size=30)


@given(SAMPLES, SAMPLES)
def test_ks_equals_the_largest_gap_between_the_distribution_functions(
        a: list[float], b: list[float]) -> None:
    gaps = [abs(sum(v <= x for v in a) / len(a) - sum(v <= x for v in b) / len(b))
            for x in a + b]
    assert ks(a, b) == pytest.approx(max(gaps), abs=1e-12)


@given(SAMPLES, SAMPLES)
def test_psi_is_zero_on_itself_and_never_negative(a: list[float], b: list[float]) -> None:
    assert psi(a, a) == pytest.approx(0.0, abs=1e-12)
    assert psi(a, b) >= -1e-12
    assert math.isnan(psi([], b))


RNG = np.random.default_rng(5)
FAST = Guardrails(min_requests=50, min_labels=50, max_p99_ratio=2.0)


def _healthy(n: int = 400, *, shift: float = 0.0, latency: float = 2.0,
             errors: int = 0) -> ArmWindow:
    y = RNG.integers(0, 2, size=n).astype(float)
    scores = np.clip(0.3 + 0.4 * y + RNG.normal(scale=0.1, size=n) + shift, 0.01, 0.99)
    return ArmWindow.of(scores, errors=errors, latency_ms=RNG.normal(latency, 0.1, size=n),
                        y=y, y_scores=scores)


def test_a_healthy_canary_walks_every_step_and_is_promoted() -> None:
    ramp = CanaryRamp(guardrails=FAST)
    actions = [ramp.evaluate(_healthy(), _healthy()).action for _ in range(4)]
    assert actions == ["advance", "advance", "advance", "promote"]
    assert [s.percent for s in ramp.history] == [1.0, 5.0, 25.0, 100.0]
    assert ramp.status == "promoted"
    with pytest.raises(EvaluationError, match="over"):
        ramp.evaluate(_healthy(), _healthy())


@pytest.mark.parametrize(("canary", "guardrail"), [
    (_healthy(errors=40), "error_rate"),
    (_healthy(latency=9.0), "p99_latency"),
    (_healthy(shift=0.35), "score_psi"),
])
def test_each_guardrail_rolls_back(canary: ArmWindow, guardrail: str) -> None:
    ramp = CanaryRamp(guardrails=FAST)
    ramp.evaluate(_healthy(), _healthy())
    step = ramp.evaluate(canary, _healthy())
    assert step.action == "rollback"
    assert step.percent == 5.0
    assert ramp.percent == 0.0
    assert guardrail in [c.name for c in step.checks if c.status == "breach"]
    assert guardrail in step.reason


def test_a_worse_model_on_labels_rolls_back_and_waiting_holds() -> None:
    ramp = CanaryRamp(guardrails=Guardrails(min_requests=50, min_labels=50, max_psi=10.0))
    h = _healthy(100)
    few = ArmWindow.of(h.scores, latency_ms=h.latency_ms, y=h.y[:10], y_scores=h.scores[:10])
    assert ramp.evaluate(few, _healthy()).action == "hold"
    y = RNG.integers(0, 2, size=400).astype(float)
    wrong = ArmWindow.of(np.where(y > 0, 0.3, 0.7), y=y)
    step = ramp.evaluate(wrong, _healthy())
    assert step.action == "rollback"
    assert "metric" in step.reason


def test_at_100_percent_the_last_champion_window_is_the_reference() -> None:
    ramp = CanaryRamp((50.0, 100.0), FAST)
    assert ramp.evaluate(_healthy(), _healthy()).action == "advance"
    step = ramp.evaluate(_healthy(), ArmWindow(0))
    assert step.action == "promote"


def test_snapshot_restore_continue_equals_an_uninterrupted_ramp() -> None:
    windows = [(_healthy(), _healthy()), (_healthy(), _healthy()), (_healthy(), ArmWindow(0)),
               (_healthy(errors=30), ArmWindow(0))]
    whole = CanaryRamp(guardrails=FAST)
    want = [whole.evaluate(a, b).action for a, b in windows]
    for cut in range(len(windows)):
        first = CanaryRamp(guardrails=FAST)
        got = [first.evaluate(a, b).action for a, b in windows[:cut]]
        resumed = CanaryRamp.restore(json.loads(json.dumps(first.snapshot())))
        got += [resumed.evaluate(a, b).action for a, b in windows[cut:]]
        assert got == want
        assert ([(h.action, h.percent, h.reason) for h in resumed.history]
                == [(h.action, h.percent, h.reason) for h in whole.history])
        assert (resumed.status, resumed.percent) == (whole.status, whole.percent)
    assert want == ["advance", "advance", "advance", "rollback"]


def test_bad_settings() -> None:
    with pytest.raises(ValidationError, match="steps"):
        CanaryRamp((5.0, 1.0))
    with pytest.raises(ValidationError, match="max_psi"):
        Guardrails(max_psi=-1.0)
    with pytest.raises(ValidationError, match="metric"):
        Guardrails(metric="f1")


def _registry(tmp_path: Path, versions: int) -> ModelRegistry:
    registry = ModelRegistry(MemoryRegistryBackend(), LocalArtifacts(tmp_path / "store"),
                             clock=ManualClock(1_700_000_000_000_000))
    for i in range(versions):
        model = LogisticRegression()
        model.learn({"x": np.array([-1.0, 1.0] * 10)}, np.array([0, 1] * 10) ^ (i % 2))
        model.save(tmp_path / f"m{i}")
        registry.register("fraud", tmp_path / f"m{i}")
    registry.promote("fraud", 1, actor="test", reason="first")
    return registry


def test_rollback_moves_the_alias_back_and_routes_nothing_to_the_canary(tmp_path: Path) -> None:
    registry = _registry(tmp_path, 3)
    registry.promote("fraud", 2, "challenger", actor="test", reason="an earlier experiment")
    deployment = Deployment(registry, "fraud", ChampionOnly())
    deployment.reload()
    controller = CanaryController(registry, "fraud", 3, apply=deployment.reload,
                                  ramp=CanaryRamp(guardrails=FAST), salt="c1")
    controller.start()
    assert registry.aliases("fraud") == {"champion": 1, "challenger": 3}
    policy = deployment.snapshot.policy
    assert isinstance(policy, Canary)
    assert policy.percent == 1.0
    assert deployment.snapshot.arms["challenger"].version == 3
    controller.observe(_healthy(), _healthy())
    assert deployment.snapshot.policy.describe()["percent"] == 5.0
    step = controller.observe(_healthy(errors=100), _healthy())
    assert step.action == "rollback"
    assert registry.aliases("fraud") == {"champion": 1, "challenger": 2}
    assert deployment.snapshot.policy.describe()["percent"] == 0.0
    assert {deployment.snapshot.policy.choose(f"u{i}").arm for i in range(500)} == {"champion"}
    last = registry.history("fraud", "challenger")[-1]
    assert (last.kind, last.actor, last.to_version) == ("rollback", "canary", 2)
    assert "error_rate" in last.reason
    assert controller.breach_to_rollback_us is not None
    assert controller.breach_to_rollback_us >= 0


def test_a_first_canary_removes_its_alias_and_a_good_one_is_promoted(tmp_path: Path) -> None:
    registry = _registry(tmp_path, 2)
    applied: list[Policy] = []
    bad = CanaryController(registry, "fraud", 2, apply=applied.append,
                           ramp=CanaryRamp(guardrails=FAST))
    with pytest.raises(EvaluationError, match="start"):
        bad.observe(_healthy(), _healthy())
    bad.start()
    bad.observe(_healthy(latency=50.0), _healthy())
    assert registry.aliases("fraud") == {"champion": 1}
    assert registry.history("fraud", "challenger")[-1].kind == "remove"
    good = CanaryController(registry, "fraud", 2, apply=applied.append,
                            ramp=CanaryRamp((10.0, 100.0), FAST))
    good.start()
    good.observe(_healthy(), _healthy())
    assert good.observe(_healthy(), ArmWindow(0)).action == "promote"
    assert registry.aliases("fraud")["champion"] == 2
    assert isinstance(applied[-1], ChampionOnly)
    assert [p.describe().get("percent") for p in applied] == [1.0, 0.0, 10.0, 100.0, None]


def _traffic(shift_after: int | None, n: int = 20_000) -> pa.Table:
    rng = np.random.default_rng(11)
    t = np.sort(rng.integers(0, 10 * 3_600_000_000, size=n))
    policy_arms = np.where(rng.uniform(size=n) < 0.3, "challenger", "champion")
    y = rng.integers(0, 2, size=n).astype(float)
    score = np.clip(0.3 + 0.4 * y + rng.normal(scale=0.1, size=n), 0.01, 0.99)
    if shift_after is not None:
        late = (policy_arms == "challenger") & (t > shift_after)
        score = np.where(late, np.clip(score + 0.4, 0.01, 0.99), score)
    return pa.table({"arm": policy_arms, "served": np.ones(n, bool), "score": score,
                     "label": y, "prediction_time": t, "label_time": t + 60_000_000,
                     "latency_ms": rng.normal(2.0, 0.1, size=n)})


def test_replaying_logged_traffic() -> None:
    hour = 3_600_000_000
    good = replay_canary(_traffic(None), window_us=hour, ramp=CanaryRamp(guardrails=FAST))
    assert good.status == "promoted"
    bad = replay_canary(_traffic(2 * hour), window_us=hour, ramp=CanaryRamp(guardrails=FAST))
    assert bad.status == "rolled_back"
    assert "score_psi" in bad.steps[-1].reason
    page = bad.report().to_html()
    assert "Canary: challenger against champion" in page
    assert "rollback" in page
    with pytest.raises(ValidationError, match="window_us"):
        replay_canary(_traffic(None), window_us=0)
