"""Every error Headwater raises, under one root.

Catch :class:`HeadwaterError` to catch them all. Errors about bad input name the field
and the reason; third-party failures are wrapped with context (the original stays in
``__cause__``).  Mapping errors to HTTP status codes or exit codes is the job of the
server and CLI layers, not of these classes::

    HeadwaterError
    ├── ConfigError                  bad settings, unknown backend URL
    │   └── MissingExtraError        an optional dependency is not installed
    ├── ValidationError              bad input at an edge (names field and reason)
    │   ├── SchemaError              an invalid schema definition
    │   ├── TimestampError           naive, unreadable or out-of-range time
    │   ├── PayloadTooLargeError     an event or batch over the size limit
    │   ├── BanditStateError         a bandit snapshot that cannot be restored
    │   ├── UnknownArmError          a routing policy's arm that is no alias of the model
    │   ├── ConflictError            input contradicting what was accepted (a reused id)
    │   ├── NotContinualError        a model that cannot learn continually (names why)
    │   └── LeakageError             a label or feature visible before it could be known
    ├── LogError                     the event log
    │   ├── UnknownTopicError
    │   ├── TopicExistsError
    │   ├── UnknownPartitionError
    │   ├── OffsetOutOfRangeError    an offset before the start or past the end
    │   ├── UnknownConsumerGroupError
    │   ├── WriterConflictError      another process holds a partition's write lock
    │   ├── SequenceError            an idempotent append out of sequence
    │   └── CorruptLogError          a log file that cannot be read or repaired
    ├── RegistryError                the model store
    │   ├── UnknownModelError        no version of this model was ever registered
    │   ├── UnknownVersionError
    │   ├── VersionExistsError       versions are immutable: a number is registered once
    │   ├── AliasError               an alias move that cannot be made (e.g. nothing to roll back)
    │   │   ├── UnknownAliasError    the alias points at no version
    │   │   └── AliasTargetError     a move to a version that cannot be loaded (names why)
    │   ├── ArtifactMissingError     a recorded artifact is not in the artifact store
    │   ├── ArtifactCorruptError     an artifact whose content hash is not the recorded one
    │   ├── LeaseHeldError           another process holds the lease (names it and until when)
    │   └── VersionLoadError         a version that cannot be loaded (names model, version, why)
    │       └── UntrustedVersionError  it can run code on load; the registry has not opted in
    ├── EvaluationError              an evaluation that cannot be made (names what and why)
    ├── ModelError                   a model adapter failed (see ``__cause__``)
    │   └── ModelArtifactError       a saved model that cannot be loaded (names file, reason)
    │       └── UntrustedArtifactError  a pickle-based model loaded without trusted=True
    ├── BackendError                 a server backend failed (Redis, Kafka)
    ├── FencedError                  another process took this work over (a newer epoch or
    │                                lease): this one may no longer write for it
    └── OrchestrationError           supervised components (``headwater run``)
        ├── AlreadyRunningError      another supervisor holds this home (names its pid)
        └── ComponentFailedError     a component failed the same way again and again
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "AliasError",
    "AliasTargetError",
    "AlreadyRunningError",
    "ArtifactCorruptError",
    "ArtifactMissingError",
    "BackendError",
    "BanditStateError",
    "ComponentFailedError",
    "ConfigError",
    "ConflictError",
    "CorruptLogError",
    "EvaluationError",
    "FencedError",
    "HeadwaterError",
    "LeakageError",
    "LeaseHeldError",
    "LogError",
    "MissingExtraError",
    "ModelArtifactError",
    "ModelError",
    "NotContinualError",
    "OffsetOutOfRangeError",
    "OrchestrationError",
    "PayloadTooLargeError",
    "RegistryError",
    "SchemaError",
    "SequenceError",
    "TimestampError",
    "TopicExistsError",
    "UnknownAliasError",
    "UnknownArmError",
    "UnknownConsumerGroupError",
    "UnknownModelError",
    "UnknownPartitionError",
    "UnknownTopicError",
    "UnknownVersionError",
    "UntrustedArtifactError",
    "UntrustedVersionError",
    "ValidationError",
    "VersionExistsError",
    "VersionLoadError",
    "WriterConflictError",
    "msgspec_path",
]

_KEY_AT: Final = re.compile(r" - at `key` in `\$(.*)`$")
_AT: Final = re.compile(r" - at `\$(.*)`$")
_NAMED: Final = re.compile(r"field `([^`]*)`")


class HeadwaterError(Exception):
    """The root of every error Headwater raises."""


class ConfigError(HeadwaterError):
    """Settings or a backend location that cannot be used."""


class MissingExtraError(ConfigError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the {module!r} package: pip install 'headwater[{extra}]'"
        )
        self.extra = extra


class ValidationError(HeadwaterError, ValueError):
    """Bad input at an edge. ``field`` is the path of the offending value."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def msgspec_path(message: str) -> tuple[str, str]:
    """The path (without ``$``) and the reason of a msgspec validation error's message.

    A missing or unknown field is named in the path too; a bad mapping key is named by
    the path of its mapping.

    >>> msgspec_path("Expected `int`, got `str` - at `$.weights.b`")
    ('weights.b', 'Expected `int`, got `str`')
    >>> msgspec_path("Object contains unknown field `colour` - at `$.policy`")
    ('policy.colour', 'Object contains unknown field `colour`')
    >>> msgspec_path("Object missing required field `weights`")
    ('weights', 'Object missing required field `weights`')
    >>> msgspec_path("Expected `str` of length <= 8 - at `key` in `$.entities`")
    ('entities', 'Expected `str` of length <= 8')
    """
    key = _KEY_AT.search(message)
    if key:
        return key.group(1).lstrip("."), message[: key.start()]
    match = _AT.search(message)
    path = match.group(1).lstrip(".") if match else ""
    reason = message[: match.start()] if match else message
    named = _NAMED.search(reason)
    if named:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return path, reason


class SchemaError(ValidationError):
    """A schema definition that cannot be used."""


class TimestampError(ValidationError):
    """A naive, unreadable or out-of-range timestamp."""


class PayloadTooLargeError(ValidationError):
    """An event or a batch over the configured size limit."""


class BanditStateError(ValidationError):
    """A bandit or contextual-policy snapshot that cannot be restored (names the field)."""


class UnknownArmError(ValidationError):
    """A routing policy names an arm that is not an alias of the model: requests routed
    to it would fall back to another version. ``arm`` is the name."""

    def __init__(self, field: str, arm: str, reason: str) -> None:
        super().__init__(field, reason)
        self.arm = arm


class ConflictError(ValidationError):
    """Input that contradicts what was accepted before: a request id sent again with
    another request, or a second outcome for one prediction that says otherwise."""


class NotContinualError(ValidationError):
    """A model asked to learn continually that cannot (a scikit-learn estimator without
    ``partial_fit`` refits from scratch on every batch): ``field`` names the model."""


class LeakageError(ValidationError):
    """Training or test data that shows a model something it could not have known then:
    a label before its prediction time or before the test period, a feature value from
    after the prediction. ``field`` names the column and row."""


class LogError(HeadwaterError):
    """A failure of the event log."""


class UnknownTopicError(LogError, KeyError):
    """The topic does not exist."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"unknown topic {topic!r}")
        self.topic = topic

    def __str__(self) -> str:
        return str(self.args[0])


class TopicExistsError(LogError):
    """A topic with this name already exists with a different definition."""


class UnknownPartitionError(LogError, IndexError):
    """The partition number is outside the topic's partitions."""


class OffsetOutOfRangeError(LogError, IndexError):
    """An offset before the partition's start (removed by retention) or past its end."""


class UnknownConsumerGroupError(LogError, KeyError):
    """No consumer group of this name has committed offsets."""

    def __init__(self, group: str) -> None:
        super().__init__(f"unknown consumer group {group!r}")
        self.group = group

    def __str__(self) -> str:
        return str(self.args[0])


class WriterConflictError(LogError):
    """Another writer holds the partition; only one may append at a time."""


class SequenceError(LogError):
    """An idempotent append whose sequence number went backwards beyond recall."""


class CorruptLogError(LogError):
    """A log file that cannot be read and cannot be repaired automatically."""


class RegistryError(HeadwaterError):
    """A failure of the model store (:mod:`headwater.registry`)."""


class UnknownModelError(RegistryError, KeyError):
    """No version of this model has been registered."""

    def __init__(self, model: str) -> None:
        super().__init__(f"unknown model {model!r}")
        self.model = model

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownVersionError(RegistryError, KeyError):
    """The model exists but has no version of this number."""

    def __init__(self, model: str, version: int) -> None:
        super().__init__(f"model {model!r} has no version {version}")
        self.model = model
        self.version = version

    def __str__(self) -> str:
        return str(self.args[0])


class VersionExistsError(RegistryError):
    """A version is immutable: registering the same model and number again is refused."""

    def __init__(self, model: str, version: int) -> None:
        super().__init__(
            f"model {model!r} already has version {version}; versions are immutable"
        )
        self.model = model
        self.version = version


class AliasError(RegistryError):
    """An alias move that cannot be made: nothing to roll back, a rejected or archived
    target, or another move made concurrently."""


class UnknownAliasError(AliasError, KeyError):
    """The alias does not point at any version of the model."""

    def __init__(self, model: str, alias: str) -> None:
        super().__init__(f"model {model!r} has no alias {alias!r}")
        self.model = model
        self.alias = alias

    def __str__(self) -> str:
        return str(self.args[0])


class AliasTargetError(AliasError):
    """An alias move refused because its target version cannot be loaded: its artifact
    fails verification, cannot be read, or can run code and the registry has not opted
    in. The :class:`VersionLoadError` is the ``__cause__``."""


class ArtifactMissingError(RegistryError):
    """The artifact of a recorded version is not in the artifact store."""


class ArtifactCorruptError(RegistryError):
    """An artifact whose content no longer hashes to the recorded SHA-256.

    ``expected`` and ``actual`` are the hex digests; the message names the files that
    differ when the stored manifest allows it."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class LeaseHeldError(RegistryError):
    """Another process holds the lease (the one trainer of a model): ``holder`` names
    it and ``expires_at`` (µs) is when the lease runs out unless it is renewed."""

    def __init__(self, message: str, *, holder: str, expires_at: int) -> None:
        super().__init__(message)
        self.holder = holder
        self.expires_at = expires_at
class VersionLoadError(RegistryError):
    """A version whose model cannot be loaded here: the message says which and why (a
    missing or altered artifact, an unreadable model, a missing extra, an untrusted
    format); the original error is the ``__cause__``."""

    def __init__(self, model: str, version: int, reason: str) -> None:
        super().__init__(f"version {version} of {model} cannot load: {reason}")
        self.model = model
        self.version = version
        self.reason = reason


class UntrustedVersionError(VersionLoadError):
    """A version whose artifact can run code when loaded (pickle, or skops types outside
    skops' trusted list), in a registry whose operator has not opted in to such
    artifacts (:meth:`headwater.registry.ModelRegistry.trust`)."""


class EvaluationError(HeadwaterError):
    """An evaluation that cannot be made: no examples in a period, an arm with no label,
    a ramp with nothing to promote (:mod:`headwater.evaluation`)."""


class ModelError(HeadwaterError):
    """A model adapter (:mod:`headwater.models`) failed; a library's error is in ``__cause__``."""


class ModelArtifactError(ModelError, ValidationError):
    """A saved model directory that cannot be loaded: ``field`` is the file, ``reason`` why.

    Raised for a missing or malformed ``headwater-model.json``, an unknown format, and
    weight files that are missing, altered (hash mismatch) or of the wrong shape."""

    def __init__(self, path: str, reason: str) -> None:
        ValidationError.__init__(self, path, reason)
        self.path = path


class UntrustedArtifactError(ModelArtifactError):
    """A model whose format runs code on load (pickle) was loaded without ``trusted=True``.

    ``risk`` says what in the artifact can run code (the format, or the types found)."""

    def __init__(self, path: str, reason: str, *, risk: str = "") -> None:
        super().__init__(path, reason)
        self.risk = risk or reason


class BackendError(HeadwaterError):
    """A server backend (Redis, Kafka, PostgreSQL) failed; see ``__cause__``."""


class FencedError(HeadwaterError):
    """Another process took this work over under a newer epoch or lease — a label joiner
    that lost a partition, a trainer that lost its model's lease — so this one may no
    longer write for it; it must stop, or wait to take the work back."""
class OrchestrationError(HeadwaterError):
    """A failure of supervised components (:mod:`headwater.orchestrator`)."""


class AlreadyRunningError(OrchestrationError):
    """Another supervisor is running on the same home; ``pid`` is its process id (or
    ``None`` when it could not be read)."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


class ComponentFailedError(OrchestrationError):
    """A component failed the same way several times in a row, each time soon after it
    started, and is not restarted again. ``component`` names it, ``exit_codes`` are its
    last exits and ``output`` the last lines it wrote."""

    def __init__(self, component: str, exit_codes: list[int], output: str) -> None:
        lines = f"; its last output:\n{output}" if output else " (no output kept)"
        super().__init__(f"component {component!r} failed {len(exit_codes)} times in a row "
                         f"soon after starting (exit code {exit_codes[-1]}); not restarted"
                         f"{lines}")
        self.component = component
        self.exit_codes = exit_codes
        self.output = output
