"""Judging a reproduction: does a replayed version come out as its lineage says?

:func:`headwater.learning.reproduce` replays a version's recorded training slice the way
the trainers learnt it and hands what it found here, as plain values (:class:`Found`);
:func:`judge` compares them with the record, without I/O:

- the examples: their number, content hash and event-time range (a different log gives
  different examples);
- the hyper-parameters recorded against the model's;
- for a deterministic model (the adapter's class says ``deterministic = True``, as the
  built-in linear models do) the artifact's SHA-256; for any other the recorded metrics
  that the replay could recompute — ``rows`` and the gate's ``prequential_<metric>``
  over the last ``gate_examples`` examples — within ``tolerance``, and the scores of the
  stored artifact against those of the replayed model on the slice (a stored artifact
  that is not the replayed one differs there).

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
from typing import Any, Literal, NamedTuple

from headwater.registry.lineage import flatten_params
from headwater.registry.records import ModelVersion

__all__ = ["Found", "Mode", "Reproduction", "ReproductionCheck", "ReproductionVerdict", "judge"]

Mode = Literal["auto", "artifact", "metrics"]
"""What decides: ``artifact`` (the SHA-256 must be the same), ``metrics`` (the recorded
metrics, within the tolerance) or ``auto`` (``artifact`` for deterministic models)."""
ReproductionVerdict = Literal["match", "mismatch", "unverifiable"]
"""``unverifiable``: nothing decisive could be compared (metrics mode and no recorded
metric that the replay can recompute)."""


class ReproductionCheck(NamedTuple):
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
    verdict: ReproductionVerdict
    checks: tuple[ReproductionCheck, ...]

    @property
    def matches(self) -> bool:
        return self.verdict == "match"

    @property
    def failed(self) -> list[ReproductionCheck]:
        """The decisive checks that disagree."""
        return [c for c in self.checks if c.decisive and not c.ok]


def judge(version: ModelVersion, found: Found, *, deterministic: bool, mode: Mode = "auto",
          tolerance: float = 1e-6) -> Reproduction:
    """Compare a replay with the version's record (see the module docstring)."""
    decided: Literal["artifact", "metrics"] = (
        ("artifact" if deterministic else "metrics") if mode == "auto" else mode)
    lineage = version.lineage
    training = lineage.training
    checks: list[ReproductionCheck] = []
    check = ReproductionCheck
    if training is not None:
        checks.append(check("examples", str(training.examples), str(found.examples),
                            training.examples == found.examples))
        if training.examples_sha256 is not None:
            checks.append(check("examples_sha256", training.examples_sha256,
                                found.examples_sha256,
                                training.examples_sha256 == found.examples_sha256))
        start, end = training.event_time_start, training.event_time_end
        if start is not None or end is not None:
            checks.append(check("event_time", f"[{start}, {end})",
                                f"[{found.event_time_start}, {found.event_time_end})",
                                (start, end) == (found.event_time_start, found.event_time_end)))
    params = flatten_params(found.params)
    for key, value in sorted(lineage.hyperparameters.items()):
        have = params.get(key, "<absent>")
        checks.append(check(f"hyperparameter {key}", repr(value), repr(have), have == value))
    checks.append(check("artifact", version.artifact.sha256, found.artifact_sha256,
                        version.artifact.sha256 == found.artifact_sha256,
                        decisive=decided == "artifact"))
    compared = 0
    for name, recorded in sorted(lineage.metrics.items()):
        value = found.metrics.get(name)
        if value is None:
            checks.append(check(f"metric {name}", f"{recorded:.6g}", "not recomputed", True,
                                decisive=False))
            continue
        compared += 1
        close = math.isclose(value, recorded, rel_tol=0.0, abs_tol=tolerance) or (
            math.isnan(value) and math.isnan(recorded))
        checks.append(check(f"metric {name}", f"{recorded:.6g}", f"{value:.6g}", close,
                            decisive=decided == "metrics"))
    checks.append(check("stored scores", f"within {tolerance:g}", f"{found.score_gap:.3g}",
                        found.score_gap <= tolerance, decisive=decided == "metrics"))
    verdict: ReproductionVerdict
    if any(c.decisive and not c.ok for c in checks):
        verdict = "mismatch"
    elif decided == "metrics" and not compared:
        verdict = "unverifiable"
    else:
        verdict = "match"
    return Reproduction(version.model, version.version, lineage.parent, decided, verdict,
                        tuple(checks))
