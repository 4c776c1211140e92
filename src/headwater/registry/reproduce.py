"""Reproduce a model version from its lineage, and say whether it comes out the same.

:func:`reproduce` replays the version's recorded training slice from the log
(:func:`~headwater.registry.slices.read_slice`) into the recorded parent, or, for a
version trained from scratch, into a fresh model with the version's hyper-parameters
(the clone of its own artifact, whose hyper-parameters are checked against the
recorded ones). It trains as trainers do (:func:`headwater.models.examples.train_on`:
one batch, ``learn`` from a parent, ``fit`` from scratch), saves the result and
compares:

- the examples: their number, content hash and event-time range against the record
  (a different log gives different examples);
- the hyper-parameters recorded against the model's;
- for a deterministic model (the adapter's class says ``deterministic = True``, as the
  built-in linear models do) the artifact's SHA-256 against the recorded one; for any
  other, the recorded metrics against the same metrics, on the slice's examples
  (:func:`training_metrics`), of the reproduced model and of the stored artifact,
  within ``tolerance``.

:func:`judge` is the comparison on plain values, without I/O:

>>> from headwater.registry import Artifact, Lineage, ModelVersion, TrainingSlice
>>> artifact = Artifact(sha256="ab" * 32, files=2, bytes=100)
>>> version = ModelVersion(model="churn", version=2, artifact=artifact, status_at=0,
...     lineage=Lineage(parent=1, training=TrainingSlice(examples=3, examples_sha256="cd" * 32)))
>>> found = Found(examples=3, examples_sha256="cd" * 32, event_time_start=None,
...               event_time_end=None, artifact_sha256="ab" * 32, params={}, metrics={},
...               stored_metrics={})
>>> judge(version, found, deterministic=True).verdict
'match'
>>> found = found._replace(examples_sha256="ef" * 32, artifact_sha256="00" * 32)
>>> result = judge(version, found, deterministic=True)
>>> result.verdict, [c.name for c in result.failed]
('mismatch', ['examples_sha256', 'artifact'])
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.log import Log
from headwater.models import load_model
from headwater.models.examples import Examples, train_on
from headwater.models.metrics import accuracy, log_loss, roc_auc
from headwater.models.protocol import Model
from headwater.registry.hashing import hash_directory
from headwater.registry.records import ModelVersion
from headwater.registry.registry import ModelRegistry
from headwater.registry.slices import read_slice

__all__ = [
    "METRICS",
    "Check",
    "Found",
    "Mode",
    "Reproduction",
    "Verdict",
    "flatten_params",
    "judge",
    "reproduce",
    "training_metrics",
]

Mode = Literal["auto", "artifact", "metrics"]
"""What decides: ``artifact`` (the SHA-256 must be the same), ``metrics`` (the recorded
metrics, within the tolerance) or ``auto`` (``artifact`` for deterministic models)."""
Verdict = Literal["match", "mismatch", "unverifiable"]
"""``unverifiable``: nothing decisive could be compared (metrics mode and no recorded
metric Headwater knows how to recompute)."""


def _mse(y: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    return float(np.mean((np.asarray(y, dtype=np.float64) - np.asarray(scores)) ** 2))


def _mae(y: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    return float(np.mean(np.abs(np.asarray(y, dtype=np.float64) - np.asarray(scores))))


#: The metrics :func:`training_metrics` computes, by the names a lineage records them under.
METRICS: Final[Mapping[str, Callable[[npt.ArrayLike, npt.ArrayLike], float]]] = {
    "auc": roc_auc, "roc_auc": roc_auc, "accuracy": accuracy, "logloss": log_loss,
    "log_loss": log_loss, "mse": _mse, "mae": _mae,
    "rmse": lambda y, s: math.sqrt(_mse(y, s)),
}


class Check(NamedTuple):
    """One comparison: what the record says, what the replay found, whether they agree,
    and whether it decides the verdict."""

    name: str
    recorded: str
    found: str
    ok: bool
    decisive: bool = True


class Found(NamedTuple):
    """What a replay produced, as plain values."""

    examples: int
    examples_sha256: str
    event_time_start: int | None
    event_time_end: int | None
    artifact_sha256: str
    params: dict[str, Any]
    metrics: dict[str, float]
    stored_metrics: dict[str, float]


class Reproduction(NamedTuple):
    """The outcome of reproducing one version."""

    model: str
    version: int
    parent: int | None
    mode: Literal["artifact", "metrics"]
    verdict: Verdict
    checks: tuple[Check, ...]

    @property
    def matches(self) -> bool:
        return self.verdict == "match"

    @property
    def failed(self) -> list[Check]:
        """The decisive checks that disagree."""
        return [c for c in self.checks if c.decisive and not c.ok]


def training_metrics(model: Model, examples: Examples,
                     names: tuple[str, ...] = ("auc", "logloss")) -> dict[str, float]:
    """The metrics ``names`` (keys of :data:`METRICS`) of ``model`` on ``examples``: what
    a trainer records, and what :func:`reproduce` recomputes for a model that is not
    deterministic."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValidationError("names", f"unknown metric {unknown[0]!r}; known: "
                                       f"{sorted(METRICS)}")
    if not examples.rows:
        return {}
    scores = model.predict(examples.features)
    return {name: METRICS[name](examples.y, scores) for name in names}


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested hyper-parameters as dotted names, lists of scalars kept (the lineage form).

    >>> flatten_params({"lr": 0.1, "optimizer": {"name": "sgd", "betas": [0.9, 0.99]}})
    {'lr': 0.1, 'optimizer.name': 'sgd', 'optimizer.betas': [0.9, 0.99]}
    """
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten_params(value, f"{name}.")
        elif isinstance(value, tuple):
            flat[name] = list(value)
        else:
            flat[name] = value
    return flat


def judge(version: ModelVersion, found: Found, *, deterministic: bool, mode: Mode = "auto",
          tolerance: float = 1e-6) -> Reproduction:
    """Compare a replay with the version's record (see the module docstring)."""
    decided: Literal["artifact", "metrics"] = (
        ("artifact" if deterministic else "metrics") if mode == "auto" else mode)
    lineage = version.lineage
    training = lineage.training
    checks: list[Check] = []
    if training is not None:
        checks.append(Check("examples", str(training.examples), str(found.examples),
                            training.examples == found.examples))
        if training.examples_sha256 is not None:
            checks.append(Check("examples_sha256", training.examples_sha256,
                                found.examples_sha256,
                                training.examples_sha256 == found.examples_sha256))
        start, end = training.event_time_start, training.event_time_end
        if start is not None or end is not None:
            inside = found.event_time_start is None or (
                (start is None or found.event_time_start >= start)
                and (end is None or (found.event_time_end or 0) <= end))
            checks.append(Check("event_time", f"[{start}, {end})",
                                f"[{found.event_time_start}, {found.event_time_end})", inside))
    params = flatten_params(found.params)
    for key, value in sorted(lineage.hyperparameters.items()):
        have = params.get(key, "<absent>")
        checks.append(Check(f"hyperparameter {key}", repr(value), repr(have), have == value))
    checks.append(Check("artifact", version.artifact.sha256, found.artifact_sha256,
                        version.artifact.sha256 == found.artifact_sha256,
                        decisive=decided == "artifact"))
    compared = 0
    for name, recorded in sorted(lineage.metrics.items()):
        for label, metrics in (("metric", found.metrics), ("stored metric", found.stored_metrics)):
            value = metrics.get(name)
            if value is None:
                checks.append(Check(f"{label} {name}", f"{recorded:.6g}", "not recomputed",
                                    True, decisive=False))
                continue
            compared += 1
            close = math.isclose(value, recorded, rel_tol=0.0, abs_tol=tolerance) or (
                math.isnan(value) and math.isnan(recorded))
            checks.append(Check(f"{label} {name}", f"{recorded:.6g}", f"{value:.6g}", close,
                                decisive=decided == "metrics"))
    verdict: Verdict
    if any(c.decisive and not c.ok for c in checks):
        verdict = "mismatch"
    elif decided == "metrics" and not compared:
        verdict = "unverifiable"
    else:
        verdict = "match"
    return Reproduction(version.model, version.version, lineage.parent, decided, verdict,
                        tuple(checks))


def reproduce(registry: ModelRegistry, log: Log, name: str, ref: int | str, *,
              mode: Mode = "auto", tolerance: float = 1e-6, label: str = "label",
              workdir: str | Path | None = None) -> Reproduction:
    """Replay version ``ref`` of ``name`` from its recorded slice and judge the result.

    Artifacts are checked out verified from the store (so loading them trusts their
    format). A version without a recorded slice is a
    :class:`~headwater.errors.ValidationError` naming ``lineage.training``; a slice the
    log no longer holds an :class:`~headwater.errors.OffsetOutOfRangeError`.
    """
    if mode not in ("auto", "artifact", "metrics"):
        raise ValidationError("mode", f"expected auto, artifact or metrics, got {mode!r}")
    if not (isinstance(tolerance, int | float) and tolerance >= 0):
        raise ValidationError("tolerance", f"expected a number >= 0, got {tolerance!r}")
    version = registry.get(name, ref)
    training = version.lineage.training
    if training is None:
        raise ValidationError("lineage.training", f"{name} v{version.version} recorded no "
                              "training slice: there is nothing to replay")
    data = read_slice(log, training, label=label)
    parent = version.lineage.parent
    stored = load_model(registry.checkout(name, version.version), trusted=True)
    if parent is None:
        model = stored.clone()
    else:
        model = load_model(registry.checkout(name, parent), trusted=True)
    train_on(model, data.examples, from_scratch=parent is None)
    names = tuple(n for n in version.lineage.metrics if n in METRICS)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        model.save(Path(tmp) / "model")
        artifact, _ = hash_directory(Path(tmp) / "model")
    found = Found(data.examples.rows, data.examples_sha256, data.event_time_start,
                  data.event_time_end, artifact.sha256, model.params(),
                  training_metrics(model, data.examples, names),
                  training_metrics(stored, data.examples, names))
    return judge(version, found, deterministic=bool(getattr(type(model), "deterministic", False)),
                 mode=mode, tolerance=tolerance)
