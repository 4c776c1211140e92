"""Consumer groups: poll batches from the partitions a member owns, commit, resume.

A consumer keeps a position per owned partition: the committed offset of its group, or
the start or end of the partition when the group has none (``reset``). ``poll`` reads
from each owned partition in turn; ``commit`` records the positions, so a consumer of
the same group started after a crash resumes there. Delivery is at least once: what was
polled but not committed is read again after a restart.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from headwater.errors import ValidationError
from headwater.log.backend import LogBackend, Membership
from headwater.log.records import Fetched

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Consumer", "Reset"]

Reset = Literal["earliest", "latest"]
TopicPartition = tuple[str, int]


class Consumer:
    """A member of a consumer group reading one or more topics.

    Made by :meth:`headwater.log.Log.consumer`; close it (or use ``with``) to leave the
    group and hand its partitions to the other members.
    """

    def __init__(
        self,
        backend: LogBackend,
        group: str,
        topics: Sequence[str],
        *,
        member: str | None = None,
        reset: Reset = "earliest",
    ) -> None:
        if not group:
            raise ValidationError("group", "a consumer group needs a name")
        if reset not in ("earliest", "latest"):
            raise ValidationError("reset", f"expected 'earliest' or 'latest', got {reset!r}")
        self._backend = backend
        self.group = group
        self.member = member or uuid.uuid4().hex
        self.reset: Reset = reset
        self._partitions = {t: backend.topic(t).partitions for t in topics}
        self._membership: Membership = backend.join(group, self.member)
        self._positions: dict[TopicPartition, int] = {}
        self._cursor = 0
        self._closed = False

    # -- assignment ------------------------------------------------------------

    def assignment(self) -> list[TopicPartition]:
        """The partitions this member owns now, refreshing positions if that changed."""
        owned: list[TopicPartition] = []
        for topic, count in self._partitions.items():
            owned.extend((topic, p) for p in self._membership.assigned(topic, count))
        lost = set(self._positions) - set(owned)
        for tp in lost:
            del self._positions[tp]
        gained = [tp for tp in owned if tp not in self._positions]
        for topic in {t for t, _ in gained}:
            committed = self._committed_or_empty(topic)
            for t, p in gained:
                if t == topic:
                    self._positions[(t, p)] = self._initial_position(t, p, committed.get(p))
        return owned

    def _committed_or_empty(self, topic: str) -> dict[int, int]:
        if self.group not in self._backend.groups():
            return {}
        return self._backend.committed(self.group, topic)

    def _initial_position(self, topic: str, partition: int, committed: int | None) -> int:
        start, end = self._backend.offsets(topic, partition)
        if committed is not None and start <= committed <= end:
            return committed
        if committed is not None and committed < start:
            return start  # retention removed what the group had not read yet
        return start if self.reset == "earliest" else end

    # -- reading ---------------------------------------------------------------

    def poll(self, max_events: int = 10_000, timeout_s: float = 0.0) -> list[Fetched]:
        """Read up to ``max_events`` events from the owned partitions.

        Waits up to ``timeout_s`` for events when none are ready; returns ``[]`` then.
        """
        self._check_open()
        if max_events <= 0:
            raise ValidationError("max_events", "must be positive")
        deadline = time.monotonic() + timeout_s
        pause = 0.0005
        while True:
            out = self._poll_once(max_events)
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.02)

    def _poll_once(self, max_events: int) -> list[Fetched]:
        owned = self.assignment()
        out: list[Fetched] = []
        budget = max_events
        n = len(owned)
        for i in range(n):
            if budget <= 0:
                break
            topic, partition = owned[(self._cursor + i) % n]
            while budget > 0:  # as much of this partition as the budget takes
                position = self._positions[(topic, partition)]
                batch = self._backend.read(topic, partition, position, budget)
                if not batch.num_rows:
                    break
                self._positions[(topic, partition)] = position + batch.num_rows
                out.append(Fetched(topic, partition, batch, position + batch.num_rows))
                budget -= batch.num_rows
        self._cursor = (self._cursor + 1) % max(n, 1)
        return out

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Move the position of an owned partition (the next poll reads from there)."""
        self.assignment()
        if (topic, partition) not in self._positions:
            raise ValidationError("partition", f"{topic}[{partition}] is not owned by this member")
        start, end = self._backend.offsets(topic, partition)
        if not start <= offset <= end:
            raise ValidationError("offset", f"{offset} is outside [{start}, {end}]")
        self._positions[(topic, partition)] = offset

    def position(self, topic: str, partition: int) -> int:
        """The next offset this member reads from an owned partition."""
        self.assignment()
        if (topic, partition) not in self._positions:
            raise ValidationError("partition", f"{topic}[{partition}] is not owned by this member")
        return self._positions[(topic, partition)]

    def positions(self) -> dict[TopicPartition, int]:
        self.assignment()
        return dict(self._positions)

    # -- committing ------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit the current positions (or the given offsets) of owned partitions."""
        self._check_open()
        chosen = dict(self._positions) if offsets is None else dict(offsets)
        by_topic: dict[str, dict[int, int]] = {}
        for (topic, partition), offset in chosen.items():
            if (topic, partition) not in self._positions:
                raise ValidationError(
                    "offsets", f"{topic}[{partition}] is not owned by this member"
                )
            by_topic.setdefault(topic, {})[partition] = offset
        for topic, parts in by_topic.items():
            self._backend.commit(self.group, topic, parts)

    def lag(self) -> dict[TopicPartition, int]:
        """Events between each owned partition's position and its end."""
        self.assignment()
        return {tp: self._backend.offsets(*tp)[1] - pos for tp, pos in self._positions.items()}

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._membership.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ValidationError("consumer", "this consumer is closed")
