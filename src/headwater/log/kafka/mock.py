"""librdkafka's built-in mock Kafka cluster, for tests without a broker.

The mock cluster speaks the real Kafka protocol on localhost sockets, so producers,
consumers and admin clients use it exactly as they would use a broker. Its protocol
side lacks the administrative requests (CreateTopics, DeleteTopics, DeleteRecords), and
auto-created topics get a fixed default partition count. librdkafka offers those
operations as a C control API instead (``rd_kafka_mock_topic_create`` and friends),
which :class:`MockCluster` calls through :mod:`ctypes` on the librdkafka shipped with
confluent-kafka.

A mock cluster lives inside the process that started it. Clusters are registered by
their bootstrap address, so another backend in the same process that connects to that
address can find the control API (:func:`find`).

The mock is no broker, and tests must stay within its limits:

- **Capacity.** A partition keeps at most :data:`PARTITION_MAX_BYTES` (5 MiB) of record
  batches and :data:`PARTITION_MAX_BATCHES` (100,000) of them, whatever the topic's
  retention. An append past either limit makes the mock drop the oldest batches,
  moving the partition's start offset. One event is one message, so that is about
  50,000 events of a string key, a timestamp and five ``float64`` per partition; spread
  larger workloads over more partitions. The mock does this without a word, so the
  backend asks for the start offset after every append to a mock and raises a
  :class:`~headwater.errors.BackendError` naming the dropped offsets
  (:meth:`MockCluster.dropped`), rather than leaving readers to find fewer events
  than were written.
- It has no time index (offsets-for-times always answers "none").
- It answers a fetch waiting for new data only when the fetch's wait is over, so
  clients of a mock use a short ``fetch.wait.max.ms``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import threading
from typing import Final

from headwater.errors import BackendError, ConfigError

__all__ = ["PARTITION_MAX_BATCHES", "PARTITION_MAX_BYTES", "MockCluster", "find"]

PARTITION_MAX_BYTES: Final = 5 * 1024 * 1024
"""The record-batch bytes a mock partition keeps (librdkafka's fixed limit)."""
PARTITION_MAX_BATCHES: Final = 100_000
"""The record batches a mock partition keeps (librdkafka's fixed limit)."""

_PRODUCER: Final = 0  # rd_kafka_type_t RD_KAFKA_PRODUCER
_TOPIC_ALREADY_EXISTS: Final = 36
_ERRSTR: Final = 512

_running: dict[str, MockCluster] = {}
_registry_lock = threading.Lock()


def find(bootstrap_servers: str) -> MockCluster | None:
    """The mock cluster of this process serving ``bootstrap_servers``, if any."""
    with _registry_lock:
        return _running.get(bootstrap_servers)


class MockCluster:
    """A running mock cluster of ``brokers`` brokers; ``close()`` stops it."""

    def __init__(self, brokers: int = 1) -> None:
        self._lib = _library()
        errstr = ctypes.create_string_buffer(_ERRSTR)
        conf = self._lib.rd_kafka_conf_new()
        self._lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, _ERRSTR)
        self._rk = self._lib.rd_kafka_new(_PRODUCER, conf, errstr, _ERRSTR)
        if not self._rk:
            self._lib.rd_kafka_conf_destroy(conf)
            raise BackendError(f"cannot start a Kafka mock cluster: {errstr.value.decode()}")
        self._cluster = self._lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not self._cluster:
            self._lib.rd_kafka_destroy(self._rk)
            raise BackendError("cannot start a Kafka mock cluster (see the librdkafka log)")
        self.bootstrap_servers: str = self._lib.rd_kafka_mock_cluster_bootstraps(
            self._cluster
        ).decode()
        self._lock = threading.Lock()
        # Each partition's start offset as deleted records left it (0 if none were).
        self._starts: dict[tuple[str, int], int] = {}
        with _registry_lock:
            _running[self.bootstrap_servers] = self

    def create_topic(self, name: str, partitions: int) -> bool:
        """Create a topic; ``False`` when it exists already."""
        err = self._lib.rd_kafka_mock_topic_create(self._live(), name.encode(), partitions, 1)
        if err == _TOPIC_ALREADY_EXISTS:
            return False
        self._check(err, f"create topic {name!r}")
        self._forget(name)
        return True

    def delete_topic(self, name: str) -> None:
        self._check(
            self._lib.rd_kafka_mock_topic_delete(self._live(), name.encode()),
            f"delete topic {name!r}",
        )
        self._forget(name)

    def delete_records(self, name: str, partition: int, before: int) -> None:
        """Move the partition's start offset to ``before``."""
        err = self._lib.rd_kafka_mock_partition_delete_records(
            self._live(), name.encode(), partition, before
        )
        self._check(err, f"delete records of {name}[{partition}] before {before}")
        with self._lock:
            where = (name, partition)
            self._starts[where] = max(self._starts.get(where, 0), before)

    def dropped(self, name: str, partition: int, start: int) -> range:
        """The offsets the mock dropped on its own, given the partition's ``start`` now.

        Offsets before the start that :meth:`delete_records` did not delete were dropped
        for room (see the module's notes on capacity). Each drop is reported once: the
        next call counts from ``start``.
        """
        with self._lock:
            where = (name, partition)
            known = self._starts.get(where, 0)
            if start <= known:
                return range(0)
            self._starts[where] = start
            return range(known, start)

    def close(self) -> None:
        with _registry_lock:
            if _running.get(self.bootstrap_servers) is self:
                del _running[self.bootstrap_servers]
        if self._cluster:
            self._lib.rd_kafka_mock_cluster_destroy(self._cluster)
            self._cluster = None
            self._lib.rd_kafka_destroy(self._rk)

    def _forget(self, name: str) -> None:
        with self._lock:
            for where in [w for w in self._starts if w[0] == name]:
                del self._starts[where]

    def _live(self) -> int:
        if not self._cluster:
            raise BackendError("the Kafka mock cluster is closed")
        return int(self._cluster)

    def _check(self, err: int, action: str) -> None:
        if err:
            reason = self._lib.rd_kafka_err2str(err).decode()
            raise BackendError(f"Kafka mock cluster: {action} failed: {reason}")


def _library() -> ctypes.CDLL:
    """The librdkafka bundled with confluent-kafka (or the system's), typed."""
    import confluent_kafka

    package = os.path.dirname(confluent_kafka.__file__)
    candidates = [
        *glob.glob(os.path.join(package, os.pardir, "confluent_kafka.libs", "librdkafka*")),
        *glob.glob(os.path.join(package, ".dylibs", "librdkafka*")),
        *glob.glob(os.path.join(package, "librdkafka*.dll")),
    ]
    system = ctypes.util.find_library("rdkafka")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "rd_kafka_mock_partition_delete_records"):
            return _declare(lib)
    raise ConfigError(
        "kafka+mock:// needs a librdkafka with the mock cluster's control API "
        "(rd_kafka_mock_partition_delete_records); upgrade confluent-kafka"
    )


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, s, i, i64 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int64
    signatures: dict[str, tuple[list[type], type | None]] = {
        "rd_kafka_conf_new": ([], p),
        "rd_kafka_conf_set": ([p, s, s, s, ctypes.c_size_t], i),
        "rd_kafka_conf_destroy": ([p], None),
        "rd_kafka_new": ([i, p, s, ctypes.c_size_t], p),
        "rd_kafka_destroy": ([p], None),
        "rd_kafka_err2str": ([i], s),
        "rd_kafka_mock_cluster_new": ([p, i], p),
        "rd_kafka_mock_cluster_destroy": ([p], None),
        "rd_kafka_mock_cluster_bootstraps": ([p], s),
        "rd_kafka_mock_topic_create": ([p, s, i, i], i),
        "rd_kafka_mock_topic_delete": ([p, s], i),
        "rd_kafka_mock_partition_delete_records": ([p, s, ctypes.c_int32, i64], i),
    }
    for name, (args, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = args
        function.restype = result
    return lib
