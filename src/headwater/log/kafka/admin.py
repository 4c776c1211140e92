"""Cluster administration: topics, record deletion and consumer-group offsets.

:class:`Admin` uses Kafka's admin API. Data topics are created with Kafka's own
retention off (``retention.ms=-1``): the log is the source of truth, and only
:meth:`~headwater.log.kafka.KafkaBackend.enforce_retention` drops events, by the
topic's :class:`~headwater.log.records.Retention`, with ``DeleteRecords``. The
backend's tables are compacted topics. Group offsets are written and read with the
admin API's OffsetCommit and OffsetFetch, which store them with the group's
coordinator exactly as a consumer's commit does.

:class:`MockAdmin` does the same against librdkafka's mock cluster, whose protocol side
has no CreateTopics, DeleteTopics or DeleteRecords, through the mock's control API.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from headwater.errors import BackendError, TopicExistsError
from headwater.log.kafka.clients import Connection, describe, wrapped
from headwater.log.kafka.mock import MockCluster

__all__ = ["Admin", "MockAdmin"]


class Admin:
    """Administers a Kafka cluster through the admin API."""

    time_index = True
    """The broker answers offsets-for-times from its time index."""

    def __init__(self, connection: Connection, client_id: str) -> None:
        self._timeout_s = connection.timeout_s
        with wrapped("creating an admin client"):
            self._client = AdminClient(connection.config(**{"client.id": client_id}))

    def partitions(self, topic: str) -> int | None:
        """How many partitions ``topic`` has in Kafka (``None``: no such topic)."""
        with wrapped(f"describing {topic}"):
            metadata = self._client.list_topics(topic, timeout=self._timeout_s)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            return None
        return len(found.partitions)

    def create_topic(self, name: str, partitions: int, *, compacted: bool = False) -> None:
        """Create ``name``; an existing topic with as many partitions is adopted."""
        configs = ({"cleanup.policy": "compact"} if compacted
                   else {"retention.ms": "-1", "retention.bytes": "-1"})
        topic = NewTopic(name, num_partitions=partitions, config=configs)
        futures = self._client.create_topics(
            [topic], operation_timeout=self._timeout_s, request_timeout=self._timeout_s
        )
        try:
            futures[name].result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BackendError(f"Kafka: creating {name} failed: {describe(exc)}") from exc
        self._await(name, partitions)

    def delete_topic(self, name: str) -> None:
        futures = self._client.delete_topics(
            [name], operation_timeout=self._timeout_s, request_timeout=self._timeout_s
        )
        try:
            futures[name].result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise BackendError(f"Kafka: deleting {name} failed: {describe(exc)}") from exc

    def delete_records(self, name: str, partition: int, before: int) -> None:
        """Move the start of ``name[partition]`` to ``before``."""
        with wrapped(f"deleting records of {name}[{partition}]"):
            futures = self._client.delete_records(
                [TopicPartition(name, partition, before)],
                operation_timeout=self._timeout_s, request_timeout=self._timeout_s,
            )
            for future in futures.values():
                future.result()

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        """Store the group's next offsets to read (OffsetCommit)."""
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, p, o) for p, o in offsets.items()]
        )
        with wrapped(f"committing offsets of group {group!r}"):
            futures = self._client.alter_consumer_group_offsets(
                [request], request_timeout=self._timeout_s
            )
            result = futures[group].result()
        _check_partitions(result, f"committing offsets of group {group!r}")

    def committed(self, group: str, topic: str, partitions: int) -> dict[int, int]:
        """The group's stored offsets for ``topic`` (OffsetFetch)."""
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(topic, p) for p in range(partitions)]
        )
        with wrapped(f"reading the offsets of group {group!r}"):
            futures = self._client.list_consumer_group_offsets(
                [request], request_timeout=self._timeout_s
            )
            result = futures[group].result()
        _check_partitions(result, f"reading the offsets of group {group!r}")
        return {tp.partition: tp.offset for tp in result.topic_partitions or ()
                if tp.offset >= 0}

    def close(self) -> None:
        """Nothing to release: the admin client has no state to flush."""

    def _await(self, name: str, partitions: int) -> None:
        """Wait until the cluster's metadata shows ``name`` (creation is asynchronous)."""
        deadline = time.monotonic() + self._timeout_s
        while True:
            found = self.partitions(name)
            if found == partitions:
                return
            if found is not None:
                raise TopicExistsError(
                    f"Kafka topic {name!r} exists with {found} partitions, not {partitions}"
                )
            if time.monotonic() >= deadline:
                raise BackendError(f"Kafka: topic {name!r} did not appear within "
                                   f"{self._timeout_s}s")
            time.sleep(0.05)


class MockAdmin(Admin):
    """Administers librdkafka's mock cluster through its control API."""

    time_index = False
    """The mock answers every offsets-for-times request with "none"."""

    def __init__(self, connection: Connection, client_id: str, cluster: MockCluster) -> None:
        super().__init__(connection, client_id)
        self._cluster = cluster

    def create_topic(self, name: str, partitions: int, *, compacted: bool = False) -> None:
        self._cluster.create_topic(name, partitions)
        self._await(name, partitions)

    def delete_topic(self, name: str) -> None:
        if self.partitions(name) is not None:
            self._cluster.delete_topic(name)

    def delete_records(self, name: str, partition: int, before: int) -> None:
        self._cluster.delete_records(name, partition, before)


def _check_partitions(result: ConsumerGroupTopicPartitions, action: str) -> None:
    for tp in result.topic_partitions or ():
        if tp.error is not None:
            raise BackendError(f"Kafka: {action} failed for {tp.topic}[{tp.partition}]: "
                               f"{describe(tp.error)}")
