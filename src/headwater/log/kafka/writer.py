"""Writing to Kafka: one idempotent producer, used synchronously.

An append produces its messages to one partition and waits for them: the base offset
comes from the first message's delivery report. The producer is idempotent, so its
own retries neither duplicate nor reorder messages, and the whole append is produced
before a flush, so it goes out as a single record batch when it fits one (up to
``batch.size``, 1 MB by default). The broker appends a record batch atomically;
an append larger than that is split into several record batches, each atomic, and a
failure part-way (after librdkafka's retries are exhausted) can leave a prefix stored.
The caller then gets a :class:`~headwater.errors.BackendError` and should retry with
the same producer id and sequence.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, Producer

from headwater.errors import BackendError
from headwater.log.kafka.clients import Connection, describe, wrapped
from headwater.log.kafka.codec import Headers

__all__ = ["Writer"]


class _Delivery:
    """The delivery report of one message."""

    __slots__ = ("error", "offset")

    def __init__(self) -> None:
        self.error: KafkaError | None = None
        self.offset = -1

    def __call__(self, error: KafkaError | None, message: Any) -> None:
        self.error = error
        if error is None:
            self.offset = message.offset()


class Writer:
    """Produces appends and table records, waiting for each to be stored."""

    def __init__(self, connection: Connection, client_id: str) -> None:
        self._timeout_s = connection.timeout_s
        self._last_error: KafkaError | None = None
        with wrapped("creating a producer"):
            self._producer = Producer(connection.config(**{
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "batch.num.messages": 100_000,
                "queue.buffering.max.messages": 2_000_000,
                "message.timeout.ms": connection.timeout_ms,
                "topic.metadata.propagation.max.ms": connection.timeout_ms,
                "error_cb": self._on_error,
            }))

    def append(self, topic: str, partition: int, keys: Sequence[bytes | None],
               values: Sequence[bytes], timestamp_ms: int, trailer: Headers) -> int:
        """Store the messages contiguously at the partition's end; return the first offset."""
        n = len(values)
        first, last = _Delivery(), _Delivery()
        produce = self._producer.produce
        self._send(topic, partition, values[0], keys[0], timestamp_ms,
                   first if n > 1 else last, trailer if n == 1 else None)
        with wrapped(f"producing to {topic}[{partition}]"):
            for i in range(1, n - 1):
                try:
                    produce(topic, values[i], keys[i], partition=partition,
                            timestamp=timestamp_ms)
                except BufferError:
                    self._send(topic, partition, values[i], keys[i], timestamp_ms)
        if n > 1:
            self._send(topic, partition, values[-1], keys[-1], timestamp_ms, last, trailer)
        self._flush(f"append to {topic}[{partition}]")
        if n == 1:
            first = last
        for delivery in (first, last):
            if delivery.error is not None:
                raise BackendError(
                    f"Kafka: append to {topic}[{partition}] failed: {describe(delivery.error)}"
                )
        if last.offset - first.offset + 1 != n:
            raise BackendError(
                f"Kafka: the append of {n} events to {topic}[{partition}] was stored at "
                f"offsets {first.offset}..{last.offset}, interleaved with another writer's"
            )
        return first.offset

    def put(self, topic: str, key: bytes, value: bytes | None) -> None:
        """Store one record (``None`` is a tombstone) in partition 0 of ``topic``."""
        delivery = _Delivery()
        self._send(topic, 0, value, key, None, delivery)
        self._flush(f"write to {topic}")
        if delivery.error is not None:
            raise BackendError(f"Kafka: write to {topic} failed: {describe(delivery.error)}")

    def learn(self, topic: str) -> None:
        """Refresh what the producer knows of ``topic`` (after it is created)."""
        with wrapped(f"describing {topic}"):
            self._producer.list_topics(topic, timeout=self._timeout_s)

    def close(self) -> None:
        self._producer.flush(self._timeout_s)

    def _send(self, topic: str, partition: int, value: bytes | None, key: bytes | None,
              timestamp_ms: int | None, on_delivery: _Delivery | None = None,
              headers: Headers | None = None) -> None:
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                with wrapped(f"producing to {topic}[{partition}]"):
                    self._producer.produce(
                        topic, value, key, partition=partition, on_delivery=on_delivery,
                        timestamp=timestamp_ms or 0, headers=headers,
                    )
                return
            except BufferError:
                if time.monotonic() > deadline:
                    raise BackendError(f"Kafka: the producer queue stays full ({topic})"
                                       ) from None
                self._producer.poll(0.01)

    def _flush(self, action: str) -> None:
        with wrapped(action):
            left = self._producer.flush(self._timeout_s)
        if left:
            self._producer.purge(in_queue=True, in_flight=False)
            self._producer.poll(0)
            reason = f": {describe(self._last_error)}" if self._last_error else ""
            raise BackendError(
                f"Kafka: {action} timed out after {self._timeout_s}s with {left} messages "
                f"unconfirmed{reason}; the outcome is unknown, retry with the same "
                "producer id and sequence"
            )

    def _on_error(self, error: KafkaError) -> None:
        self._last_error = error
