"""Any River estimator as a Headwater model (``pip install 'headwater[river]'``).

:class:`RiverModel` wraps a River binary classifier or regressor (a pipeline too):
``learn`` calls ``learn_one`` on each row in order, so a batch is learnt exactly as
River would learn the stream; ``learn_many=True`` uses River's ``learn_many`` instead
where the estimator has it, which is faster but takes one step per batch (on Elec2 it
costs River's logistic regression tens of points of accuracy). ``predict`` calls
``predict_proba_one`` (classifiers: P(y = 1)) or ``predict_one`` (regressors) per row.
Labels are given to River as booleans.

Input columns. River reads rows as dicts by name, so the adapter gives it the columns it
learnt (those of the first batch), or ``features=[...]`` given by hand — the way to wrap
an estimator trained before (River estimators do not record their inputs), so that a
missing column is an error naming it rather than a value River silently does without.
An estimator with neither is given every column of the row, and its own state answers
(an estimator that has learnt nothing answers its prior): the adapter never substitutes
a constant of its own.

Saving. River estimators have no declared, code-free format, so a River artifact is
the pickled estimator (format ``river-pickle``) next to its manifest. Unpickling can
run arbitrary code: :meth:`RiverModel.load` refuses unless called with
``trusted=True``. The model store passes it only when its operator has opted in to
pickle-based artifacts (:meth:`headwater.registry.ModelRegistry.load`); a hash proves
the bytes are the registered ones, not who registered them. The manifest records the
sha256 of the pickle and it is checked before unpickling.

>>> import numpy as np
>>> from river import linear_model
>>> model = RiverModel(linear_model.LogisticRegression())
>>> model.learn({"x": np.array([-1.0, 1.0] * 10)}, np.array([0, 1] * 10))
>>> model.predict_one({"x": 1.0}) > 0.5
True
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import MissingExtraError, ModelArtifactError, ModelError, ValidationError
from headwater.models import artifact, features
from headwater.models.features import Features, FeatureSchema, FloatArray, column_names
from headwater.models.protocol import PathArg

try:
    from river import base as river_base
except ImportError as exc:
    raise MissingExtraError("The River model adapter", "river", "river") from exc

__all__ = ["RiverModel"]

FORMAT: Final = "river-pickle"
FORMAT_VERSION: Final = 1
_FILE: Final = "estimator.pkl"


class RiverModel:
    """A River classifier (binary) or regressor behind the :class:`~headwater.models.Model`
    protocol."""

    format: ClassVar[str] = FORMAT

    def __init__(self, estimator: Any, *, features: Sequence[str] | None = None,
                 learn_many: bool = False) -> None:
        if isinstance(estimator, river_base.Classifier):
            self._classifier = True
        elif isinstance(estimator, river_base.Regressor):
            self._classifier = False
        else:
            raise ValidationError("estimator", f"expected a River classifier or regressor, got "
                                               f"{type(estimator).__name__}")
        self.estimator = estimator
        self._learn_many = bool(learn_many)
        self._features = None if features is None else column_names(features)
        self._schema: FeatureSchema | None = None

    @property
    def features(self) -> tuple[str, ...] | None:
        """The input columns (``None``: not known, every column of a row is given)."""
        return self._schema.names if self._schema is not None else self._features

    def params(self) -> dict[str, Any]:
        """The estimator's hyper-parameters (class names for nested objects)."""
        return {"estimator": type(self.estimator).__name__,
                "estimator_params": _jsonable(self.estimator._get_params()),
                "learn_many": self._learn_many}

    def clone(self) -> Self:
        """The same estimator (and given ``features``), unfitted (River's ``clone``)."""
        return type(self)(self.estimator.clone(), features=self._features,
                          learn_many=self._learn_many)

    def predict(self, batch: Features) -> FloatArray:
        """One score per row (P(y = 1) or the prediction)."""
        schema = self._schema_for(batch)
        return np.fromiter((self._score(x) for x in self._rows(batch, schema)),
                           dtype=np.float64, count=features.batch_length(batch))

    def predict_one(self, x: Mapping[str, Any]) -> float:
        """The score of one row, straight from River's ``predict_*_one``."""
        row: dict[str, Any] = {}
        if self._schema is not None:
            for name in self._schema.names:
                if name not in x:
                    raise ValidationError(name, "missing feature")
                row[name] = x[name]
            for name in self._schema.numeric:
                row[name] = features.check_number(name, row[name])
            return self._score(row)
        for name in x if self._features is None else self._features:
            if name not in x:
                raise ValidationError(name, "missing feature")
            value = x[name]
            row[name] = value if isinstance(value, str) else features.check_number(name, value)
        return self._score(row)

    def learn(self, batch: Features, y: npt.ArrayLike,
              sample_weight: npt.ArrayLike | None = None) -> None:
        """Learn a batch: ``learn_one`` per row in order (or one ``learn_many``)."""
        if self._schema is None:
            self._schema = self._schema_for(batch)
        n = features.batch_length(batch)
        target = features.labels(y, n, binary=self._classifier)
        weight = features.sample_weights(sample_weight, n)
        labels: list[Any] = (target > 0.5).tolist() if self._classifier else target.tolist()
        try:
            if self._learn_many and hasattr(self.estimator, "learn_many"):
                self._learn_batch(batch, labels, weight)
                return
            learn = self.estimator.learn_one
            rows = self._rows(batch, self._schema)
            if weight is None:
                for x, label in zip(rows, labels, strict=True):
                    learn(x, label)
            else:
                for x, label, w in zip(rows, labels, weight.tolist(), strict=True):
                    learn(x, label, w=w)
        except TypeError as exc:
            raise ModelError(f"{type(self.estimator).__name__} failed to learn: {exc}") from exc

    def fit(self, batch: Features, y: npt.ArrayLike,
            sample_weight: npt.ArrayLike | None = None) -> None:
        """Start again from a fresh clone of the estimator, then learn the batch."""
        self.estimator = self.estimator.clone()
        self._schema = None
        self.learn(batch, y, sample_weight)

    def save(self, directory: PathArg) -> None:
        """Write the manifest and the pickled estimator (format ``river-pickle``)."""
        schema = self._schema
        names = schema.names if schema is not None else self._features
        manifest = artifact.Manifest(
            FORMAT, FORMAT_VERSION, type(self).__name__, self.params(),
            None if names is None else list(names),
            metadata={"river_version": version("river"),
                      "categorical": None if schema is None else list(schema.categorical),
                      "features_given": self._features is not None})
        artifact.write_artifact(directory, manifest, {_FILE: pickle.dumps(self.estimator)})

    @classmethod
    def load(cls, directory: PathArg, *, trusted: bool = False) -> Self:
        """Read a River artifact; unpickles only with ``trusted=True``, after the hash check."""
        manifest = artifact.read_manifest(directory, FORMAT)
        artifact.require_trusted(directory, manifest, trusted)
        data = artifact.read_file(directory, manifest, _FILE)
        try:
            estimator = pickle.loads(data)  # trusted and hash-checked above
        except Exception as exc:
            raise ModelArtifactError(str(Path(directory) / _FILE),
                                     f"cannot be unpickled: {exc!r}") from exc
        given = manifest.features if manifest.metadata.get("features_given") else None
        try:
            model = cls(estimator, features=given,
                        learn_many=bool(manifest.params.get("learn_many", False)))
        except ValidationError as exc:
            raise ModelArtifactError(str(Path(directory) / _FILE), exc.reason) from exc
        categorical = manifest.metadata.get("categorical", [])
        if manifest.features is not None and categorical is not None:  # learnt: kinds known
            model._schema = FeatureSchema(
                tuple(n for n in manifest.features if n not in categorical), tuple(categorical))
        return model

    def _schema_for(self, batch: Features) -> FeatureSchema:
        """The columns of ``batch`` to give River, with their kinds: those learnt, else
        the ``features`` given (their kinds read from the batch), else all of them."""
        if self._schema is not None:
            return self._schema
        if self._features is None:
            return FeatureSchema.infer(batch)
        features.batch_length(batch)
        for name in self._features:
            if name not in batch:
                raise ValidationError(name, "missing feature column")
        return FeatureSchema.infer({name: batch[name] for name in self._features})

    def _score(self, x: dict[str, Any]) -> float:
        if not self._classifier:
            return float(self.estimator.predict_one(x) or 0.0)
        proba = self.estimator.predict_proba_one(x)
        return float(proba.get(True, 0.0)) if proba else 0.5

    def _rows(self, batch: Features, schema: FeatureSchema) -> Iterator[dict[str, Any]]:
        """The batch as River's dicts (floats and strings), checked like every model's."""
        n = features.batch_length(batch)
        numbers = features.numeric_matrix(batch, schema.numeric, n).T.tolist()
        strings = [c.tolist() for c in features.categorical_columns(batch, schema.categorical)]
        names = schema.names
        for values in zip(*numbers, *strings, strict=True):
            yield dict(zip(names, values, strict=True))

    def _learn_batch(self, batch: Features, labels: list[Any], weight: FloatArray | None) -> None:
        assert self._schema is not None
        rows = list(self._rows(batch, self._schema))
        table = pa.table({name: [r[name] for r in rows] for name in self._schema.names})
        target = pa.chunked_array([pa.array(labels)])
        if weight is None:
            self.estimator.learn_many(table, target)
        else:
            self.estimator.learn_many(table, target, w=pa.chunked_array([pa.array(weight)]))


def _jsonable(value: Any) -> Any:
    """River's nested ``(class, params)`` tuples as JSON: class names and plain values."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], type):
        return {"class": value[0].__name__, "params": _jsonable(value[1])}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)
