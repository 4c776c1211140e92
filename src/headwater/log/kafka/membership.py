"""Group membership by leases in a compacted topic, not by Kafka's rebalance protocol.

Each member writes a heartbeat (its key, the time) to the members table when it joins
and again whenever a third of its lease has passed at a check; it writes a tombstone
when it leaves. At every check (every poll) a member reads the table to its end,
takes the live members of its group (those whose heartbeat is younger than the lease,
itself always included), sorts them by name, and owns the partitions
``rank, rank + n, rank + 2n, ...`` of each topic. A join or a leave is therefore seen by
every other member at its very next check, and a member that crashes without leaving
hands its partitions over when its lease runs out. Leases run on the backend's clock.

Why not Kafka's own group protocol? Its rebalances are asynchronous: the other members
learn of a join or a leave at their next heartbeat and get new assignments after a
rebalance delay, so "after ``b`` leaves, ``a`` owns everything" would hold only
eventually, and :class:`~headwater.log.backend.Membership` promises it at the next
check. Like the in-memory backend, this scheme is exclusive once every member has
checked after a change; between a change and a member's next check two members can
both believe they own a partition for at most one poll. Offsets still go to Kafka's
group coordinator (see :mod:`headwater.log.kafka.admin`).
"""

from __future__ import annotations

from typing import Final

import msgspec

from headwater.log.kafka.tables import MEMBERS, Tables
from headwater.time import Clock

__all__ = ["DEFAULT_LEASE_US", "KafkaMembership"]

#: How long a member that stops checking keeps its partitions.
DEFAULT_LEASE_US: Final = 30_000_000


class KafkaMembership:
    """One member's lease in a group (implements :class:`~headwater.log.Membership`)."""

    def __init__(self, tables: Tables, clock: Clock, group: str, member: str,
                 lease_us: int = DEFAULT_LEASE_US) -> None:
        self._tables, self._clock = tables, clock
        self.group, self.member = group, member
        self._lease_us = lease_us
        self._key = msgspec.msgpack.encode((group, member))
        self._beat_at = 0
        self.closed = False
        self._beat(clock.now_us())

    def assigned(self, topic: str, partitions: int) -> list[int]:
        now = self._clock.now_us()
        if not 0 <= now - self._beat_at < self._lease_us // 3:
            self._beat(now)
        else:
            self._tables.refresh(MEMBERS)
        members = self._live(now)
        rank = members.index(self.member)
        return list(range(rank, partitions, len(members)))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._tables.put(MEMBERS, self._key, None)

    def _beat(self, now: int) -> None:
        self._tables.put(MEMBERS, self._key, msgspec.msgpack.encode(now))
        self._beat_at = now

    def _live(self, now: int) -> list[str]:
        live = {self.member}
        for key, value in self._tables.cached(MEMBERS).items():
            group, member = msgspec.msgpack.decode(key)
            if group == self.group and msgspec.msgpack.decode(value) >= now - self._lease_us:
                live.add(member)
        return sorted(live)
