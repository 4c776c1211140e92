"""The one promotion gate and its sequential guard: the rule, the two paths that must
agree, and the guard on a live model (no revert on noise, a revert on a real drop)."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import ValidationError
from headwater.learning import Gate, Guard
from headwater.models import LogisticRegression

F64 = npt.NDArray[np.float64]

METRICS = st.sampled_from(["log_loss", "accuracy", "mae"])


@st.composite
def judged(draw: st.DrawFn) -> tuple[F64, F64, F64]:
    """Labels and two models' scores on the same rows."""
    n = draw(st.integers(2, 120))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < draw(st.floats(0.05, 0.95))).astype(np.float64)
    shift = draw(st.floats(-0.4, 0.4))
    a = np.clip(rng.random(n), 0.0, 1.0)
    b = np.clip(a + shift * (2 * y - 1) + rng.normal(0, draw(st.floats(0, 0.3)), n), 0, 1)
    if draw(st.booleans()):  # ties: identical scores on some rows
        same = rng.random(n) < 0.5
        b[same] = a[same]
    return y, a, b


def test_the_rule_holds_back_only_a_significantly_worse_candidate() -> None:
    y = np.array([1.0, 0.0, 1.0, 0.0])
    sharp, vague = np.array([0.9, 0.1, 0.9, 0.1]), np.array([0.6, 0.4, 0.6, 0.4])
    gate = Gate("log_loss", margin=0.0, window=10, min_examples=4)
    assert gate.judge(y, sharp, vague).promote
    verdict = gate.judge(y, vague, sharp)
    assert not verdict.promote
    assert "worse than the champion" in verdict.reason
    assert verdict.low > 0
    # a little worse on a noisy sample is not a reason: the candidate passes
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.5).astype(float)
    champion = np.clip(0.5 + 0.2 * (2 * y - 1) + rng.normal(0, 0.2, 300), 0.01, 0.99)
    candidate = np.clip(champion + rng.normal(0, 0.05, 300), 0.01, 0.99)
    noisy = Gate("log_loss", window=300).judge(y, candidate, champion)
    assert noisy.candidate != noisy.champion
    assert noisy.promote, noisy.reason
    assert noisy.low < 0 < noisy.high


def test_the_gate_needs_examples_and_finite_scores() -> None:
    gate = Gate("accuracy", window=10, min_examples=4)
    y = np.array([1.0, 0.0, 1.0])
    refused = gate.judge(y, np.array([0.9, 0.1, 0.8]), None)
    assert not refused.promote
    assert refused.reason == ("only 3 examples to judge on; promoting needs at least 4 "
                              "(min_examples)")
    assert not gate.judge(y[:0], y[:0], None).promote
    y4 = np.array([1.0, 0.0, 1.0, 0.0])
    broken = gate.judge(y4, np.array([0.9, np.nan, 0.8, 0.1]), np.full(4, 0.5))
    assert not broken.promote
    assert "1 non-finite" in broken.reason
    assert gate.judge(y4, np.array([0.9, 0.1, 0.8, 0.1]), None).reason == "no champion yet"
    unscored = gate.judge(y4, np.array([0.9, 0.1, 0.8, 0.1]), np.array([0.9, np.nan, 0.1, 0.1]))
    assert unscored.promote
    assert "the champion scored only 3 of these 4 examples" in unscored.reason


def test_bad_settings_are_named() -> None:
    for metric in ("roc_auc", "kappa_t", "rmse"):
        with pytest.raises(ValidationError, match="per-example") as caught:
            Gate(metric)
        assert caught.value.field == "metric"
    with pytest.raises(ValidationError, match="metric"):
        Guard("f1")
    with pytest.raises(ValidationError, match="margin"):
        Gate(margin=-1.0)
    with pytest.raises(ValidationError, match="alpha"):
        Gate(alpha=1.5)
    with pytest.raises(ValidationError, match="scores"):
        Guard().update([1.0, 0.0], [0.5], [0.5, 0.5])


@given(judged(), METRICS, st.sampled_from([0.0, 0.01, 0.1]))
def test_the_gate_and_the_guard_fed_once_give_one_answer(
        case: tuple[F64, F64, F64], metric: str, margin: float) -> None:
    """The publish-time gate and the per-update guard are one rule: on the same rows,
    the gate holds a candidate back exactly when a guard fed those rows calls a drop."""
    y, champion, candidate = case
    gate = Gate(metric, margin=margin, window=len(y), min_examples=len(y))
    verdict = gate.judge(y, candidate, champion)
    guard = gate.guard(min_examples=min(len(y), 30))
    guard.update(y, candidate, champion)
    assert verdict.promote is not guard.dropped
    assert verdict.examples == guard.examples == len(y)
    assert (verdict.candidate, verdict.champion) == pytest.approx(guard.values)


@given(judged(), METRICS, st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_looking_more_often_finds_the_same_evidence_and_loses_no_drop(
        case: tuple[F64, F64, F64], metric: str, cuts: list[int]) -> None:
    """Fed in any batches, the guard ends with the same difference as fed at once, and a
    drop seen at the end is seen by the guard that looked along the way."""
    y, checkpoint, updating = case
    once, batched = Guard(metric, min_examples=2), Guard(metric, min_examples=2)
    once.update(y, updating, checkpoint)
    bounds = np.cumsum([0, *cuts])
    bounds = np.unique(np.clip(np.append(bounds, len(y)), 0, len(y)))
    for start, stop in itertools.pairwise(bounds):
        batched.update(y[start:stop], updating[start:stop], checkpoint[start:stop])
    assert batched.examples == once.examples
    assert batched.worse_by[0] == pytest.approx(once.worse_by[0], abs=1e-9)
    if once.dropped:
        assert batched.dropped


@given(judged(), METRICS, st.sampled_from([0.0, 0.05]))
def test_two_models_are_never_both_worse_than_each_other(
        case: tuple[F64, F64, F64], metric: str, margin: float) -> None:
    y, a, b = case
    gate = Gate(metric, margin=margin, window=len(y), min_examples=len(y))
    assert gate.judge(y, a, b).promote or gate.judge(y, b, a).promote
    assert gate.judge(y, a, a).promote


def _stream(rng: np.random.Generator, n: int) -> tuple[dict[str, F64], F64]:
    x = rng.normal(size=(n, 3))
    y = ((x @ np.array([1.0, -1.0, 0.5]) + rng.normal(0, 1.0, n)) > 0).astype(np.float64)
    return {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2]}, y


def _copy(model: LogisticRegression, tmp: str) -> LogisticRegression:
    model.save(tmp)
    return LogisticRegression.load(tmp)


def test_a_stationary_stream_reverts_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A model learning a stationary stream, checkpointed every 10 updates, its guard
    looking after every update: no revert in 200 checkpoints (seed fixed), though the
    updating model is often a little worse than its checkpoint on an update's rows."""
    rng = np.random.default_rng(17)
    model = LogisticRegression()
    guard = Gate("log_loss").guard()
    features, y = _stream(rng, 500)
    model.learn(features, y)
    checkpoint = _copy(model, str(tmp_path / "c0"))
    reverts = worse_updates = 0
    for update in range(2_000):
        features, y = _stream(rng, 100)
        ours = model.predict(features)
        theirs = checkpoint.predict(features)
        model.learn(features, y)
        worse_updates += Gate("log_loss", window=100).judge(y, ours, theirs).candidate > \
            Gate("log_loss", window=100).judge(y, theirs, ours).candidate
        if guard.update(y, ours, theirs):
            reverts += 1
            model = _copy(checkpoint, str(tmp_path / f"r{update}"))
            guard.reset()
        if update % 10 == 9:
            checkpoint = _copy(model, str(tmp_path / f"c{update % 20}"))
            guard.reset()
    assert reverts == 0
    assert worse_updates > 200  # the noise a point comparison would have refused on


def test_a_model_that_learns_flipped_labels_is_caught() -> None:
    """The updating model learns labels flipped (a broken label feed), the guard sees the
    true labels: it calls the drop within a few updates, and not before the flip."""
    rng = np.random.default_rng(5)
    model, checkpoint = LogisticRegression(), LogisticRegression()
    features, y = _stream(rng, 2_000)
    model.learn(features, y)
    checkpoint.learn(features, y)
    guard = Gate("log_loss").guard()
    dropped_at = None
    for update in range(60):
        features, y = _stream(rng, 100)
        ours, theirs = model.predict(features), checkpoint.predict(features)
        if guard.update(y, ours, theirs):
            dropped_at = update
            break
        model.learn(features, 1.0 - y if update >= 20 else y)
    assert dropped_at is not None
    assert 20 < dropped_at < 30, dropped_at
    assert "worse than the checkpoint's" in guard.reason
