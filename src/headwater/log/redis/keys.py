"""Where the Redis log backend keeps things: every key lives under one prefix.

==========================================  =======================================
key                                         holds
==========================================  =======================================
``<prefix>:topics``                         hash: topic name → TopicInfo JSON
``<prefix>:groups``                         set: consumer groups that committed
``<prefix>:offsets:<topic>:<group>``        hash: partition → committed offset
``<prefix>:members:<group>``                sorted set: member → last heartbeat (ms)
``<prefix>:p:<topic>:<partition>:log``      stream: one entry (frame) per append
``<prefix>:p:<topic>:<partition>:idx``      stream: the same IDs, metadata only
``<prefix>:p:<topic>:<partition>:meta``     hash: start, end, append_time, bytes
``<prefix>:p:<topic>:<partition>:pid``      hash: producer → recent placements
``<prefix>:p:<topic>:<partition>:parked``   the log stream, only inside a refused append
==========================================  =======================================

Topic names never hold ``:`` (the log checks them), so a topic always ends at the
next ``:`` and a group name may hold anything.
"""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass
from typing import Final

__all__ = ["Keys", "PartitionKeys"]

_GLOB: Final = re.compile(r"([*?\[\]\\])")


@dataclass(frozen=True, slots=True)
class PartitionKeys:
    """The keys of one partition."""

    log: str
    """The frames: Arrow payload and metadata."""
    index: str
    """The frames' metadata without payload (for seeks and retention)."""
    meta: str
    """start, end, append_time (of the last frame) and bytes (payload kept)."""
    producers: str
    """Each idempotent producer's most recent placements, newest last."""
    parked: str
    """Where a refused append moves the log stream for the length of its transaction."""

    def all(self) -> tuple[str, ...]:
        return astuple(self)


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.topics = f"{prefix}:topics"
        self.groups = f"{prefix}:groups"

    def partition(self, topic: str, partition: int) -> PartitionKeys:
        base = f"{self.prefix}:p:{topic}:{partition}"
        return PartitionKeys(f"{base}:log", f"{base}:idx", f"{base}:meta", f"{base}:pid",
                             f"{base}:parked")

    def offsets(self, group: str, topic: str) -> str:
        return f"{self.prefix}:offsets:{topic}:{group}"

    def members(self, group: str) -> str:
        return f"{self.prefix}:members:{group}"

    def pattern(self) -> str:
        """A SCAN pattern matching every key under the prefix (and nothing else)."""
        return _GLOB.sub(r"\\\1", self.prefix) + ":*"
