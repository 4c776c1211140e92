"""The Kafka log backend (``pip install 'headwater[kafka]'``).

A Headwater topic is a Kafka topic with as many partitions, and each event is one
Kafka message, so the log's offsets are Kafka's and any Kafka client can read the
events. The package is split by role:

- :mod:`~headwater.log.kafka.backend`: :class:`KafkaBackend`, the
  :class:`~headwater.log.LogBackend`;
- :mod:`~headwater.log.kafka.codec`: how events are laid out in messages;
- :mod:`~headwater.log.kafka.writer` and :mod:`~headwater.log.kafka.reader`: the
  producer and the consumer the backend reads partitions with;
- :mod:`~headwater.log.kafka.scans`: searches Kafka does not index (append time,
  retention cut points, producer tables after a restart);
- :mod:`~headwater.log.kafka.tables`: the compacted topics holding the topic catalog,
  the known groups and the group members;
- :mod:`~headwater.log.kafka.membership`: how the members of a group share partitions;
- :mod:`~headwater.log.kafka.admin`: topics, record deletion and group offsets;
- :mod:`~headwater.log.kafka.mock`: librdkafka's in-process mock cluster, for tests.
"""

from headwater.errors import MissingExtraError

try:
    import confluent_kafka  # noqa: F401
except ImportError as exc:
    raise MissingExtraError("The Kafka log backend", "kafka", "confluent-kafka") from exc

from headwater.log.kafka.backend import KafkaBackend

__all__ = ["KafkaBackend"]
