"""The central log: topics of partitioned, schema-checked, time-stamped events.

:class:`Log` is the same for every backend. It validates each appended batch against
the topic's schema, sends rejected events to the topic's dead-letter topic, splits the
valid ones by key hash into partitions, and hands each partition's share to the backend.

>>> from headwater.log import Log, Schema
>>> from headwater.testing import MemoryBackend
>>> log = Log(MemoryBackend())
>>> schema = Schema.of({"user": "string", "amount": "float64", "ts": "timestamp"},
...                    key="user", event_time="ts")
>>> _ = log.create_topic("payments", schema, partitions=2)
>>> result = log.append("payments", [
...     {"user": "ada", "amount": 3.5, "ts": "2024-01-01T00:00:00Z"},
...     {"user": "bob", "amount": "lots", "ts": "2024-01-01T00:00:00Z"},
... ])
>>> result.accepted, [(r.field, r.reason) for r in result.rejected]
(1, [('amount', 'Expected `float`, got `str`')])
>>> log.read("payments.dlq", 0).batch.column("reason").to_pylist()
['Expected `float`, got `str`']

Retention is enforced as the log is written: an append (or a dead letter) applies the
topic's retention when ``retention_every_s`` has passed since this ``Log`` last did for
that topic, so a topic a component keeps appending to stays bounded without anyone
asking (:meth:`Log.enforce_retention` still does it on request). The topics components
create for themselves with :meth:`Log.ensure_topic` (predictions, decisions, outcomes,
training examples, late outcomes) and every dead-letter topic get ``system_retention``
when they are created.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final

import numpy as np
import pyarrow as pa

from headwater.errors import (
    HeadwaterError,
    PayloadTooLargeError,
    TopicExistsError,
    UnknownPartitionError,
    UnknownTopicError,
    ValidationError,
)
from headwater.log.backend import LogBackend, Producer
from headwater.log.consumer import Consumer, Reset
from headwater.log.partitioner import partition_of
from headwater.log.records import (
    DEAD_LETTER_SCHEMA,
    DEAD_LETTER_SUFFIX,
    AppendResult,
    Fetched,
    PartitionAppend,
    Rejection,
    Retention,
    TopicInfo,
    dead_letter_topic,
    row_numbers,
)
from headwater.log.schema import Schema
from headwater.log.validation import DEFAULT_MAX_EVENT_BYTES, Events, validate
from headwater.time import Clock, SystemClock

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["DEFAULT_MAX_BATCH_BYTES", "DEFAULT_RETENTION_EVERY_S", "Log"]

#: A single append larger than this is refused whole.
DEFAULT_MAX_BATCH_BYTES: Final = 256 << 20
#: How often a Log applies a topic's retention as it appends to it.
DEFAULT_RETENTION_EVERY_S: Final = 30.0
_LOG: Final = logging.getLogger("headwater.log")
_TOPIC_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_MAX_PARTITIONS: Final = 1024


class Log:
    """Topics, appends, reads, seeks and consumer groups over one backend.

    ``system_retention`` is the retention of the topics :meth:`ensure_topic` creates and
    of dead-letter topics (default: keep everything); ``retention_every_s`` how often
    appends apply a topic's retention (see the module docstring).
    """

    def __init__(
        self,
        backend: LogBackend,
        *,
        clock: Clock | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        system_retention: Retention | None = None,
        retention_every_s: float = DEFAULT_RETENTION_EVERY_S,
    ) -> None:
        if not retention_every_s > 0:
            raise ValidationError("retention_every_s", f"must be positive, got "
                                  f"{retention_every_s!r}")
        self.backend = backend
        self.clock: Clock = clock or SystemClock()
        self.max_event_bytes = max_event_bytes
        self.max_batch_bytes = max_batch_bytes
        self.system_retention = system_retention or Retention()
        self.retention_every_us = int(retention_every_s * 1_000_000)
        self.retention_errors = 0
        self._round_robin = itertools.count()
        self._retention_due: dict[str, int] = {}

    # -- topics ----------------------------------------------------------------

    def create_topic(
        self,
        name: str,
        schema: Schema,
        *,
        partitions: int = 1,
        retention: Retention | None = None,
    ) -> TopicInfo:
        """Create a topic (and its dead-letter topic). Creating it again with the same
        definition returns it; a different definition raises
        :class:`~headwater.errors.TopicExistsError`."""
        _check_topic_name(name)
        if not isinstance(partitions, int) or not 1 <= partitions <= _MAX_PARTITIONS:
            raise ValidationError(
                "partitions", f"expected 1..{_MAX_PARTITIONS}, got {partitions!r}"
            )
        info = self.backend.create_topic(
            TopicInfo(name, partitions, schema, retention or Retention())
        )
        if not name.endswith(DEAD_LETTER_SUFFIX):
            self._ensure_dead_letters(dead_letter_topic(name))
        return info

    def _ensure_dead_letters(self, dlq: str) -> None:
        """The dead-letter topic, created with the system retention if it is missing (an
        existing one keeps whatever retention it has)."""
        try:
            self.backend.topic(dlq)
        except UnknownTopicError:
            try:
                self.backend.create_topic(
                    TopicInfo(dlq, 1, DEAD_LETTER_SCHEMA, self.system_retention))
            except TopicExistsError:  # created meanwhile, with another retention
                if self.backend.topic(dlq).schema != DEAD_LETTER_SCHEMA:
                    raise

    def ensure_topic(self, name: str, schema: Schema, *, partitions: int = 1) -> TopicInfo:
        """The topic ``name``, created with ``schema``, ``partitions`` and the system
        retention if it is missing. An existing topic is kept whatever its partition count
        and retention, but its schema must be ``schema``
        (:class:`~headwater.errors.TopicExistsError` otherwise): what a component calls at
        start-up for the topics it writes."""
        try:
            info = self.backend.topic(name)
        except UnknownTopicError:
            try:
                return self.create_topic(name, schema, partitions=partitions,
                                         retention=self.system_retention)
            except TopicExistsError:  # created meanwhile by another component
                info = self.backend.topic(name)
        if info.schema != schema:
            raise TopicExistsError(f"topic {name!r} exists with another schema than expected")
        return info

    def set_retention(self, topic: str, retention: Retention) -> TopicInfo:
        """Change how long ``topic`` keeps events; applied at once, and by every writer of
        the topic within its ``retention_every_s``."""
        for name, value in (("max_age_us", retention.max_age_us),
                            ("max_bytes", retention.max_bytes)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value <= 0):
                raise ValidationError(f"retention.{name}", f"expected a positive int or "
                                      f"None, got {value!r}")
        info = self.backend.set_retention(topic, retention)
        self.backend.enforce_retention(topic)
        return info

    def delete_topic(self, name: str) -> None:
        """Delete a topic, its dead-letter topic and all their events."""
        self.backend.delete_topic(name)
        dlq = dead_letter_topic(name)
        if any(t.name == dlq for t in self.backend.topics()):
            self.backend.delete_topic(dlq)

    def topic(self, name: str) -> TopicInfo:
        return self.backend.topic(name)

    def topics(self) -> list[TopicInfo]:
        return sorted(self.backend.topics(), key=lambda t: t.name)

    # -- appending -------------------------------------------------------------

    def append(
        self,
        topic: str,
        events: Events,
        *,
        producer_id: str | None = None,
        sequence: int | None = None,
        numbers: Sequence[int] | None = None,
    ) -> AppendResult:
        """Validate and append a batch; return where each event went.

        With ``producer_id`` and ``sequence`` the append is idempotent: a batch retried
        with the same (or an older) sequence number is not stored twice. Sequence
        numbers of one producer increase from batch to batch; gaps are allowed.

        ``numbers`` numbers the events for the dead-letter records (a file's line
        numbers, say): a rejected event ``i`` is kept with index ``numbers[i]`` rather than
        its position in the batch. The returned rejections keep batch positions.
        """
        info = self.backend.append_target(topic)
        producer = _producer(producer_id, sequence)
        if (isinstance(events, (pa.RecordBatch, pa.Table))
                and events.get_total_buffer_size() > self.max_batch_bytes):
            raise PayloadTooLargeError(
                "events", f"a batch of {events.get_total_buffer_size()} bytes is over the limit of "
                f"{self.max_batch_bytes}; split it"
            )
        checked = validate(info.schema, events, max_event_bytes=self.max_event_bytes)
        total = len(checked.index) + len(checked.rejections)
        placed: list[PartitionAppend] = []
        batch = checked.batch
        whole = _whole_batch(info, batch, producer, self._round_robin, checked.rejections)
        if whole is not None:
            placement = self.backend.append(topic, whole, batch, producer)
            self._keep_bounded(topic)
            offsets = (row_numbers(total) + placement.base_offset
                       if placement.base_offset >= 0 else np.full(total, -1, dtype=np.int64))
            return AppendResult(
                topic=topic, partitions=np.full(total, whole, dtype=np.int32), offsets=offsets,
                append_time=placement.append_time, duplicate=placement.duplicate,
            )
        partitions = np.full(total, -1, dtype=np.int32)
        offsets = np.full(total, -1, dtype=np.int64)
        if batch.num_rows:
            parts = self._partitions_of(info, batch, producer)
            for p, rows, part in _split(batch, parts, info.partitions):
                placement = self.backend.append(topic, p, part, producer)
                placed.append(placement)
                where = checked.index[rows]
                partitions[where] = p
                if placement.base_offset >= 0:
                    offsets[where] = placement.base_offset + np.arange(
                        len(rows), dtype=np.int64
                    )
        if checked.rejections:
            kept = checked.rejections if numbers is None else [
                Rejection(int(numbers[r.index]), r.field, r.reason, r.payload)
                for r in checked.rejections]
            self.dead_letter(topic, kept, producer_id=producer_id, sequence=sequence)
        if placed:
            self._keep_bounded(topic)
        return AppendResult(
            topic=topic,
            partitions=partitions,
            offsets=offsets,
            append_time=max((p.append_time for p in placed), default=self.clock.now_us()),
            rejected=checked.rejections,
            duplicate=bool(placed) and all(p.duplicate for p in placed),
        )

    def _partitions_of(
        self, info: TopicInfo, batch: pa.RecordBatch, producer: Producer | None
    ) -> np.ndarray:
        n = info.partitions
        if n == 1:
            return np.zeros(batch.num_rows, dtype=np.int32)
        if info.schema.key is not None:
            return partition_of(batch.column(info.schema.key), n)
        # No key: the whole batch goes to one partition, chosen so a retry picks the same.
        turn = producer.sequence if producer else next(self._round_robin)
        return np.full(batch.num_rows, turn % n, dtype=np.int32)

    def dead_letter(
        self,
        topic: str,
        rejections: Sequence[Rejection],
        *,
        producer_id: str | None = None,
        sequence: int | None = None,
    ) -> bool:
        """Keep rejected events of ``topic`` in its dead-letter topic with their reasons.

        ``append`` does this for events that fail validation; other stages use it for
        what they reject later (a feature engine's late events, a file's unreadable
        records). With ``producer_id`` and ``sequence`` it is idempotent like ``append``:
        the result is ``False`` when the batch was a duplicate and nothing was stored.
        """
        producer = _producer(producer_id, sequence)
        now = self.clock.now_us()
        rows = [
            {"topic": topic, "index": r.index, "field": r.field, "reason": r.reason,
             "payload": r.payload, "rejected_at": now}
            for r in rejections
        ]
        dlq = dead_letter_topic(topic)
        # A dead letter holds the rejected payload (at most the event limit) and context.
        limit = 2 * self.max_event_bytes + 4096
        checked = validate(DEAD_LETTER_SCHEMA, rows, max_event_bytes=limit)
        stored = not self.backend.append(dlq, 0, checked.batch, producer).duplicate
        self._keep_bounded(dlq)
        return stored

    # -- reading ---------------------------------------------------------------

    def read(self, topic: str, partition: int, offset: int = 0, max_events: int = 10_000
             ) -> Fetched:
        """Up to ``max_events`` events of one partition from ``offset``.

        Raises :class:`~headwater.errors.UnknownPartitionError` (from the backend, which
        checks the partition in the same round trip as the read).
        """
        if max_events <= 0:
            raise ValidationError("max_events", "must be positive")
        batch = self.backend.read(topic, partition, offset, max_events)
        return Fetched(topic, partition, batch, offset + batch.num_rows)

    def replay(
        self,
        topic: str,
        partitions: Sequence[int] | None = None,
        *,
        start: int | None = None,
        stop: int | None = None,
        max_events: int = 100_000,
    ) -> Iterator[Fetched]:
        """Every event of the partitions from ``start`` (default: the first kept) up to
        ``stop`` (default: the end when the replay reaches that partition), one
        partition after another, in batches of at most ``max_events``."""
        info = self.backend.topic(topic)
        chosen = range(info.partitions) if partitions is None else partitions
        for p in chosen:
            self._check_partition(topic, p)
            first, end = self.backend.offsets(topic, p)
            offset = first if start is None else start
            last = end if stop is None else min(stop, end)
            while offset < last:
                batch = self.backend.read(topic, p, offset, min(max_events, last - offset))
                if not batch.num_rows:
                    break
                offset += batch.num_rows
                yield Fetched(topic, p, batch, offset)

    def read_table(
        self,
        topic: str,
        partitions: Sequence[int] | None = None,
        *,
        start: int | None = None,
        stop: int | None = None,
    ) -> pa.Table:
        """The events :meth:`replay` yields for the same arguments, as one table with the
        topic's stored schema (its fields and the system columns): partition after
        partition, in offset order. An empty topic or range gives an empty table of
        that schema."""
        schema = self.backend.topic(topic).schema.stored_schema()
        batches = [fetched.batch for fetched in
                   self.replay(topic, partitions, start=start, stop=stop)]
        return pa.Table.from_batches(batches, schema=schema)

    def start_offsets(self, topic: str) -> list[int]:
        return [self.backend.offsets(topic, p)[0] for p in range(self.topic(topic).partitions)]

    def end_offsets(self, topic: str) -> list[int]:
        return [self.backend.offsets(topic, p)[1] for p in range(self.topic(topic).partitions)]

    def seek(
        self,
        topic: str,
        partition: int,
        *,
        event_time: int | None = None,
        append_time: int | None = None,
    ) -> int:
        """The first offset at or after an event time or an append time (µs)."""
        self._check_partition(topic, partition)
        if (event_time is None) == (append_time is None):
            raise ValidationError("seek", "give exactly one of event_time and append_time")
        if event_time is not None:
            return self.backend.seek_event_time(topic, partition, event_time)
        assert append_time is not None
        return self.backend.seek_append_time(topic, partition, append_time)

    # -- consumer groups -------------------------------------------------------

    def consumer(
        self,
        group: str,
        topics: str | Sequence[str],
        *,
        member: str | None = None,
        reset: Reset = "earliest",
    ) -> Consumer:
        """Join ``group`` to read ``topics``; the group is created on first commit."""
        names = [topics] if isinstance(topics, str) else list(topics)
        return Consumer(self.backend, group, names, member=member, reset=reset)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offsets for ``topic``."""
        self.backend.topic(topic)
        return self.backend.committed(group, topic)

    def lag(self, group: str, topic: str) -> dict[int, int]:
        """Per partition, the events the group has not committed yet."""
        committed = self.committed(group, topic)
        lag = {}
        for p in range(self.topic(topic).partitions):
            start, end = self.backend.offsets(topic, p)
            lag[p] = end - max(committed.get(p, start), start)
        return lag

    def groups(self) -> list[str]:
        return sorted(self.backend.groups())

    # -- housekeeping ----------------------------------------------------------

    def enforce_retention(self, topic: str | None = None) -> int:
        """Apply retention to one topic or all; return the number of events dropped."""
        names = [topic] if topic is not None else [t.name for t in self.backend.topics()]
        return sum(self.backend.enforce_retention(name) for name in names)

    def _keep_bounded(self, topic: str) -> None:
        """Apply ``topic``'s retention if ``retention_every_s`` has passed since the last
        time. The append that got here is stored: a failure here is counted
        (``retention_errors``) and logged, not raised, and tried again next time."""
        now = self.clock.now_us()
        if now < self._retention_due.get(topic, -1):
            return
        self._retention_due[topic] = now + self.retention_every_us
        try:
            self.backend.enforce_retention(topic)
        except HeadwaterError as exc:
            self.retention_errors += 1
            _LOG.warning("applying the retention of %r failed: %s", topic, exc)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _check_partition(self, topic: str, partition: int) -> None:
        count = self.backend.topic(topic).partitions
        if not isinstance(partition, int) or not 0 <= partition < count:
            raise UnknownPartitionError(
                f"{topic!r} has partitions 0..{count - 1}, not {partition!r}"
            )


def _check_topic_name(name: str) -> None:
    if not isinstance(name, str) or not _TOPIC_NAME.match(name):
        raise ValidationError(
            "topic", f"{name!r} is not a topic name: letters, digits, '.', '_', '-', "
            "at most 200, starting with a letter or digit"
        )


def _producer(producer_id: str | None, sequence: int | None) -> Producer | None:
    if producer_id is None and sequence is None:
        return None
    if producer_id is None or sequence is None:
        raise ValidationError("producer_id", "give both producer_id and sequence, or neither")
    if not producer_id or len(producer_id) > 200:
        raise ValidationError("producer_id", "expected 1..200 characters")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise ValidationError("sequence", f"expected an int >= 0, got {sequence!r}")
    return Producer(producer_id, sequence)


def _whole_batch(info: TopicInfo, batch: pa.RecordBatch, producer: Producer | None,
                 round_robin: itertools.count[int], rejections: tuple[Rejection, ...]
                 ) -> int | None:
    """The partition of the whole batch when it all goes to one and nothing was
    rejected (the common case, answered without per-row work); else ``None``."""
    if rejections or not batch.num_rows:
        return None
    if info.partitions == 1:
        return 0
    if info.schema.key is None:
        return (producer.sequence if producer else next(round_robin)) % info.partitions
    return None


def _split(
    batch: pa.RecordBatch, parts: np.ndarray, partitions: int
) -> Iterator[tuple[int, np.ndarray, pa.RecordBatch]]:
    """Each partition's rows (input order kept) as (partition, row numbers, batch)."""
    if partitions == 1 or (parts[0] == parts).all():
        yield int(parts[0]), np.arange(batch.num_rows), batch
        return
    small = np.uint8 if partitions <= 256 else np.uint16 if partitions <= 65536 else parts.dtype
    order = np.argsort(parts.astype(small, copy=False), kind="stable")  # a radix sort
    counts = np.bincount(parts, minlength=partitions)
    ordered = batch.take(pa.array(order))
    lo = 0
    for p, count in enumerate(counts.tolist()):
        if count:
            yield p, order[lo: lo + count], ordered.slice(lo, count)
            lo += count

