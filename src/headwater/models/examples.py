"""Training examples: rows of a topic turned into the batch a model learns, and its hash.

One function, :func:`examples_from_batch`, turns rows read from the log into
:class:`Examples` (feature columns and labels). Trainers and ``headwater models
reproduce`` both use it, so a version replayed from its recorded slice sees exactly the
batch it was trained on. The rules:

- when the rows have a binary ``features`` column (the ``training_examples`` and
  ``predictions`` topics), each row's features are the JSON object in it, the model
  input as served; every row must hold the same names;
- otherwise every column is a feature except the label, the log's metadata columns
  (names starting with ``_``) and those in ``exclude`` (the topic's key and event time);
- the label is the float64 ``label`` column;
- when there is a boolean ``served`` column, only served rows are examples (a shadowed
  score is for evaluation, not training);
- numbers and booleans become float64 columns (what the models read), strings ``str``
  columns; a null, a nested value or a column mixing strings and numbers is refused
  with a :class:`~headwater.errors.ValidationError` naming the feature and the row.

:func:`examples_sha256` is the content hash a lineage record keeps
(``TrainingSlice.examples_sha256``); :func:`train_on` is how a version is trained on
them: the whole slice as one batch, ``learn`` from a parent, ``fit`` from scratch.

>>> import pyarrow as pa
>>> rows = pa.table({"features": [b'{"amount": 3, "city": "oslo"}',
...                               b'{"amount": 1.5, "city": "lima"}',
...                               b'{"amount": 9, "city": "x"}'],
...                  "label": [1.0, 0.0, 1.0], "served": [True, True, False]})
>>> examples = examples_from_batch(rows)
>>> examples.features["amount"].tolist(), examples.features["city"].tolist(), examples.y.tolist()
([3.0, 1.5], ['oslo', 'lima'], [1.0, 0.0])
>>> examples_sha256(examples)[:16]
'20ce2346c969c608'
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import ValidationError
from headwater.models.features import FloatArray
from headwater.models.protocol import Model

__all__ = [
    "EXAMPLES_HASH_HEADER",
    "Examples",
    "concat_examples",
    "examples_from_batch",
    "examples_sha256",
    "train_on",
]

#: The first bytes hashed by :func:`examples_sha256` (the definition's version).
EXAMPLES_HASH_HEADER: Final = b"headwater-examples/1\n"
_JSON: Final = msgspec.json.Decoder(dict[str, Any])


class Examples(NamedTuple):
    """Feature columns (name → 1-D array, names sorted) and one float64 label per row."""

    features: dict[str, npt.NDArray[Any]]
    y: FloatArray

    @property
    def rows(self) -> int:
        """The number of examples."""
        return len(self.y)


def examples_from_batch(rows: pa.Table | pa.RecordBatch, *, label: str = "label",
                        features: str = "features", served: str = "served",
                        exclude: Sequence[str] = ()) -> Examples:
    """The examples of ``rows`` (see the module docstring for the rules)."""
    names = rows.column_names
    if label not in names:
        raise ValidationError(label, "missing label column")
    if served in names and pa.types.is_boolean(rows.schema.field(served).type):
        keep = rows.column(served).to_numpy(zero_copy_only=False)
        if not keep.all():
            rows = rows.filter(pa.array(keep))
    y_column = rows.column(label)
    if y_column.null_count:
        raise ValidationError(label, f"{y_column.null_count} null labels")
    y = np.asarray(y_column.to_numpy(zero_copy_only=False), dtype=np.float64)
    if features in names and pa.types.is_binary(rows.schema.field(features).type):
        columns = _from_json(rows.column(features).to_pylist(), features)
    else:
        skipped = {label, served, *exclude}
        columns = {}
        for name in sorted(n for n in names if n not in skipped and not n.startswith("_")):
            columns[name] = _as_feature(rows.column(name).to_pylist(), name)
    return Examples(columns, y)


def concat_examples(parts: Sequence[Examples]) -> Examples:
    """The examples of ``parts`` one after another (all with the same feature names)."""
    parts = [p for p in parts if p.rows] or list(parts[:1])
    if not parts:
        return Examples({}, np.zeros(0))
    first = sorted(parts[0].features)
    for part in parts[1:]:
        if sorted(part.features) != first:
            extra = sorted(set(part.features) ^ set(first))
            raise ValidationError(extra[0], "a feature some examples have and others lack")
    features = {name: np.concatenate([p.features[name] for p in parts]) for name in first}
    return Examples(features, np.concatenate([p.y for p in parts]))


def examples_sha256(examples: Examples) -> str:
    """The content hash of the examples, in their order.

    The SHA-256 of :data:`EXAMPLES_HASH_HEADER`, ``rows <n>\\n``, then for each feature
    in name order ``<name> f8\\n`` and its float64 little-endian bytes, or ``<name>
    str\\n`` and the JSON array of its strings, then ``label f8\\n`` and the labels'
    bytes. Numbers are hashed as the float64 the models read.
    """
    digest = hashlib.sha256(EXAMPLES_HASH_HEADER)
    digest.update(f"rows {len(examples.y)}\n".encode())
    for name in sorted(examples.features):
        column = examples.features[name]
        if column.dtype.kind in "OUS":
            digest.update(f"{name} str\n".encode())
            digest.update(msgspec.json.encode([str(v) for v in column.tolist()]))
        else:
            digest.update(f"{name} f8\n".encode())
            digest.update(np.ascontiguousarray(column, dtype="<f8").tobytes())
    digest.update(b"label f8\n")
    digest.update(np.ascontiguousarray(examples.y, dtype="<f8").tobytes())
    return digest.hexdigest()


def train_on(model: Model, examples: Examples, *, from_scratch: bool) -> None:
    """Train ``model`` on ``examples`` the way a version is trained on its slice: one
    batch, ``fit`` when ``from_scratch`` (no parent) and ``learn`` otherwise."""
    if not examples.rows:
        return
    if from_scratch:
        model.fit(examples.features, examples.y)
    else:
        model.learn(examples.features, examples.y)


def _from_json(blobs: list[bytes | None], column: str) -> dict[str, npt.NDArray[Any]]:
    decoded: list[dict[str, Any]] = []
    for row, blob in enumerate(blobs):
        if blob is None:
            raise ValidationError(column, f"null at row {row}")
        try:
            decoded.append(_JSON.decode(blob))
        except msgspec.DecodeError as exc:
            raise ValidationError(column, f"row {row} is not a JSON object: {exc}") from None
    if not decoded:
        return {}
    names = sorted(decoded[0])
    for row, values in enumerate(decoded):
        if len(values) != len(names) or sorted(values) != names:
            extra = sorted(set(values) ^ set(names))
            raise ValidationError(f"{column}.{extra[0]}", f"present in some rows, not in "
                                                         f"others (row {row})")
    return {name: _as_feature([values[name] for values in decoded], f"{column}.{name}")
            for name in names}


def _as_feature(values: list[Any], field: str) -> npt.NDArray[Any]:
    strings = numbers = 0
    for row, value in enumerate(values):
        if isinstance(value, str):
            strings += 1
        elif isinstance(value, int | float):  # bool is an int
            numbers += 1
        else:
            kind = "null" if value is None else type(value).__name__
            raise ValidationError(field, f"{kind} at row {row}: expected a number or a string")
        if strings and numbers:
            raise ValidationError(field, f"mixes strings and numbers (row {row})")
    if strings:
        return np.asarray(values, dtype=np.str_)
    return np.asarray(values, dtype=np.float64)
