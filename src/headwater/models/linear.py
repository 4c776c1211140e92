"""The built-in online linear models: logistic and linear regression, fast and exact.

Both learn with FTRL-Proximal (:mod:`headwater.models.ftrl`): per-coordinate learning
rates, optional L1 / L2, and an optional forgetting of old gradients (``decay``) for
drifting streams. Numeric columns are standardised online with the statistics of the
rows before each row (:mod:`headwater.models.standardizer`, ``standardize=True``);
categorical (string) columns are hashed into ``2**hash_bits`` weights
(:mod:`headwater.models.hashing`).

``learn`` has per-row semantics: each row is predicted and learnt after every row
before it, so learning a batch equals learning its rows one by one (to rounding), and
``predict_learn`` returns those test-then-train predictions for free. The columns a
model reads are fixed by the first batch it learns; later batches may hold more
columns (ignored), not fewer.

Hyper-parameters: ``alpha`` and ``beta`` set the per-coordinate rate
``1 / ((beta + sqrt(n)) / alpha + l2)``; ``l1`` and ``l2`` regularise (L1 gives exact
zeros); ``decay`` in (0, 1] multiplies the squared-gradient sums ``n`` once per row
(1: plain FTRL, whose rates only shrink; 0.99 keeps about 100 rows of memory and
adapts to drift); ``block`` is how many rows share one set of rates (1: exact
FTRL-Proximal; the default 128 is within 0.05 point of it on Elec2 and much faster);
``standardize`` turns the online scaling of numeric columns on; ``hash_bits`` sizes
the hashed weights. On Elec2, ``alpha=3.0, l2=1.0, decay=0.99`` reaches a prequential
accuracy of 0.920 and ROC AUC of 0.967, the best of the grid ``benchmarks/learning.py``
gives every library (River's best: 0.912 and 0.960); the defaults reach 0.852 and 0.922.

>>> import numpy as np
>>> batch = {"x": np.array([0.0, 1.0, 2.0, 3.0] * 50), "day": np.array(["mon", "tue"] * 100)}
>>> y = (batch["x"] > 1.5).astype(int)
>>> model = LogisticRegression(alpha=2.0)
>>> model.learn(batch, y)
>>> np.round(model.predict(batch)[:4], 2).tolist()
[0.02, 0.04, 0.96, 0.98]
>>> round(model.predict_one({"x": 3.0, "day": "mon"}), 2)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import numpy as np
import numpy.typing as npt

from headwater.errors import ModelArtifactError, ValidationError
from headwater.models import artifact, features
from headwater.models.features import Features, FeatureSchema, FloatArray
from headwater.models.ftrl import FTRL
from headwater.models.hashing import hash_column, hash_value
from headwater.models.protocol import PathArg
from headwater.models.standardizer import Standardizer
from headwater.models.updates import pack_arrays, unpack_arrays

__all__ = ["LinearRegression", "LogisticRegression", "load"]

FORMAT: Final = "headwater-linear"
FORMAT_VERSION: Final = 1
_STATE: Final = "state.npz"
_FLOATS: Final = ("z", "n", "w", "rate", "gsum", "g2sum")


class _Linear:
    """What the two linear models share; they differ by the link (logistic or identity)."""

    format: ClassVar[str] = FORMAT
    #: The same data in the same order gives the same artifact, byte for byte.
    deterministic: ClassVar[bool] = True
    _logistic: ClassVar[bool]

    def __init__(self, *, alpha: float = 1.0, beta: float = 1.0, l1: float = 0.0,
                 l2: float = 0.0, decay: float = 1.0, block: int = 128,
                 standardize: bool = True, hash_bits: int = 18) -> None:
        for name, value, low in [("alpha", alpha, 0.0), ("beta", beta, 0.0), ("l1", l1, 0.0),
                                 ("l2", l2, 0.0)]:
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= low):
                raise ValidationError(name, f"expected a finite number >= {low}, got {value!r}")
        if alpha <= 0:
            raise ValidationError("alpha", f"expected a number > 0, got {alpha!r}")
        if not (isinstance(decay, int | float) and 0.0 < decay <= 1.0):
            raise ValidationError("decay", f"expected a number in (0, 1], got {decay!r}")
        for name, number, top in [("block", block, 1 << 30), ("hash_bits", hash_bits, 30)]:
            if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= top:
                raise ValidationError(name, f"expected an int in [1, {top}], got {number!r}")
        self._params: dict[str, Any] = {
            "alpha": float(alpha), "beta": float(beta), "l1": float(l1), "l2": float(l2),
            "decay": float(decay), "block": block, "standardize": bool(standardize),
            "hash_bits": hash_bits,
        }
        self._reset()

    def _reset(self) -> None:
        self._schema: FeatureSchema | None = None
        self._scaler: Standardizer | None = None
        self._ftrl: FTRL | None = None
        self._one: tuple[float, list[tuple[str, float]], list[str]] | None = None

    def params(self) -> dict[str, Any]:
        """The hyper-parameters."""
        return dict(self._params)

    def clone(self) -> Self:
        """The same hyper-parameters, nothing learnt."""
        return type(self)(**self._params)

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        """The columns read, numeric then categorical (``None`` before learning)."""
        return None if self._schema is None else self._schema.names

    def _build(self, schema: FeatureSchema) -> None:
        size = 1 + len(schema.numeric)
        space = size + (1 << self._params["hash_bits"]) * bool(schema.categorical)
        self._schema = schema
        self._scaler = Standardizer(len(schema.numeric))
        self._ftrl = FTRL(space, size, alpha=self._params["alpha"], beta=self._params["beta"],
                          l1=self._params["l1"], l2=self._params["l2"],
                          decay=self._params["decay"], block=self._params["block"])

    def _design(self, batch: Features, learning: bool) -> tuple[FloatArray, npt.NDArray[np.int64] |
                                                            None]:
        """The dense rows (bias, scaled numbers) and hashed coordinates of a batch."""
        assert self._schema is not None
        assert self._scaler is not None
        n = features.batch_length(batch)
        numbers = features.numeric_matrix(batch, self._schema.numeric, n)
        if self._params["standardize"]:
            numbers = (self._scaler.learn_transform(numbers) if learning
                       else self._scaler.transform(numbers))
        dense = np.empty((n, 1 + numbers.shape[1]))
        dense[:, 0] = 1.0
        dense[:, 1:] = numbers
        if not self._schema.categorical:
            return dense, None
        bits, offset = self._params["hash_bits"], dense.shape[1]
        hashed = np.column_stack([
            offset + hash_column(name, column, bits) for name, column in
            zip(self._schema.categorical,
                features.categorical_columns(batch, self._schema.categorical), strict=True)])
        return dense, hashed

    def predict(self, batch: Features) -> FloatArray:
        """One score per row (P(y = 1) or the prediction)."""
        if self._ftrl is None:
            return np.full(features.batch_length(batch), 0.5 if self._logistic else 0.0)
        dense, hashed = self._design(batch, learning=False)
        w = self._ftrl.w
        scores = dense @ w[: dense.shape[1]]
        if hashed is not None:
            scores += w[hashed].sum(axis=1)
        return _sigmoid(scores) if self._logistic else scores

    def learn(self, batch: Features, y: npt.ArrayLike,
              sample_weight: npt.ArrayLike | None = None) -> None:
        """Learn a batch, row after row."""
        self._learn(batch, y, sample_weight, keep=False)

    def predict_learn(self, batch: Features, y: npt.ArrayLike,
                      sample_weight: npt.ArrayLike | None = None) -> FloatArray:
        """Learn a batch and return each row's score from just before it was learnt.

        The same as calling ``predict`` then ``learn`` on each row in turn
        (test-then-train, prequential evaluation), at the cost of ``learn`` alone.
        """
        scores = self._learn(batch, y, sample_weight, keep=True)
        assert scores is not None
        return scores

    def _learn(self, batch: Features, y: npt.ArrayLike, sample_weight: npt.ArrayLike | None,
               *, keep: bool) -> FloatArray | None:
        if self._schema is None:
            self._build(FeatureSchema.infer(batch))
        n = features.batch_length(batch)
        target = features.labels(y, n, binary=self._logistic)
        weight = features.sample_weights(sample_weight, n)
        dense, hashed = self._design(batch, learning=True)
        assert self._ftrl is not None
        self._one = None
        if keep:
            return self._ftrl.predict_learn(dense, hashed, target, weight,
                                            logistic=self._logistic)
        self._ftrl.learn(dense, hashed, target, weight, logistic=self._logistic)
        return None

    def fit(self, batch: Features, y: npt.ArrayLike,
            sample_weight: npt.ArrayLike | None = None) -> None:
        """Forget everything, then learn the batch."""
        self._reset()
        self.learn(batch, y, sample_weight)

    def predict_one(self, x: Mapping[str, Any]) -> float:
        """The score of one row ``{column: value}``: plain float work, no NumPy."""
        if self._ftrl is None:
            return 0.5 if self._logistic else 0.0
        if self._one is None:
            self._one = self._compile()
        score, numeric, categorical = self._one
        try:
            for name, coef in numeric:
                score += coef * x[name]
            if categorical:
                w, bits, offset = self._ftrl.w, self._params["hash_bits"], len(numeric) + 1
                for name in categorical:
                    score += float(w[offset + hash_value(name, x[name], bits)])
        except (KeyError, TypeError):
            score = math.nan
        if score - score != 0.0:  # NaN or infinite: find the culprit
            _check_one(x, numeric, categorical)
        if not self._logistic:
            return float(score)
        if score >= 0.0:
            return 1.0 / (1.0 + math.exp(-score))
        q = math.exp(score)
        return q / (1.0 + q)

    def _compile(self) -> tuple[float, list[tuple[str, float]], list[str]]:
        """The serving form: ``score = intercept + sum(coef * x)`` over the numeric columns."""
        assert self._schema is not None
        assert self._scaler is not None
        assert self._ftrl is not None
        d = len(self._schema.numeric)
        weights = self._ftrl.w[1: 1 + d]
        mean, inv = self._scaler.scale() if self._params["standardize"] else (
            np.zeros(d), np.ones(d))
        coef = weights * inv
        intercept = float(self._ftrl.w[0] - coef @ mean)
        return (intercept, list(zip(self._schema.numeric, coef.tolist(), strict=True)),
                list(self._schema.categorical))

    def save(self, directory: PathArg) -> None:
        """Write ``headwater-model.json`` and ``state.npz`` (NumPy arrays, no pickle)."""
        arrays: dict[str, np.ndarray] = {}
        if self._ftrl is not None and self._scaler is not None:
            arrays = {**self._ftrl.state(), **{f"scaler_{k}": v for k, v in
                                               self._scaler.state().items()}}
        schema = self._schema
        manifest = artifact.Manifest(
            FORMAT, FORMAT_VERSION, type(self).__name__, self.params(),
            None if schema is None else list(schema.names),
            metadata={} if schema is None else {"categorical": list(schema.categorical)})
        artifact.write_artifact(directory, manifest, {_STATE: artifact.save_arrays(arrays)})

    # -- updates (headwater.models.updates): deltas of the learnt state ----------------

    def delta_mark(self) -> object:
        """A copy of the learnt state, which later deltas are relative to."""
        if self._ftrl is None or self._scaler is None or self._schema is None:
            return None
        return self._schema, self._ftrl.state()

    def delta_since(self, mark: object) -> bytes | None:
        """The coordinates whose state changed since ``mark``, with their values now;
        ``None`` when the marked model had learnt nothing or read other columns."""
        if mark is None or self._ftrl is None or self._scaler is None:
            return None
        if not isinstance(mark, tuple) or mark[0] != self._schema:
            return None
        before: dict[str, np.ndarray] = mark[1]
        now = self._ftrl.state()
        changed = np.zeros(len(now["z"]), dtype=bool)
        for name in (*_FLOATS, "last"):
            changed |= now[name] != before[name]
        idx = np.flatnonzero(changed)
        arrays = {"idx": idx, **{name: now[name][idx] for name in (*_FLOATS, "last")},
                  "seen": now["seen"], "pending": now["pending"],
                  **{f"scaler_{k}": v for k, v in self._scaler.state().items()}}
        return pack_arrays(arrays)

    def with_delta(self, payload: bytes) -> Self:
        """A new model: this one with a delta of :meth:`delta_since` applied."""
        if self._ftrl is None or self._schema is None:
            raise ModelArtifactError("update", "a delta cannot apply to a model that has "
                                               "learnt nothing")
        arrays = unpack_arrays(payload)
        state = self._ftrl.state()
        idx = arrays.get("idx")
        size = len(state["z"])
        if idx is None or idx.ndim != 1 or (len(idx) and not 0 <= idx.min() <= idx.max() < size):
            raise ModelArtifactError("update", "a delta without coordinates of this model")
        try:
            for name in (*_FLOATS, "last"):
                state[name][idx] = arrays[name]
            state["seen"] = arrays["seen"]
            state["pending"] = arrays["pending"]
            scaler = Standardizer.restore({k: arrays[f"scaler_{k}"].copy()
                                           for k in ("count", "mean", "m2")})
        except (KeyError, ValueError) as exc:
            raise ModelArtifactError("update", f"a delta that does not fit: {exc}") from exc
        model = self.clone()
        model._build(self._schema)
        assert model._ftrl is not None
        model._ftrl.restore(state)
        model._scaler = scaler
        return model

    @classmethod
    def load(cls, directory: PathArg, *, trusted: bool = False) -> Self:
        """Read a model :meth:`save` wrote (``trusted`` is not needed: no code runs)."""
        model = load(directory)
        if not isinstance(model, cls):
            raise ModelArtifactError(str(Path(directory) / artifact.MANIFEST),
                                     f"holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def _restore(self, manifest: artifact.Manifest, directory: PathArg) -> None:
        path = Path(directory) / _STATE
        data = artifact.read_file(directory, manifest, _STATE)
        if manifest.features is None:
            return
        categorical = manifest.metadata.get("categorical", [])
        if not isinstance(categorical, list) or not set(categorical) <= set(manifest.features):
            raise ModelArtifactError(str(path.with_name(artifact.MANIFEST)),
                                     "metadata.categorical must list feature names")
        numeric = [name for name in manifest.features if name not in categorical]
        self._build(FeatureSchema(tuple(numeric), tuple(categorical)))
        assert self._ftrl is not None
        expected = dict.fromkeys(_FLOATS, ("f", 1))
        expected |= {"last": ("i", 1), "seen": ("i", 0), "pending": ("i", 1),
                     "scaler_count": ("i", 0), "scaler_mean": ("f", 1), "scaler_m2": ("f", 1)}
        arrays = artifact.load_arrays(data, path, expected)
        size, d = len(self._ftrl.w), len(numeric)
        for name in (*_FLOATS, "last"):
            if arrays[name].shape != (size,):
                raise ModelArtifactError(str(path), f"array {name!r} has shape "
                                                    f"{arrays[name].shape}, expected ({size},)")
        for name in ("scaler_mean", "scaler_m2"):
            if arrays[name].shape != (d,):
                raise ModelArtifactError(str(path), f"array {name!r} has shape "
                                                    f"{arrays[name].shape}, expected ({d},)")
        self._ftrl.restore(arrays)
        self._scaler = Standardizer.restore({k: arrays[f"scaler_{k}"]
                                             for k in ("count", "mean", "m2")})


class LogisticRegression(_Linear):
    """Online logistic regression (log loss, FTRL-Proximal); predicts P(y = 1)."""

    _logistic = True


class LinearRegression(_Linear):
    """Online least-squares linear regression (FTRL-Proximal)."""

    _logistic = False


_CLASSES: Final[dict[str, type[_Linear]]] = {
    "LogisticRegression": LogisticRegression, "LinearRegression": LinearRegression}


def load(directory: PathArg, *, trusted: bool = False) -> LogisticRegression | LinearRegression:
    """Read a linear model of either kind (the ``headwater-linear`` format)."""
    manifest = artifact.read_manifest(directory, FORMAT)
    where = str(Path(directory) / artifact.MANIFEST)
    if manifest.format_version != FORMAT_VERSION:
        raise ModelArtifactError(where, f"format version {manifest.format_version} is not "
                                        f"supported (expected {FORMAT_VERSION})")
    kind = _CLASSES.get(manifest.adapter)
    if kind is None:
        raise ModelArtifactError(where, f"unknown adapter {manifest.adapter!r} for format "
                                        f"{FORMAT!r}; known: {sorted(_CLASSES)}")
    try:
        model = kind(**manifest.params)
    except (TypeError, ValidationError) as exc:
        raise ModelArtifactError(where, f"bad params: {exc}") from exc
    model._restore(manifest, directory)
    assert isinstance(model, LogisticRegression | LinearRegression)
    return model


def _sigmoid(scores: FloatArray) -> FloatArray:
    out = np.empty_like(scores)
    positive = scores >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-scores[positive]))
    q = np.exp(scores[~positive])
    out[~positive] = q / (1.0 + q)
    return out


def _check_one(x: Mapping[str, Any], numeric: list[tuple[str, float]],
               categorical: list[str]) -> None:
    """Name the field that made a single-row score unusable."""
    for name in [n for n, _ in numeric] + categorical:
        if name not in x:
            raise ValidationError(name, "missing feature")
    for name, _ in numeric:
        features.check_number(name, x[name])
    raise ValidationError("x", "the score is not finite (weights overflowed?)")
