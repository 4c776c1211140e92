"""The event log: the source of truth every other part of Headwater reads.

A topic is an append-only sequence of schema-checked events, split into partitions by a
stable hash of the key. Each event carries its event time (when it happened) and gets
an append time and an offset from the log. Batches go in and come out as Arrow record
batches; consumer groups read partitions and commit offsets to resume after a restart.

Backends: embedded (local segment files, the default), Redis Streams, Kafka, and an
in-memory one (:mod:`headwater.log.memory`, for tests; :mod:`headwater.testing` exports
it). :func:`open_log` picks one by location.

Modules (every one public):

- ``log``: :class:`Log`, the same for every backend (appends, reads, seeks, groups);
- ``schema``: topic schemas; ``records``: what the log hands back (results, fetches);
- ``system``: the catalogue of the topics Headwater's components write (row structs);
- ``backend``: the protocol a backend implements; ``connect``: :func:`open_log`;
- ``embedded``, ``redis``, ``kafka``, ``memory``: the backends;
- ``consumer``: consumer groups; ``follow``: following a topic without a group;
- ``appender``: a background appender for events queued from a hot path;
- ``partitioner``: key-hash partitioning; ``validation``: schema checks at append;
- ``frames``: a partition stored as a sequence of appended batches.
"""

from headwater.log.backend import LogBackend, Membership, Producer
from headwater.log.connect import open_backend, open_log
from headwater.log.consumer import Consumer
from headwater.log.log import Log
from headwater.log.partitioner import partition_of
from headwater.log.records import (
    DEAD_LETTER_SCHEMA,
    AppendResult,
    Fetched,
    PartitionAppend,
    Rejection,
    Retention,
    TopicInfo,
    dead_letter_topic,
)
from headwater.log.schema import APPEND_TIME, OFFSET, Field, Schema

__all__ = [
    "APPEND_TIME",
    "DEAD_LETTER_SCHEMA",
    "OFFSET",
    "AppendResult",
    "Consumer",
    "Fetched",
    "Field",
    "Log",
    "LogBackend",
    "Membership",
    "PartitionAppend",
    "Producer",
    "Rejection",
    "Retention",
    "Schema",
    "TopicInfo",
    "dead_letter_topic",
    "open_backend",
    "open_log",
    "partition_of",
]
