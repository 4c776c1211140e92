"""Key-value tables kept in compacted Kafka topics: the backend's own state.

The Kafka backend keeps what Kafka has no place for in three single-partition,
compacted topics: the topic catalog (schemas, retention), the consumer groups that
have committed, and the members of each group. A record's key is the row's key; a
tombstone deletes the row. Every backend reads the tables from the beginning at
startup and, before answering from one, reads it up to its current end, so it sees
every write acknowledged before (its own included).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from headwater.errors import BackendError
from headwater.log.kafka.clients import Connection, describe, wrapped
from headwater.log.kafka.reader import Reader, offset_of
from headwater.log.kafka.writer import Writer

__all__ = ["GROUPS", "MEMBERS", "TABLES", "TOPICS", "Tables"]

TOPICS: Final = "__headwater_topics"
"""Topic name → the topic's definition (:class:`~headwater.log.records.TopicInfo` JSON)."""
GROUPS: Final = "__headwater_groups"
"""Consumer group name → when it first committed."""
MEMBERS: Final = "__headwater_members"
"""(group, member) → the member's last heartbeat."""
TABLES: Final = (TOPICS, GROUPS, MEMBERS)
_POLL_S: Final = 0.05


class Tables:
    """Live views of the tables, each a ``dict`` of bytes to bytes."""

    def __init__(self, connection: Connection, writer: Writer, reader: Reader, client_id: str,
                 names: Sequence[str] = TABLES, *, prefix: str = "") -> None:
        self._writer, self._reader = writer, reader
        self._prefix = prefix  # a table ``name`` is the Kafka topic ``prefix + name``
        self._lock = threading.RLock()
        self._timeout_s = connection.timeout_s
        self._rows: dict[str, dict[bytes, bytes]] = {name: {} for name in names}
        self._next: dict[str, int] = dict.fromkeys(names, 0)
        with wrapped("reading the backend's tables"):
            self._consumer = Consumer(connection.config(**{
                "group.id": client_id,  # required by librdkafka; never joined
                "client.id": client_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": connection.fetch_wait_ms,
            }))
            self._consumer.list_topics(timeout=self._timeout_s)  # metadata for the assign
            self._consumer.assign([TopicPartition(prefix + n, 0, OFFSET_BEGINNING)
                                   for n in names])
        for name in names:
            self.refresh(name)

    def rows(self, name: str) -> Mapping[bytes, bytes]:
        """A copy of the table as of its current end."""
        with self._lock:
            self.refresh(name)
            return dict(self._rows[name])

    def cached(self, name: str) -> Mapping[bytes, bytes]:
        """A copy of the table as of the last refresh (no round trip)."""
        with self._lock:
            return dict(self._rows[name])

    def put(self, name: str, key: bytes, value: bytes | None) -> None:
        """Write a row (``None`` deletes it) and wait until it is read back."""
        with self._lock:
            self._writer.put(self._prefix + name, key, value)
            self.refresh(name)

    def refresh(self, name: str) -> None:
        """Read ``name`` up to the end it has now."""
        with self._lock:
            end = self._reader.watermarks(self._prefix + name, 0)[1]
            deadline = time.monotonic() + self._timeout_s
            while self._next[name] < end:
                self._consume(name, end - self._next[name], deadline)

    def close(self) -> None:
        self._consumer.close()

    def _consume(self, name: str, count: int, deadline: float) -> None:
        # Compaction leaves gaps in the offsets, so fewer than ``count`` may come: wait
        # briefly for each call.
        wait = min(_POLL_S, max(0.0, deadline - time.monotonic()))
        with wrapped(f"reading {name}"):
            messages = self._consumer.consume(count, wait)
        for message in messages:
            error = message.error()
            if error is not None:
                raise BackendError(f"Kafka: reading {name} failed: {describe(error)}")
            self._apply(str(message.topic())[len(self._prefix):], message.key(),
                        message.value(), offset_of(message))
        if not messages and time.monotonic() >= deadline:
            raise BackendError(f"Kafka: reading {name} timed out after {self._timeout_s}s")

    def _apply(self, name: str, key: bytes | None, value: bytes | None, offset: int) -> None:
        rows = self._rows.get(name)
        if rows is None:
            return
        self._next[name] = offset + 1
        if key is None:
            return
        if value is None:
            rows.pop(key, None)
        else:
            rows[key] = value
