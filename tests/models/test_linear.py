"""The built-in linear models against readable reference implementations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import ValidationError
from headwater.models import LinearRegression, LogisticRegression
from headwater.models.ftrl import FTRL, _carry_identity, _carry_logistic
from headwater.models.hashing import hash_value
from headwater.models.standardizer import Standardizer
from tests.models import oracle
from tests.models.adapters import batch, rows, target

BITS = 6  # a small hash space, so collisions happen and must be handled like any value


def _coordinates(features: dict[str, npt.NDArray[Any]], numeric: list[list[float]],
                 categorical: list[str]) -> list[dict[int, float]]:
    """Rows as the oracles read them: bias 0, numbers 1..d, hashed values after."""
    d = len(numeric[0]) if numeric else 0
    out = []
    for i, values in enumerate(numeric):
        row = {0: 1.0} | {1 + j: v for j, v in enumerate(values)}
        for name in categorical:
            index = 1 + d + hash_value(name, features[name][i], BITS)
            row[index] = row.get(index, 0.0) + 1.0
        out.append(row)
    return out


@given(n=st.integers(1, 60), seed=st.integers(0, 10_000), alpha=st.sampled_from([0.1, 1.0, 3.0]),
       l1=st.sampled_from([0.0, 0.5]), l2=st.sampled_from([0.0, 1.0]),
       decay=st.sampled_from([1.0, 0.9]), categorical=st.booleans())
def test_block_of_one_is_textbook_ftrl_proximal(n: int, seed: int, alpha: float, l1: float,
                                                l2: float, decay: float,
                                                categorical: bool) -> None:
    features = batch(n, seed, categorical=categorical)
    y = target(features, True)
    model = LogisticRegression(alpha=alpha, l1=l1, l2=l2, decay=decay, block=1,
                               standardize=False, hash_bits=BITS)
    got = model.predict_learn(features, y)
    numeric = np.column_stack([features[k] for k in ("a", "b", "c")]).astype(float).tolist()
    expected = oracle.textbook_ftrl(
        _coordinates(features, numeric, ["city"] if categorical else []), y.tolist(),
        alpha=alpha, beta=1.0, l1=l1, l2=l2, decay=decay)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4),
       seed=st.integers(0, 10_000), block=st.sampled_from([1, 2, 5, 16, 128, 300]),
       l1=st.sampled_from([0.0, 0.2]), decay=st.sampled_from([1.0, 0.95]),
       logistic=st.booleans(), weighted=st.booleans(), categorical=st.booleans())
def test_learning_follows_the_documented_row_by_row_semantics(
        sizes: list[int], seed: int, block: int, l1: float, decay: float, logistic: bool,
        weighted: bool, categorical: bool) -> None:
    n = sum(sizes)
    features = batch(n, seed, categorical=categorical)
    y = target(features, logistic)
    weights = np.random.default_rng(seed).uniform(0, 2, size=n) if weighted else None
    kind = LogisticRegression if logistic else LinearRegression
    model = kind(alpha=0.5, l1=l1, l2=0.1, decay=decay, block=block, hash_bits=BITS)
    got, start = [], 0
    for size in sizes:  # in batches of any size: the semantics are per row
        part = slice(start, start + size)
        got.append(model.predict_learn(rows(features, start, start + size), y[part],
                                       None if weights is None else weights[part]))
        start += size
    numeric = oracle.standardise(
        np.column_stack([features[k] for k in ("a", "b", "c")]).astype(float).tolist())
    expected = oracle.blocked_ftrl(
        _coordinates(features, numeric, ["city"] if categorical else []), y.tolist(),
        None if weights is None else weights.tolist(), alpha=0.5, beta=1.0, l1=l1, l2=0.1,
        decay=decay, block=block, logistic=logistic)
    np.testing.assert_allclose(np.concatenate(got), expected, rtol=1e-8, atol=1e-10)


def test_predict_learn_is_predict_then_learn() -> None:
    features = batch(50, 3)
    y = target(features, True)
    fast, slow = LogisticRegression(block=8), LogisticRegression(block=8)
    scores = fast.predict_learn(features, y)
    for i in range(50):
        assert slow.predict(rows(features, i, i + 1))[0] == pytest.approx(scores[i], abs=1e-12)
        slow.learn(rows(features, i, i + 1), y[i: i + 1])


@given(chunks=st.lists(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), min_size=1,
                       max_size=4))
def test_the_standardiser_matches_welford_row_by_row(chunks: list[list[float]]) -> None:
    scaler = Standardizer(1)
    got = np.concatenate([scaler.learn_transform(np.array(c)[:, None])[:, 0] for c in chunks])
    values = [v for c in chunks for v in c]
    expected = [r[0] for r in oracle.standardise([[v] for v in values])]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert scaler.count == len(values)
    assert scaler.mean[0] == pytest.approx(np.mean(values), rel=1e-9, abs=1e-6)
    assert scaler.m2[0] / len(values) == pytest.approx(np.var(values), rel=1e-6, abs=1e-3)


def test_l1_gives_exact_zeros() -> None:
    rng = np.random.default_rng(0)
    features = {f"noise{i}": rng.normal(size=2000) for i in range(5)}
    features["signal"] = rng.normal(size=2000)
    y = (features["signal"] > 0).astype(int)
    model = LogisticRegression(l1=5.0, block=1)
    model.learn(features, y)
    assert model.feature_names is not None
    weights = dict(zip(model.feature_names,
                       model.predict_one.__self__._ftrl.w[1:].tolist(),  # type: ignore[attr-defined]
                       strict=True))
    assert weights["signal"] > 1.0
    assert sum(weights[f"noise{i}"] == 0.0 for i in range(5)) >= 4


def test_columns_are_fixed_by_the_first_batch() -> None:
    model = LogisticRegression()
    features = batch(20, 0)
    model.learn(features, target(features, True))
    assert model.feature_names == ("a", "b", "c", "city")
    more = dict(features, extra=np.zeros(20))
    np.testing.assert_array_equal(model.predict(more), model.predict(features))
    assert model.predict_one({"a": 1.0, "b": 0.5, "c": 3, "city": "never seen"}) > 0.0


def test_categories_are_learnt() -> None:
    rng = np.random.default_rng(0)
    city = rng.choice(np.array(["oslo", "lima", "pune"]), size=3000)
    model = LogisticRegression(alpha=1.0)
    model.learn({"city": city}, (city == "oslo").astype(int))
    assert model.predict_one({"city": "oslo"}) > 0.9
    assert model.predict_one({"city": "lima"}) < 0.1


def test_regression_learns_a_line() -> None:
    x = np.random.default_rng(0).uniform(-3, 3, size=4000)
    model = LinearRegression(alpha=0.5)
    model.learn({"x": x}, 2.0 * x + 1.0)
    assert model.predict_one({"x": 1.0}) == pytest.approx(3.0, abs=0.05)


def test_the_saved_state_is_plain_numpy(tmp_path: Path) -> None:
    model = LogisticRegression(hash_bits=8)
    features = batch(30, 0)
    model.learn(features, target(features, True))
    model.save(tmp_path)
    with np.load(tmp_path / "state.npz", allow_pickle=False) as npz:
        assert {"z", "n", "w", "rate", "seen", "scaler_mean"} <= set(npz.files)
        assert npz["w"].shape == (1 + 3 + 256,)


@pytest.mark.parametrize(("name", "value"), [
    ("alpha", 0.0), ("alpha", float("nan")), ("l1", -1.0), ("decay", 0.0), ("decay", 1.5),
    ("block", 0), ("block", 2.5), ("hash_bits", 31), ("hash_bits", True)])
def test_bad_hyper_parameters_are_named(name: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        LogisticRegression(**{name: value})  # type: ignore[arg-type]
    assert raised.value.field == name


def test_unsupported_columns_are_refused() -> None:
    with pytest.raises(ValidationError, match="unsupported dtype") as raised:
        LogisticRegression().learn({"t": np.array(["2024-01-01"], dtype="datetime64[D]")},
                                   np.array([1]))
    assert raised.value.field == "t"
    with pytest.raises(ValidationError, match="no feature columns"):
        LogisticRegression().learn({}, np.array([]))
    with pytest.raises(ValidationError, match="1-D"):
        LogisticRegression().learn({"m": np.zeros((2, 2))}, np.array([0, 1]))


@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=4),
       seed=st.integers(0, 10_000), width=st.integers(1, 12), hashed=st.integers(0, 3),
       l1=st.sampled_from([0.0, 0.3]), l2=st.sampled_from([0.0, 0.5]),
       decay=st.sampled_from([1.0, 0.9]), logistic=st.booleans(), weighted=st.booleans())
def test_the_exact_per_row_path_agrees_with_one_row_chunks(
        sizes: list[int], seed: int, width: int, hashed: int, l1: float, l2: float,
        decay: float, logistic: bool, weighted: bool) -> None:
    """``block=1`` learns over plain floats; the chunked path with one-row chunks is the
    reference it replaced, with the same operations in the same order."""
    rng = np.random.default_rng(seed)
    n, space = sum(sizes), width + 8  # 8 hashed coordinates: rows collide on them
    dense = np.column_stack([np.ones(n), rng.normal(size=(n, width - 1))])
    cells = rng.integers(width, space, size=(n, hashed)) if hashed else None
    y = (rng.random(n) < 0.5).astype(float) if logistic else rng.normal(size=n)
    weight = rng.uniform(0, 2, size=n) if weighted else None
    fast, slow = (FTRL(space, width, alpha=0.7, beta=1.0, l1=l1, l2=l2, decay=decay, block=1)
                  for _ in range(2))
    carry = _carry_logistic if logistic else _carry_identity
    start = 0
    for size in sizes:
        part = slice(start, start + size)
        got = fast.predict_learn(dense[part], None if cells is None else cells[part], y[part],
                                 None if weight is None else weight[part], logistic=logistic)
        expected: list[float] = []
        slow._learn(dense[part], None if cells is None else cells[part], y[part],
                    None if weight is None else weight[part], carry, expected)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
        start += size
    for name, value in fast.state().items():
        np.testing.assert_allclose(value, slow.state()[name], rtol=1e-12, atol=1e-15,
                                   err_msg=name)
