"""Reproduce a model version from its lineage: replay its slice, then judge the result.

:func:`reproduce` is the shell around :func:`headwater.registry.judge`: it reads the
version's recorded training slice with :func:`~headwater.learning.read_examples` (the
rows of the recorded routing arm — the served ones when none is recorded — and of the
recorded model whose examples were read, of each recorded offset range; the content hash
by :func:`~headwater.learning.examples_hash`), learns it with the trainers' own loop,
:func:`~headwater.learning.score_then_learn`, in the recorded steps of ``batch_rows``
(default :data:`~headwater.learning.score_then_learn.BATCH_ROWS`), by the recorded parent
or, for a version trained from scratch, by a fresh model with the version's
hyper-parameters (the clone of its own artifact, whose hyper-parameters are then checked
against the recorded ones). It saves the result, hashes it, recomputes the recorded
metrics it can, and hands all that to the judge as plain values
(:class:`~headwater.registry.reproduction.Found`); the module docstring of
:mod:`headwater.registry.reproduction` lists what is compared.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.evaluation.metrics import higher_is_better
from headwater.learning.examples import ExampleSlice, examples_hash, read_examples
from headwater.learning.score_then_learn import BATCH_ROWS, check_batch_rows, score_then_learn
from headwater.learning.triggers import metric_value
from headwater.log import Log
from headwater.registry import ModelRegistry, hash_directory
from headwater.registry.reproduction import Found, Mode, Reproduction, judge

__all__ = ["reproduce"]

_PREQUENTIAL: Final = "prequential_"


def reproduce(registry: ModelRegistry, log: Log, name: str, ref: int | str, *,
              mode: Mode = "auto", tolerance: float = 1e-6, batch_rows: int | None = None,
              workdir: str | Path | None = None) -> Reproduction:
    """Replay version ``ref`` of ``name`` from its recorded slice and judge the result.

    Artifacts are checked out verified from the store (so loading them trusts their
    format). A version without a recorded slice is a
    :class:`~headwater.errors.ValidationError` naming ``lineage.training``; a slice the
    log no longer holds whole is a mismatch of the examples.
    """
    if mode not in ("auto", "artifact", "metrics"):
        raise ValidationError("mode", f"expected auto, artifact or metrics, got {mode!r}")
    if not (isinstance(tolerance, int | float) and tolerance >= 0):
        raise ValidationError("tolerance", f"expected a number >= 0, got {tolerance!r}")
    version = registry.get(name, ref)
    creator = version.lineage.created_by
    if batch_rows is None:
        batch_rows = creator.batch_rows or BATCH_ROWS
    check_batch_rows(batch_rows)
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
    prequential = score_then_learn(model, features, y, batch_rows=batch_rows)
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


def _joint_hash(parts: list[ExampleSlice]) -> str:
    """Several topics: the hash of their hashes, in the slice's order."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update((part.slice.examples_sha256 or "").encode())
    return digest.hexdigest()
