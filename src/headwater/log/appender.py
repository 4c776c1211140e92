"""A background appender: events queued from the hot path, appended in batches.

Components that log as a side effect of answering (the prediction log, the decision
log) must never make a request wait for the log. :class:`BatchAppender` takes a row per
event (a struct of :mod:`headwater.log.system`; :meth:`~BatchAppender.record`: a bounded
``deque.append``, no lock) and a background thread turns the queued rows into one Arrow
batch with the subclass's
:meth:`~BatchAppender.encode` and appends it every ``flush_ms``, or as soon as
``batch_events`` are waiting. When the queue is full an event is dropped and counted
(``dropped``), never blocked on; a failed append is counted (``failed``) and its events
dropped; what is still queued at :meth:`~BatchAppender.close` is flushed.

Each appender is an idempotent producer of its own: its batches carry a producer id
unique to the appender (its ``name``, the host, the process and a random part) and a
sequence that grows by one per batch. Several processes logging to one topic (the
workers of ``headwater serve --workers N``) never share sequences, and an append that
failed on the way (a timeout after the log applied it) is retried once with the same
sequence, so it lands once, not twice.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections import deque
from typing import Generic, TypeVar

import pyarrow as pa

from headwater.log.log import Log

__all__ = ["BatchAppender"]

E = TypeVar("E")


class BatchAppender(Generic[E]):
    """Appends queued events to ``topic`` of ``log`` in batches (see the module)."""

    def __init__(self, log: Log, topic: str, *, capacity: int = 100_000,
                 batch_events: int = 1_000, flush_ms: float = 50.0,
                 name: str = "headwater-appender") -> None:
        self.log = log
        self.topic = topic
        self.capacity = capacity
        self.batch_events = batch_events
        self.flush_s = flush_ms / 1000.0
        self.dropped = 0
        self.failed = 0
        self.logged = 0
        #: This appender's producer id (see the module).
        self.producer_id = f"{name}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._sequence = 0
        self._queue: deque[E] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._flush_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def encode(self, events: list[E]) -> pa.RecordBatch:
        """The events as one batch of the topic's schema."""
        raise NotImplementedError

    def _put(self, event: E) -> None:
        """Queue one event; never blocks (a full queue drops it and counts)."""
        queue = self._queue
        if len(queue) >= self.capacity or self._closed:
            self.dropped += 1
            return
        queue.append(event)
        if len(queue) == self.batch_events:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Events queued and not yet appended."""
        return len(self._queue)

    def flush(self) -> int:
        """Append every queued event now (from any thread); the number appended."""
        total = 0
        with self._flush_lock:
            while self._queue:
                events: list[E] = []
                pop = self._queue.popleft
                try:
                    for _ in range(max(self.batch_events, 1)):
                        events.append(pop())
                except IndexError:
                    pass
                total += self._append(events)
        return total

    def _append(self, events: list[E]) -> int:
        try:
            batch = self.encode(events)
        except Exception:  # an event would not encode: count the loss
            self.failed += len(events)
            return 0
        self._sequence += 1
        for attempt in (1, 2):
            try:
                self.log.append(self.topic, batch, producer_id=self.producer_id,
                                sequence=self._sequence)
                break
            except Exception:  # the log is away: retry once, then count the loss
                if attempt == 2:
                    self.failed += len(events)
                    return 0
        self.logged += len(events)
        return len(events)

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_s)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Stop the thread after flushing what is queued."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join()
        self.flush()
