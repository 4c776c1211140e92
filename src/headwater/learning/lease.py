"""The lease a trainer holds: one active trainer per model.

Two trainers of one model would each publish a chain of versions from the same parent,
learn every example twice, and make the champion flip between their branches. So a
trainer first takes the model's lease in the model store
(:meth:`~headwater.registry.ModelRegistry.acquire_lease`), renews it while it runs, and
registers and promotes its versions under it: the store records them only while the
lease is still this trainer's, so one that lost it (stopped, or paused past its lease)
never adds a branch.

A second trainer of the model meets the holder's lease. It either waits as a *standby*
— trying again until the lease is released or runs out, then taking over from the
version the alias points at — or refuses at once with a
:class:`~headwater.errors.LeaseHeldError` that names the holder and when its lease runs
out (``headwater train --standby`` or ``--no-standby``; standby is the default, so a
second trainer started for high availability takes over when the first dies).

>>> from headwater.registry import LocalArtifacts, MemoryRegistryBackend, ModelRegistry
>>> from headwater.testing import ManualClock
>>> import tempfile
>>> clock = ManualClock(1_700_000_000_000_000)
>>> registry = ModelRegistry(MemoryRegistryBackend(), LocalArtifacts(tempfile.mkdtemp()),
...                          clock=clock)
>>> first = TrainerLease(registry, "churn", holder="host-a:41", ttl_us=30_000_000)
>>> first.acquire(wait=False)
Lease(model='churn', holder='host-a:41', epoch=1, expires_at=1700000030000000)
>>> second = TrainerLease(registry, "churn", holder="host-b:7", ttl_us=30_000_000,
...                       sleep=lambda s: clock.advance(int(s * 1e6)))
>>> taken = second.acquire(wait=True, on_wait=lambda e: print("standby: held by", e.holder))
standby: held by host-a:41
>>> taken is not None and (taken.holder, taken.epoch)
('host-b:7', 2)
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

from headwater.errors import LeaseHeldError, ValidationError
from headwater.registry import Lease, ModelRegistry

__all__ = ["DEFAULT_LEASE_US", "TrainerLease", "default_holder"]

#: How long a trainer's lease lasts unless renewed (a standby takes over after it).
DEFAULT_LEASE_US = 30_000_000


def default_holder() -> str:
    """This process, as a lease holder: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class TrainerLease:
    """The lease of model ``name`` for ``holder`` (default: this process), lasting
    ``ttl_us`` (µs, by the registry's clock) from each renewal."""

    def __init__(self, registry: ModelRegistry, name: str, *, holder: str | None = None,
                 ttl_us: int = DEFAULT_LEASE_US,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if ttl_us <= 0:
            raise ValidationError("ttl_us", f"expected a positive duration, got {ttl_us!r}")
        self.registry = registry
        self.name = name
        self.holder = holder or default_holder()
        self.ttl_us = ttl_us
        self._sleep = sleep
        self._lease: Lease | None = None
        self._renewed_at = 0

    @property
    def held(self) -> Lease | None:
        """The lease, once acquired (``None`` before, and after :meth:`release`)."""
        return self._lease

    @property
    def current(self) -> Lease:
        """The lease held (after :meth:`acquire`), to register and promote under."""
        if self._lease is None:
            raise ValidationError("lease", f"the lease of model {self.name!r} is not held; "
                                  "acquire it first")
        return self._lease

    def acquire(self, *, wait: bool,
                on_wait: Callable[[LeaseHeldError], None] | None = None,
                stop: threading.Event | None = None) -> Lease | None:
        """Take the lease. Held by another: with ``wait``, say so once through
        ``on_wait`` and try again until it is released or runs out (or until ``stop`` is
        set: then ``None``); without, raise the
        :class:`~headwater.errors.LeaseHeldError` naming the holder."""
        said = False
        sleep = self._sleep if stop is None else stop.wait
        while stop is None or not stop.is_set():
            try:
                self._lease = self.registry.acquire_lease(self.name, self.holder,
                                                          ttl_us=self.ttl_us)
            except LeaseHeldError as held:
                if not wait:
                    raise
                if on_wait is not None and not said:
                    on_wait(held)
                    said = True
                left = held.expires_at - self.registry.clock.now_us()
                sleep(min(max(left, 0), self.ttl_us // 3) / 1e6 + 0.05)
                continue
            self._renewed_at = self.registry.clock.now_us()
            return self._lease
        return None

    def renew(self) -> Lease:
        """Extend the lease once a third of it has passed (a no-op before);
        :class:`~headwater.errors.FencedError` if another trainer has taken it over."""
        lease = self.current
        now = self.registry.clock.now_us()
        if now - self._renewed_at >= self.ttl_us // 3:
            self._lease = self.registry.renew_lease(lease, ttl_us=self.ttl_us)
            self._renewed_at = now
        return self.current

    def release(self) -> None:
        """Let the lease go, so a standby takes over at once."""
        if self._lease is not None:
            self.registry.release_lease(self._lease)
            self._lease = None
