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
    │   └── PayloadTooLargeError     an event or batch over the size limit
    ├── LogError                     the event log
    │   ├── UnknownTopicError
    │   ├── TopicExistsError
    │   ├── UnknownPartitionError
    │   ├── OffsetOutOfRangeError    an offset before the start or past the end
    │   ├── UnknownConsumerGroupError
    │   ├── WriterConflictError      another process holds a partition's write lock
    │   ├── SequenceError            an idempotent append out of sequence
    │   └── CorruptLogError          a log file that cannot be read or repaired
    └── BackendError                 a server backend failed (Redis, Kafka)
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConfigError",
    "CorruptLogError",
    "HeadwaterError",
    "LogError",
    "MissingExtraError",
    "OffsetOutOfRangeError",
    "PayloadTooLargeError",
    "SchemaError",
    "SequenceError",
    "TimestampError",
    "TopicExistsError",
    "UnknownConsumerGroupError",
    "UnknownPartitionError",
    "UnknownTopicError",
    "ValidationError",
    "WriterConflictError",
]


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


class SchemaError(ValidationError):
    """A schema definition that cannot be used."""


class TimestampError(ValidationError):
    """A naive, unreadable or out-of-range timestamp."""


class PayloadTooLargeError(ValidationError):
    """An event or a batch over the configured size limit."""


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


class BackendError(HeadwaterError):
    """A server backend (Redis, Kafka, PostgreSQL) failed; see ``__cause__``."""
