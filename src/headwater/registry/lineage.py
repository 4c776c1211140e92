"""The lineage record: where a model version came from.

Every version records its parent (``None`` for stateless training), the slice of the
log it was trained on (topics, offset ranges per partition, the event-time range, the
number of examples and a content hash of them), the hash of the feature set, the code
that trained it, its hyper-parameters and metrics, what created it (trainer, trigger
and reason) and when. The records are frozen msgspec structs and encode to JSON:

>>> lineage = Lineage(
...     parent=3,
...     training=TrainingSlice(
...         topics=(TopicSlice(topic="payments",
...                            ranges=(OffsetRange(partition=0, start=100, end=250),)),),
...         examples=150,
...     ),
...     metrics={"logloss": 0.31},
...     created_by=Creator(trainer="continual", trigger="volume", reason="150 new labels"),
... )
>>> check_lineage(lineage) == lineage
True
>>> decode_lineage(encode_lineage(lineage)) == lineage
True
>>> check_lineage(Lineage(metrics={"auc": float("nan")}))
Traceback (most recent call last):
...
headwater.errors.ValidationError: lineage.metrics.auc: not a finite number

Offsets are half-open ranges ``[start, end)``; event times are µs since the epoch with
the same convention (``event_time_start`` included, ``event_time_end`` excluded).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

import msgspec

from headwater.errors import ValidationError, msgspec_path
from headwater.time import MAX_MICROS, MIN_MICROS

__all__ = [
    "CodeVersion",
    "Creator",
    "Lineage",
    "OffsetRange",
    "TopicSlice",
    "TrainingSlice",
    "TriggerKind",
    "check_lineage",
    "decode_lineage",
    "encode_lineage",
    "flatten_params",
]

TriggerKind = Literal["manual", "initial", "time", "volume", "performance", "drift"]
"""Why training ran: by hand, the first version, or a time, volume, performance or
drift trigger of the continual-learning loop."""

Scalar = str | int | float | bool | None
HyperParameter = Scalar | list[Scalar]
"""A hyper-parameter value: a JSON scalar or a list of them (nested settings are
flattened into dotted names, e.g. ``"optimizer.lr"``)."""

_Count = Annotated[int, msgspec.Meta(ge=0)]
_Version = Annotated[int, msgspec.Meta(ge=1)]
_Micros = Annotated[int, msgspec.Meta(ge=MIN_MICROS, lt=MAX_MICROS)]
_Sha256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class _Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """Strict about unknown fields. Records hold only scalars and lists and dicts of
    them, never cycles, so the garbage collector need not track them (which halves the
    cost of reading thousands of them)."""


class OffsetRange(_Record, frozen=True, kw_only=True):
    """The offsets ``[start, end)`` of one partition."""

    partition: _Count
    start: _Count
    end: _Count

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")


class TopicSlice(_Record, frozen=True, kw_only=True):
    """The offset ranges read from one topic, at most one range per partition."""

    topic: _Name
    ranges: tuple[OffsetRange, ...] = ()

    def __post_init__(self) -> None:
        partitions = [r.partition for r in self.ranges]
        if len(set(partitions)) != len(partitions):
            raise ValueError(f"topic {self.topic!r} names a partition twice")


class TrainingSlice(_Record, frozen=True, kw_only=True):
    """The examples a version was trained on: where in the log, when, how many, which."""

    topics: tuple[TopicSlice, ...] = ()
    event_time_start: _Micros | None = None
    event_time_end: _Micros | None = None
    examples: _Count = 0
    examples_sha256: _Sha256 | None = None

    def __post_init__(self) -> None:
        start, end = self.event_time_start, self.event_time_end
        if start is not None and end is not None and end < start:
            raise ValueError(f"event_time_end {end} is before event_time_start {start}")


class CodeVersion(_Record, frozen=True, kw_only=True):
    """The code that trained a version: a package's version and the git commit of its
    source tree when it runs from one (see :func:`headwater.registry.detect_code_version`)."""

    package: _Name
    version: str | None = None
    git_commit: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{40}([0-9a-f]{24})?$")] | None = None


class Creator(_Record, frozen=True, kw_only=True):
    """What created a version: the trainer's name and the trigger that ran it, with why;
    for a trainer of the continual-learning loop also how it read and learnt the slice
    (the routing ``arm`` whose examples it read, ``None`` for the served ones; the model
    whose examples it read, ``examples_of``, ``None`` for every model's; and the
    ``batch_rows`` of each learning step), which a replay needs to learn it the same way."""

    trainer: _Name = "manual"
    trigger: TriggerKind = "manual"
    reason: str = ""
    arm: _Name | None = None
    batch_rows: Annotated[int, msgspec.Meta(ge=1)] | None = None
    examples_of: _Name | None = None


class Lineage(_Record, frozen=True, kw_only=True):
    """Where a model version came from.

    ``parent`` is a version of the same model (``None``: trained from scratch).
    ``code`` and ``created_at`` are filled in at registration when left ``None``: the
    running Headwater's version and commit, and the registry clock's time (µs).
    """

    parent: _Version | None = None
    training: TrainingSlice | None = None
    feature_set: _Name | None = None
    code: CodeVersion | None = None
    hyperparameters: dict[str, HyperParameter] = {}
    metrics: dict[str, float] = {}
    created_by: Creator = Creator()
    created_at: _Micros | None = None


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(Lineage)


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


def check_lineage(lineage: Lineage, *, field: str = "lineage") -> Lineage:
    """``lineage`` checked field by field (types, ranges, hashes) as if it had been read
    from JSON; a problem raises :class:`~headwater.errors.ValidationError` naming the
    path, e.g. ``lineage.training.topics[0].ranges[1]``."""
    if not isinstance(lineage, Lineage):
        raise ValidationError(field, f"expected a Lineage, got {type(lineage).__name__}")
    try:
        checked = msgspec.convert(msgspec.to_builtins(lineage), Lineage)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, field) from exc
    except (TypeError, ValueError) as exc:  # a value to_builtins cannot encode
        raise ValidationError(field, str(exc)) from exc
    for name, value in checked.metrics.items():
        if not math.isfinite(value):
            raise ValidationError(f"{field}.metrics.{name}", "not a finite number")
    return checked


def encode_lineage(lineage: Lineage) -> bytes:
    """The JSON of ``lineage``."""
    return _ENCODER.encode(lineage)


def decode_lineage(data: bytes | str, *, field: str = "lineage") -> Lineage:
    """Read a lineage record from JSON; bad JSON raises a ValidationError naming the path."""
    try:
        return _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc, field) from exc
    except msgspec.DecodeError as exc:
        raise ValidationError(field, f"not JSON: {exc}") from exc


def _validation_error(exc: msgspec.ValidationError, field: str) -> ValidationError:
    path, reason = msgspec_path(str(exc))
    if not path:
        return ValidationError(field, reason)
    return ValidationError(field + (path if path.startswith("[") else f".{path}"), reason)
