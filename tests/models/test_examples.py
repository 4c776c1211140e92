"""Rows of a topic become the batch a model learns, by one set of rules, with a hash."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from headwater.errors import ValidationError
from headwater.models import LogisticRegression, examples_from_batch, examples_sha256, train_on
from headwater.models.examples import Examples, concat_examples


def _json_rows(*features: bytes, labels: list[float] | None = None) -> pa.Table:
    return pa.table({"features": pa.array(features, pa.binary()),
                     "label": labels or [1.0] * len(features)})


def test_json_features_become_columns_numbers_as_float64() -> None:
    examples = examples_from_batch(_json_rows(b'{"b": true, "a": 2, "c": "x"}',
                                              b'{"a": 0.5, "c": "y", "b": false}'))
    assert list(examples.features) == ["a", "b", "c"]
    assert examples.features["a"].dtype == np.float64
    assert examples.features["b"].tolist() == [1.0, 0.0]
    assert examples.features["c"].tolist() == ["x", "y"]


def test_plain_columns_are_features_but_the_label_metadata_and_excluded() -> None:
    rows = pa.table({"user": ["a", "b"], "x": [1, 2], "label": [0.0, 1.0],
                     "ts": pa.array([1, 2], pa.timestamp("us", tz="UTC")),
                     "_offset": [0, 1], "served": [True, False]})
    examples = examples_from_batch(rows, exclude=("user", "ts"))
    assert list(examples.features) == ["x"]
    assert examples.features["x"].tolist() == [1.0]  # the shadowed row is not an example
    assert examples.y.tolist() == [0.0]


@pytest.mark.parametrize(("rows", "field", "reason"), [
    (_json_rows(b'{"a": 1}', b'{"a": "x"}'), "features.a", "mixes strings and numbers"),
    (_json_rows(b'{"a": 1}', b'{"a": null}'), "features.a", "null at row 1"),
    (_json_rows(b'{"a": [1]}'), "features.a", "list at row 0"),
    (_json_rows(b'{"a": 1}', b'{"a": 1, "b": 2}'), "features.b", "not in others"),
    (_json_rows(b'{"a": 1', b'{}'), "features", "row 0 is not a JSON object"),
    (pa.table({"x": [1.0]}), "label", "missing label column"),
    (pa.table({"x": [1.0], "label": pa.array([None], pa.float64())}), "label", "null"),
])
def test_bad_rows_name_the_field_and_row(rows: pa.Table, field: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as raised:
        examples_from_batch(rows)
    assert raised.value.field == field


def test_the_hash_covers_values_order_names_and_labels() -> None:
    base = Examples({"a": np.array([1.0, 2.0]), "c": np.array(["x", "y"])}, np.array([0.0, 1.0]))
    same = Examples({"c": np.array(["x", "y"]), "a": np.array([1, 2])}, np.array([0, 1.0]))
    assert examples_sha256(base) == examples_sha256(same)
    variants = [
        Examples({"a": np.array([1.0, 2.5]), "c": base.features["c"]}, base.y),
        Examples({"a": np.array([2.0, 1.0]), "c": np.array(["y", "x"])}, np.array([1.0, 0.0])),
        Examples({"b": base.features["a"], "c": base.features["c"]}, base.y),
        Examples(base.features, np.array([1.0, 1.0])),
        Examples({"a": base.features["a"], "c": np.array(["x", "z"])}, base.y),
    ]
    hashes = {examples_sha256(v) for v in variants}
    assert len(hashes) == len(variants)
    assert examples_sha256(base) not in hashes


def test_concat_and_train_on() -> None:
    part = Examples({"a": np.array([-1.0, 1.0] * 5)}, np.array([0.0, 1.0] * 5))
    both = concat_examples([part, Examples({"a": np.zeros(0)}, np.zeros(0)), part])
    assert both.rows == 20
    with pytest.raises(ValidationError) as raised:
        concat_examples([part, Examples({"b": np.ones(1)}, np.ones(1))])
    assert raised.value.field in ("a", "b")
    scratch, stateful = LogisticRegression(), LogisticRegression()
    stateful.learn(part.features, part.y)
    train_on(stateful, part, from_scratch=True)  # fit forgets what was learnt
    train_on(scratch, part, from_scratch=False)
    np.testing.assert_array_equal(stateful.predict(part.features),
                                  scratch.predict(part.features))
