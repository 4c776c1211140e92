"""Any scikit-learn estimator as a Headwater model (``pip install 'headwater[sklearn]'``).

:class:`SklearnModel` wraps a binary classifier or a regressor reading numeric columns
(encode categories in the feature pipeline, or use the built-in linear model, which
hashes them). ``learn`` calls ``partial_fit`` where the estimator has it (incremental:
``SGDClassifier``, ``SGDRegressor``, ``MultinomialNB``, …) and otherwise ``fit`` on the
batch alone, which for such estimators makes ``learn`` the same as ``fit``. A
classifier scores with ``predict_proba`` (P(y = 1)), or with the logistic function of
``decision_function`` when it has no probabilities.

Input columns. An estimator fitted before it is wrapped reads the columns it was fitted
on: its ``feature_names_in_`` (fit it on a table with column names) or an explicit
``features=[...]`` in the order it was fitted on. A fitted estimator with neither is
refused (:class:`~headwater.errors.ValidationError` naming ``features``): the adapter
never answers a constant for a model whose inputs it does not know. An unfitted
estimator reads the columns of the first batch it learns (or ``features``), and answers
the neutral value until then, like every model that has learnt nothing.

Saving. With skops installed (part of the ``sklearn`` extra) the estimator is saved in
skops' format (``sklearn-skops``), which loads without running code and refuses types
outside skops' trusted list unless ``trusted=True``. Without skops it is pickled
(``sklearn-pickle``) and, as for River, loads only with ``trusted=True`` after the
manifest's sha256 check. A model store passes ``trusted=True`` only when its operator
has opted in (:meth:`headwater.registry.ModelRegistry.load`).

>>> import numpy as np
>>> from sklearn.linear_model import SGDClassifier
>>> model = SklearnModel(SGDClassifier(loss="log_loss", random_state=0))
>>> model.learn({"x": np.array([-1.0, 1.0] * 10)}, np.array([0, 1] * 10))
>>> model.predict_one({"x": 1.0}) > 0.5
True
>>> from sklearn.tree import DecisionTreeClassifier
>>> fitted = DecisionTreeClassifier().fit(np.array([[0.0], [1.0]]), np.array([0, 1]))
>>> SklearnModel(fitted, features=["x"]).predict_one({"x": 1.0})
1.0
>>> SklearnModel(fitted)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
headwater.errors.ValidationError: features: DecisionTreeClassifier was fitted on 1 unnamed ...
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import numpy as np
import numpy.typing as npt

from headwater.errors import (
    MissingExtraError,
    ModelArtifactError,
    ModelError,
    UntrustedArtifactError,
    ValidationError,
)
from headwater.models import artifact, features
from headwater.models.features import Features, FeatureSchema, FloatArray, column_names
from headwater.models.protocol import PathArg

try:
    import sklearn  # type: ignore[import-untyped]
    from sklearn.base import clone, is_classifier, is_regressor  # type: ignore[import-untyped]
    from sklearn.exceptions import NotFittedError  # type: ignore[import-untyped]
    from sklearn.utils.validation import check_is_fitted  # type: ignore[import-untyped]
except ImportError as exc:
    raise MissingExtraError("The scikit-learn model adapter", "sklearn", "scikit-learn") from exc

try:
    import skops.io as skops_io  # type: ignore[import-untyped]
except ImportError:  # saved with pickle instead: loading then needs trusted=True
    skops_io = None

__all__ = ["SklearnModel"]

SKOPS: Final = "sklearn-skops"
PICKLE: Final = "sklearn-pickle"
FORMAT_VERSION: Final = 1
_FILES: Final = {SKOPS: "estimator.skops", PICKLE: "estimator.pkl"}


class SklearnModel:
    """A scikit-learn binary classifier or regressor behind the
    :class:`~headwater.models.Model` protocol."""

    #: What :meth:`save` writes here: skops when it is installed, pickle otherwise.
    format: ClassVar[str] = PICKLE if skops_io is None else SKOPS

    def __init__(self, estimator: Any, *, features: Sequence[str] | None = None) -> None:
        if is_classifier(estimator):
            self._classifier = True
        elif is_regressor(estimator):
            self._classifier = False
        else:
            raise ValidationError("estimator", f"expected a scikit-learn classifier or "
                                               f"regressor, got {type(estimator).__name__}")
        self.estimator = estimator
        self._features = None if features is None else column_names(features)
        self._schema: FeatureSchema | None = _schema_of(estimator, self._features)

    @property
    def features(self) -> tuple[str, ...] | None:
        """The input columns, in order (``None`` until known: nothing learnt yet)."""
        return None if self._schema is None else self._schema.numeric

    @property
    def fitted(self) -> bool:
        """Whether the estimator has learnt anything (until then every answer is the
        neutral value)."""
        return self._schema is not None

    @property
    def continual(self) -> bool:
        """Whether the estimator learns incrementally (``partial_fit``): a continual
        trainer refuses one that refits from scratch on every batch."""
        return hasattr(self.estimator, "partial_fit")

    @property
    def not_continual_reason(self) -> str:
        """Why :attr:`continual` is false."""
        return (f"{type(self.estimator).__name__} has no partial_fit, so every batch would "
                "refit it from scratch; use an estimator with partial_fit (SGDClassifier, "
                "say) or train it stateless")

    def params(self) -> dict[str, Any]:
        """The estimator's ``get_params(deep=False)``, non-JSON values as their repr."""
        return {"estimator": type(self.estimator).__name__,
                "estimator_params": {k: _jsonable(v) for k, v in
                                     self.estimator.get_params(deep=False).items()}}

    def clone(self) -> Self:
        """The same hyper-parameters (and given ``features``), unfitted
        (``sklearn.base.clone``)."""
        return type(self)(clone(self.estimator), features=self._features)

    def predict(self, batch: Features) -> FloatArray:
        """One score per row (P(y = 1) or the prediction)."""
        if self._schema is None:
            return np.full(features.batch_length(batch), 0.5 if self._classifier else 0.0)
        return self._predict(features.numeric_matrix(batch, self._schema.numeric,
                                                     features.batch_length(batch)))

    def predict_one(self, x: Mapping[str, Any]) -> float:
        """The score of one row (a 1-row matrix through the estimator)."""
        if self._schema is None:
            return 0.5 if self._classifier else 0.0
        row = []
        for name in self._schema.numeric:
            if name not in x:
                raise ValidationError(name, "missing feature")
            row.append(features.check_number(name, x[name]))
        return float(self._predict(np.array([row]))[0])

    def learn(self, batch: Features, y: npt.ArrayLike,
              sample_weight: npt.ArrayLike | None = None) -> None:
        """``partial_fit`` on the batch where the estimator has it, ``fit`` otherwise."""
        if self._schema is None:
            schema = FeatureSchema.infer(batch)
            if schema.categorical:
                raise ValidationError(schema.categorical[0], "the scikit-learn adapter reads "
                                                             "numeric columns only")
            self._schema = schema
        n = features.batch_length(batch)
        matrix = features.numeric_matrix(batch, self._schema.numeric, n)
        target = features.labels(y, n, binary=self._classifier)
        kwargs: dict[str, Any] = {}
        weight = features.sample_weights(sample_weight, n)
        if weight is not None:
            kwargs["sample_weight"] = weight
        labels = target.astype(np.int64) if self._classifier else target
        try:
            with self._unnamed_columns_ok():
                if not hasattr(self.estimator, "partial_fit"):
                    self.estimator.fit(matrix, labels, **kwargs)
                elif self._classifier:
                    self.estimator.partial_fit(matrix, labels, classes=np.array([0, 1]),
                                               **kwargs)
                else:
                    self.estimator.partial_fit(matrix, labels, **kwargs)
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{type(self.estimator).__name__} failed to learn: {exc}") from exc

    def fit(self, batch: Features, y: npt.ArrayLike,
            sample_weight: npt.ArrayLike | None = None) -> None:
        """Start again from an unfitted clone, then learn the batch."""
        self.estimator = clone(self.estimator)
        self._schema = None if self._features is None else FeatureSchema(self._features)
        self.learn(batch, y, sample_weight)

    def save(self, directory: PathArg) -> None:
        """Write the manifest and the estimator (skops, or pickle without skops)."""
        fmt = self.format
        data = pickle.dumps(self.estimator) if skops_io is None else skops_io.dumps(
            self.estimator)
        manifest = artifact.Manifest(
            fmt, FORMAT_VERSION, type(self).__name__, self.params(),
            None if self._schema is None else list(self._schema.numeric),
            metadata={"sklearn_version": sklearn.__version__,
                      "features_given": self._features is not None})
        artifact.write_artifact(directory, manifest, {_FILES[fmt]: data})

    @classmethod
    def load(cls, directory: PathArg, *, trusted: bool = False) -> Self:
        """Read a scikit-learn artifact of either format (see the module's notes)."""
        manifest = artifact.read_manifest(directory)
        if manifest.format not in _FILES:
            raise ModelArtifactError(str(Path(directory) / artifact.MANIFEST),
                                     f"format is {manifest.format!r}, expected one of "
                                     f"{sorted(_FILES)}")
        path = str(Path(directory) / _FILES[manifest.format])
        if manifest.format == PICKLE:
            artifact.require_trusted(directory, manifest, trusted)
        data = artifact.read_file(directory, manifest, _FILES[manifest.format])
        estimator = _load_skops(data, path, trusted) if manifest.format == SKOPS else (
            _unpickle(data, path))
        try:  # the recorded columns, checked against what the estimator was fitted on
            model = cls(estimator, features=manifest.features)
        except ValidationError as exc:
            raise ModelArtifactError(path, exc.reason) from exc
        if not manifest.metadata.get("features_given", False):
            model._features = None  # learnt, not given: a clone learns its own
        return model

    @contextmanager
    def _unnamed_columns_ok(self) -> Iterator[None]:
        """Silence scikit-learn's warning that a matrix has no column names when the
        estimator was fitted with some: the adapter has put its columns in that order."""
        if getattr(self.estimator, "feature_names_in_", None) is None:
            yield
            return
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X does not have valid feature names",
                                    category=UserWarning)
            yield

    def _predict(self, matrix: FloatArray) -> FloatArray:
        with self._unnamed_columns_ok():
            return self._scores(matrix)

    def _scores(self, matrix: FloatArray) -> FloatArray:
        estimator = self.estimator
        if not self._classifier:
            return np.asarray(estimator.predict(matrix), dtype=np.float64)
        if hasattr(estimator, "predict_proba"):
            try:
                proba = estimator.predict_proba(matrix)
            except AttributeError:  # e.g. SGDClassifier(loss="hinge")
                pass
            else:
                column = list(estimator.classes_).index(1) if 1 in estimator.classes_ else None
                return (np.zeros(len(matrix)) if column is None
                        else np.asarray(proba[:, column], dtype=np.float64))
        margin = np.asarray(estimator.decision_function(matrix), dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-np.clip(margin, -700.0, 700.0)))


def _schema_of(estimator: Any, given: tuple[str, ...] | None) -> FeatureSchema | None:
    """The columns ``estimator`` reads: ``given``, else those it was fitted on, else
    ``None`` for an unfitted estimator (a fitted one with unnamed columns is refused)."""
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        fitted = False
    else:
        fitted = True
    named = getattr(estimator, "feature_names_in_", None) if fitted else None
    kind = type(estimator).__name__
    if given is not None:
        if named is not None and [str(n) for n in named] != list(given):
            raise ValidationError("features", f"{list(given)} are not the columns {kind} was "
                                              f"fitted on: {[str(n) for n in named]}")
        width = getattr(estimator, "n_features_in_", None) if fitted else None
        if width is not None and width != len(given):
            raise ValidationError("features", f"{len(given)} names for the {width} columns "
                                              f"{kind} was fitted on")
        return FeatureSchema(given)
    if not fitted:
        return None
    if named is not None:
        return FeatureSchema(tuple(str(n) for n in named))
    width = getattr(estimator, "n_features_in_", "its")
    raise ValidationError("features", f"{kind} was fitted on {width} unnamed column(s): pass "
                                      "features=[...] naming them in the order it was fitted "
                                      "on, or fit it on a table with column names")


def _load_skops(data: bytes, path: str, trusted: bool) -> Any:
    if skops_io is None:
        raise MissingExtraError("Loading a skops model", "sklearn", "skops")
    untrusted = skops_io.get_untrusted_types(data=data)
    if untrusted and not trusted:
        risk = (f"it holds types outside skops' trusted list ({', '.join(untrusted)}), which "
                "can run code or crash the process when loaded")
        raise UntrustedArtifactError(path, f"{risk}: load it with trusted=True only if you "
                                           "trust whoever wrote it", risk=risk)
    try:
        return skops_io.loads(data, trusted=untrusted or None)
    except Exception as exc:
        raise ModelArtifactError(path, f"cannot be read by skops: {exc!r}") from exc


def _unpickle(data: bytes, path: str) -> Any:
    try:
        return pickle.loads(data)  # trusted and hash-checked by the caller
    except Exception as exc:
        raise ModelArtifactError(path, f"cannot be unpickled: {exc!r}") from exc


def _jsonable(value: Any) -> Any:
    """A hyper-parameter as lineage keeps it: a scalar, a list of scalars, else its repr
    (a pipeline's steps, say).

    >>> _jsonable((1, "a")), _jsonable([("scale", None)])
    ([1, 'a'], "[('scale', None)]")
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple) and all(
            v is None or isinstance(v, bool | int | float | str) for v in value):
        return list(value)
    return repr(value)
