"""How the Kafka backend's clients connect, and how their errors become ours.

A :class:`Connection` holds the bootstrap servers, the one timeout every blocking call
uses, and extra librdkafka settings given in the URL's query string
(``kafka://host:9092?security.protocol=SSL``); each client builds its configuration
from it. librdkafka's log goes to the ``headwater.log.kafka`` logger.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException

from headwater.errors import BackendError

__all__ = ["LOGGER", "Connection", "describe", "wrapped"]

LOGGER: Final = logging.getLogger("headwater.log.kafka")


@dataclass(frozen=True)
class Connection:
    """Where the cluster is and how long to wait for it."""

    bootstrap_servers: str
    timeout_s: float = 30.0
    options: Mapping[str, str] = field(default_factory=dict)
    """librdkafka settings that override the backend's own (from the URL)."""
    mock: bool = False
    """The cluster is librdkafka's mock: it answers fetches only when they time out."""

    @property
    def timeout_ms(self) -> int:
        return max(1, int(self.timeout_s * 1000))

    @property
    def fetch_wait_ms(self) -> int:
        """How long a fetch may wait at the broker for new data (latency of reads)."""
        return 5 if self.mock else 100

    def config(self, **settings: Any) -> dict[str, Any]:
        """A client configuration: the common settings, ``settings``, then the URL's."""
        common: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "logger": LOGGER,
            # librdkafka wants requests to outlast a fetch's wait at the broker.
            "socket.timeout.ms": max(self.timeout_ms, self.fetch_wait_ms + 1000),
            "socket.connection.setup.timeout.ms": max(1000, self.timeout_ms),
            "allow.auto.create.topics": False,
        }
        if self.mock:
            # A new client's first request races with it replacing the bootstrap broker by
            # the real one; the retry waits reconnect.backoff.ms / 2 (50 ms by default).
            common["reconnect.backoff.ms"] = 20
        return common | settings | dict(self.options)


def describe(error: KafkaError | KafkaException | BaseException) -> str:
    """A one-line reason for a Kafka error."""
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        error = error.args[0]
    if isinstance(error, KafkaError):
        return f"{error.str()} ({error.name()})"
    return str(error)


@contextmanager
def wrapped(action: str) -> Iterator[None]:
    """Turn a Kafka client failure during ``action`` into a BackendError."""
    try:
        yield
    except KafkaException as exc:
        raise BackendError(f"Kafka: {action} failed: {describe(exc)}") from exc
