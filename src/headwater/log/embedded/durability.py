"""When appends become durable: the fsync policies of the embedded log.

- ``always``: every append calls ``fdatasync`` before it is acknowledged.
- ``group``: group commit. An append waits until an ``fdatasync`` that started after its
  write has finished. The first waiter becomes the leader: it waits until at least
  ``group_commit_ms`` have passed since the previous sync (gathering the appends that
  arrive meanwhile, from any thread), syncs every partition written since, and wakes
  them all. Many concurrent appends share one sync; a lone append waits at most the
  interval.
- ``never``: appends survive the process being killed (the data is in the page cache),
  not a power cut.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from headwater.errors import ConfigError
from headwater.fsync import FsyncPolicy, syncs

__all__ = ["Durability", "Syncable"]


class Syncable(Protocol):
    def sync(self) -> None: ...


class Durability:
    """Applies one fsync policy to the partitions of a log."""

    def __init__(self, policy: FsyncPolicy, group_commit_ms: float) -> None:
        syncs(policy)  # checks it
        if group_commit_ms < 0:
            raise ConfigError("group_commit_ms: must be >= 0")
        self.policy = policy
        self._interval = group_commit_ms / 1000
        self._cond = threading.Condition()
        self._dirty: dict[int, Syncable] = {}
        self._written = 0  # tickets handed out to writes
        self._synced = 0  # every write with a ticket <= this is durable
        self._leader = False
        self._last_sync = 0.0

    def after_write(self, target: Syncable) -> None:
        """Return once the write just made to ``target`` is durable under the policy."""
        if self.policy == "never":
            return
        if self.policy == "always":
            target.sync()
            return
        with self._cond:
            self._written += 1
            ticket = self._written
            self._dirty[id(target)] = target
            while self._synced < ticket:
                if self._leader:
                    self._cond.wait()
                    continue
                self._leader = True
                try:
                    self._lead()
                finally:
                    self._leader = False
                    self._cond.notify_all()

    def _lead(self) -> None:
        """Sync everything written so far, no sooner than the interval allows."""
        wait = self._last_sync + self._interval - time.monotonic()
        if wait > 0:
            self._cond.wait(wait)  # releases the lock: more writes join this sync
        covered, targets = self._written, list(self._dirty.values())
        self._dirty.clear()
        self._cond.release()
        try:
            for target in targets:
                target.sync()
        finally:
            self._cond.acquire()
        self._last_sync = time.monotonic()
        self._synced = max(self._synced, covered)
