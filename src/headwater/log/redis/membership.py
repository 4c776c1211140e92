"""Consumer-group membership kept alive by heartbeats on the Redis server.

The members of a group are a sorted set: member → the server time (ms) of its last
heartbeat. Every :meth:`GroupMembership.assigned` call is a heartbeat; a member silent
for longer than the session timeout is dropped by the next heartbeat of anyone in the
group, so the partitions of a crashed consumer move to the others within that time.
Liveness uses the server's clock (``TIME``), never the log's injected clock, so members
on machines with skewed clocks agree.

Members sorted by name, the member of rank ``r`` among ``m`` owns partitions
``r, r + m, r + 2m, …``: the same rule as the in-memory backend.
"""

from __future__ import annotations

from headwater.log.redis.client import Redis, Script, failures
from headwater.log.redis.scripts import HEARTBEAT

__all__ = ["GroupMembership"]


class GroupMembership:
    """One member of one consumer group (made by ``RedisBackend.join``)."""

    def __init__(
        self, client: Redis, key: str, member: str, *, timeout_ms: int, where: str
    ) -> None:
        self._client = client
        self._key = key
        self._member = member
        self._timeout_ms = timeout_ms
        self._where = where
        self._heartbeat: Script = client.register_script(HEARTBEAT)
        self.alive()

    def alive(self) -> list[str]:
        """Send a heartbeat; the members alive now, sorted."""
        ttl_ms = 10 * self._timeout_ms
        with failures(self._where, f"heartbeat of {self._member!r}"):
            raw = self._heartbeat(
                keys=[self._key], args=[self._member, self._timeout_ms, ttl_ms]
            )
        return sorted(m.decode() for m in raw)

    def assigned(self, topic: str, partitions: int) -> list[int]:
        members = self.alive()
        rank = members.index(self._member)
        return list(range(rank, partitions, len(members)))

    def close(self) -> None:
        """Leave the group now rather than after the session timeout."""
        with failures(self._where, f"leaving of {self._member!r}"):
            self._client.zrem(self._key, self._member)
