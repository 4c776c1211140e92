"""Reading ranges of a partition through one long-lived consumer.

The consumer never joins a group or commits: it is assigned one partition at a time at
the offset a read starts from. A read that continues where the previous one stopped
keeps the assignment, so the messages librdkafka has prefetched are used rather than
fetched again (a replay reads a partition with one fetch stream).

Offset lookups (watermarks, offsets for times, metadata) go through a second consumer
that never fetches: a broker answers the requests of one connection in order, so a
lookup sent behind a fetch waiting for new data would wait as long as the fetch.
"""

from __future__ import annotations

import time
from typing import Final

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from headwater.errors import BackendError, OffsetOutOfRangeError
from headwater.log.kafka.clients import Connection, describe, wrapped

__all__ = ["Reader", "offset_of"]

_MAX_CONSUME: Final = 1_000_000  # librdkafka's limit for one consume call
_OUT_OF_RANGE: Final = (KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET)


class Reader:
    """Watermarks, time lookups and message ranges of single partitions."""

    def __init__(self, connection: Connection, client_id: str) -> None:
        self._timeout_s = connection.timeout_s
        settings = {
            "group.id": client_id,  # required by librdkafka; never joined
            "client.id": client_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "error",
            "fetch.wait.max.ms": connection.fetch_wait_ms,
        }
        with wrapped("creating a consumer"):
            self._consumer = Consumer(connection.config(**settings))
            self._lookup = Consumer(connection.config(**settings))
        self._known: set[str] = set()
        self._cursor: tuple[str, int, int] | None = None

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """The partition's first kept offset and its end offset, asked of the broker."""
        with wrapped(f"reading the offsets of {topic}[{partition}]"):
            try:
                found = self._lookup.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=self._timeout_s, cached=False
                )
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._UNKNOWN_PARTITION:
                    raise
                self.learn(topic)  # created again with more partitions
                found = self._lookup.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=self._timeout_s, cached=False
                )
        if found is None:
            raise BackendError(f"Kafka: no offsets for {topic}[{partition}] within "
                               f"{self._timeout_s}s")
        low, high = found
        return int(low), int(high)

    def offset_for_time(self, topic: str, partition: int, time_ms: int) -> int:
        """Kafka's first offset with a timestamp at or after ``time_ms`` (-1 if none)."""
        with wrapped(f"looking up a time in {topic}[{partition}]"):
            found = self._lookup.offsets_for_times(
                [TopicPartition(topic, partition, time_ms)], timeout=self._timeout_s
            )
        return int(found[0].offset)

    def topics(self) -> dict[str, int]:
        """Every topic of the cluster with its partition count."""
        with wrapped("listing topics"):
            metadata = self._lookup.list_topics(timeout=self._timeout_s)
        return {name: len(t.partitions) for name, t in metadata.topics.items()
                if t.error is None}

    def fetch(self, topic: str, partition: int, offset: int, count: int) -> list[Message]:
        """The ``count`` messages from ``offset`` (they must exist)."""
        if self._cursor != (topic, partition, offset):
            self._assign(topic, partition, offset)
        out: list[Message] = []
        deadline = time.monotonic() + self._timeout_s
        while len(out) < count:
            wait = max(0.0, deadline - time.monotonic())
            with wrapped(f"reading {topic}[{partition}]"):
                got = self._consumer.consume(min(count - len(out), _MAX_CONSUME), wait)
            for message in got:
                error = message.error()
                if error is not None:
                    self._cursor = None
                    raise _read_error(error, topic, partition, offset)
            if got and not out and offset_of(got[0]) < offset:
                got = [m for m in got if offset_of(m) >= offset]  # left from a previous read
            out.extend(got)
            if not got and time.monotonic() >= deadline:
                self._cursor = None
                raise BackendError(f"Kafka: reading {count} events of {topic}[{partition}] "
                                   f"from {offset} timed out after {self._timeout_s}s")
        self._cursor = (topic, partition, offset_of(out[-1]) + 1)
        return out

    def learn(self, topic: str) -> None:
        """Refresh what the consumers know of ``topic`` (after it is created)."""
        with wrapped(f"describing {topic}"):
            self._lookup.list_topics(topic, timeout=self._timeout_s)
            self._consumer.list_topics(topic, timeout=self._timeout_s)
        self._known.add(topic)

    def forget(self, topic: str) -> None:
        """Drop what is known of ``topic`` (after it is deleted)."""
        self._known.discard(topic)
        if self._cursor is not None and self._cursor[0] == topic:
            self._cursor = None
            with wrapped("unassigning"):
                self._consumer.unassign()

    def close(self) -> None:
        self._consumer.close()
        self._lookup.close()

    def _assign(self, topic: str, partition: int, offset: int) -> None:
        with wrapped(f"reading {topic}[{partition}]"):
            if topic not in self._known:
                # Without metadata for the topic, the first fetch waits for the next
                # periodic metadata refresh (a second).
                self._consumer.list_topics(topic, timeout=self._timeout_s)
                self._known.add(topic)
            self._consumer.assign([TopicPartition(topic, partition, offset)])
        self._cursor = (topic, partition, offset)


def offset_of(message: Message) -> int:
    """The offset of a fetched message."""
    offset = message.offset()
    if offset is None:
        raise BackendError(f"Kafka: a message of {message.topic()} came without an offset")
    return offset


def _read_error(error: KafkaError, topic: str, partition: int, offset: int) -> Exception:
    if error.code() in _OUT_OF_RANGE:
        return OffsetOutOfRangeError(
            f"offset {offset} of {topic}[{partition}] is no longer kept: {describe(error)}"
        )
    return BackendError(f"Kafka: reading {topic}[{partition}] failed: {describe(error)}")
