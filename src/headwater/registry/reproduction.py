"""Reproduce a model version from its lineage, and say whether it comes out the same.

:func:`reproduce` replays the version's recorded training slice the way the trainers of
:mod:`headwater.learning` learnt it: the examples are read with
:func:`headwater.learning.read_examples` (the rows of the recorded routing arm — the
served ones when none is recorded — and of the recorded model whose examples were read,
of each recorded offset range, features decoded by
:func:`headwater.labels.decode_features`, the content hash by
:func:`headwater.learning.examples_hash`), and learnt test-then-train by :func:`replay` in
the recorded steps of ``batch_rows`` (default 4096) by the recorded parent, or, for a version
trained from scratch, by a fresh model with the version's hyper-parameters (the clone of
its own artifact, whose hyper-parameters are checked against the recorded ones). The
result is saved and compared with the record:

- the examples: their number, content hash and event-time range (a different log gives
  different examples);
- the hyper-parameters recorded against the model's;
- for a deterministic model (the adapter's class says ``deterministic = True``, as the
  built-in linear models do) the artifact's SHA-256; for any other the recorded metrics
  that can be recomputed from the replay — ``rows`` and the gate's
  ``prequential_<metric>`` over the last ``gate_examples`` examples — within
  ``tolerance``, and the scores of the stored artifact against those of the replayed
  model on the slice (a stored artifact that is not the replayed one differs there).

:func:`judge` is the comparison on plain values, without I/O:

>>> from headwater.registry import Artifact, Lineage, ModelVersion, TrainingSlice
>>> artifact = Artifact(sha256="ab" * 32, files=2, bytes=100)
>>> version = ModelVersion(model="churn", version=2, artifact=artifact, status_at=0,
...     lineage=Lineage(parent=1, training=TrainingSlice(examples=3, examples_sha256="cd" * 32)))
>>> found = Found(examples=3, examples_sha256="cd" * 32, event_time_start=None,
...               event_time_end=None, artifact_sha256="ab" * 32, params={}, metrics={},
...               score_gap=0.0)
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.log import Log
from headwater.models import Model
from headwater.registry.hashing import hash_directory
from headwater.registry.records import ModelVersion
from headwater.registry.registry import ModelRegistry

__all__ = [
    "BATCH_ROWS",
    "Check",
    "Found",
    "Mode",
    "Reproduction",
    "Verdict",
    "flatten_params",
    "judge",
    "replay",
    "reproduce",
]

Mode = Literal["auto", "artifact", "metrics"]
"""What decides: ``artifact`` (the SHA-256 must be the same), ``metrics`` (the recorded
metrics, within the tolerance) or ``auto`` (``artifact`` for deterministic models)."""
Verdict = Literal["match", "mismatch", "unverifiable"]
"""``unverifiable``: nothing decisive could be compared (metrics mode and no recorded
metric that the replay can recompute)."""

#: The trainers' default batch: a slice is learnt ``BATCH_ROWS`` examples at a time.
BATCH_ROWS: Final = 4096
_PREQUENTIAL: Final = "prequential_"


class Check(NamedTuple):
    """One comparison: what the record says, what the replay found, whether they agree,
    and whether it decides the verdict."""

    name: str
    recorded: str
    found: str
    ok: bool
    decisive: bool = True


class Found(NamedTuple):
    """What a replay produced, as plain values. ``metrics`` are the recorded metrics the
    replay could recompute; ``score_gap`` the largest difference between the scores of
    the stored artifact and of the replayed model on the slice."""

    examples: int
    examples_sha256: str
    event_time_start: int | None
    event_time_end: int | None
    artifact_sha256: str
    params: dict[str, Any]
    metrics: dict[str, float]
    score_gap: float


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


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested hyper-parameters as dotted names, tuples as lists (the lineage form).

    >>> flatten_params({"lr": 0.1, "optimizer": {"name": "sgd", "betas": (0.9, 0.99)}})
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
            checks.append(Check("event_time", f"[{start}, {end})",
                                f"[{found.event_time_start}, {found.event_time_end})",
                                (start, end) == (found.event_time_start, found.event_time_end)))
    params = flatten_params(found.params)
    for key, value in sorted(lineage.hyperparameters.items()):
        have = params.get(key, "<absent>")
        checks.append(Check(f"hyperparameter {key}", repr(value), repr(have), have == value))
    checks.append(Check("artifact", version.artifact.sha256, found.artifact_sha256,
                        version.artifact.sha256 == found.artifact_sha256,
                        decisive=decided == "artifact"))
    compared = 0
    for name, recorded in sorted(lineage.metrics.items()):
        value = found.metrics.get(name)
        if value is None:
            checks.append(Check(f"metric {name}", f"{recorded:.6g}", "not recomputed", True,
                                decisive=False))
            continue
        compared += 1
        close = math.isclose(value, recorded, rel_tol=0.0, abs_tol=tolerance) or (
            math.isnan(value) and math.isnan(recorded))
        checks.append(Check(f"metric {name}", f"{recorded:.6g}", f"{value:.6g}", close,
                            decisive=decided == "metrics"))
    checks.append(Check("stored scores", f"within {tolerance:g}", f"{found.score_gap:.3g}",
                        found.score_gap <= tolerance, decisive=decided == "metrics"))
    verdict: Verdict
    if any(c.decisive and not c.ok for c in checks):
        verdict = "mismatch"
    elif decided == "metrics" and not compared:
        verdict = "unverifiable"
    else:
        verdict = "match"
    return Reproduction(version.model, version.version, lineage.parent, decided, verdict,
                        tuple(checks))


def replay(model: Model, features: Mapping[str, npt.NDArray[Any]], y: npt.NDArray[Any], *,
           batch_rows: int = BATCH_ROWS) -> npt.NDArray[np.float64]:
    """Learn the examples test-then-train, ``batch_rows`` at a time, as the trainers do;
    return each example's score from before it was learnt."""
    n = len(y)
    scores = np.empty(n)
    predict_learn = getattr(model, "predict_learn", None)
    for lo in range(0, n, batch_rows):
        part = {k: v[lo:lo + batch_rows] for k, v in features.items()}
        if predict_learn is not None:
            scores[lo:lo + batch_rows] = predict_learn(part, y[lo:lo + batch_rows])
        else:
            scores[lo:lo + batch_rows] = model.predict(part)
            model.learn(part, y[lo:lo + batch_rows])
    return scores


def reproduce(registry: ModelRegistry, log: Log, name: str, ref: int | str, *,
              mode: Mode = "auto", tolerance: float = 1e-6, batch_rows: int | None = None,
              workdir: str | Path | None = None) -> Reproduction:
    """Replay version ``ref`` of ``name`` from its recorded slice and judge the result.

    Artifacts are checked out verified from the store (so loading them trusts their
    format). A version without a recorded slice is a
    :class:`~headwater.errors.ValidationError` naming ``lineage.training``; a slice the
    log no longer holds whole is a mismatch of the examples.
    """
    from headwater.learning.examples import examples_hash, read_examples

    if mode not in ("auto", "artifact", "metrics"):
        raise ValidationError("mode", f"expected auto, artifact or metrics, got {mode!r}")
    if not (isinstance(tolerance, int | float) and tolerance >= 0):
        raise ValidationError("tolerance", f"expected a number >= 0, got {tolerance!r}")
    version = registry.get(name, ref)
    creator = version.lineage.created_by
    if batch_rows is None:
        batch_rows = creator.batch_rows or BATCH_ROWS
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValidationError("batch_rows", f"expected an int >= 1, got {batch_rows!r}")
    training = version.lineage.training
    if training is None:
        raise ValidationError("lineage.training", f"{name} v{version.version} recorded no "
                              "training slice: there is nothing to replay")
    parts = []
    for topic in training.topics:
        partitions = log.topic(topic.topic).partitions
        start = dict.fromkeys(range(partitions), 0)  # unrecorded partitions: nothing
        stop = dict.fromkeys(range(partitions), 0)
        for r in topic.ranges:
            start[r.partition], stop[r.partition] = r.start, r.end
        parts.append(read_examples(log, start, stop, topic=topic.topic, arm=creator.arm,
                                   model=creator.examples_of))
    features = _concat([p.features for p in parts])
    y = np.concatenate([p.y for p in parts]) if parts else np.zeros(0)
    times = np.concatenate([p.label_time for p in parts]) if parts else np.zeros(0, np.int64)
    digest = (parts[0].slice.examples_sha256 if len(parts) == 1 else
              examples_hash([], [], [], []) if not parts else _joint_hash(parts))
    stored = registry.load(name, version.version).model  # the store's trust rule
    parent = version.lineage.parent
    model = stored.clone() if parent is None else registry.load(name, parent).model
    prequential = replay(model, features, y, batch_rows=batch_rows)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        model.save(Path(tmp) / "model")
        artifact, _ = hash_directory(Path(tmp) / "model")
    gap = 0.0
    if len(y):
        gap = float(np.max(np.abs(stored.predict(features) - model.predict(features))))
    found = Found(len(y), digest or "", int(times.min()) if len(times) else None,
                  int(times.max()) + 1 if len(times) else None, artifact.sha256,
                  model.params(), _metrics(version.lineage.metrics, y, prequential), gap)
    return judge(version, found, deterministic=bool(getattr(type(model), "deterministic", False)),
                 mode=mode, tolerance=tolerance)


def _metrics(recorded: Mapping[str, float], y: npt.NDArray[Any],
             scores: npt.NDArray[np.float64]) -> dict[str, float]:
    """The recorded metrics the replay can recompute, as the trainers computed them."""
    from headwater.evaluation.metrics import higher_is_better
    from headwater.learning.triggers import metric_value

    out: dict[str, float] = {}
    if "rows" in recorded:
        out["rows"] = float(len(y))
    window = int(recorded.get("gate_examples", len(y)))
    for key in recorded:
        if not key.startswith(_PREQUENTIAL) or window > len(y) or not window:
            continue
        metric = key[len(_PREQUENTIAL):]
        try:
            sign = 1.0 if higher_is_better(metric) else -1.0
        except ValidationError:
            continue
        out[key] = sign * metric_value(metric, y[-window:], scores[-window:])
    return out


def _concat(columns: list[dict[str, npt.NDArray[Any]]]) -> dict[str, npt.NDArray[Any]]:
    if len(columns) == 1:
        return columns[0]
    names = {n: None for c in columns for n in c}
    return {n: np.concatenate([c[n] for c in columns]) for n in names}


def _joint_hash(parts: list[Any]) -> str:
    """Several topics: the hash of their hashes, in the slice's order."""
    import hashlib

    digest = hashlib.sha256()
    for part in parts:
        digest.update((part.slice.examples_sha256 or "").encode())
    return digest.hexdigest()
