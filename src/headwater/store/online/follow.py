"""Following the writer: keep a reader's online store as current as the writer's.

A process that serves features (``headwater serve``) reads the online store that
another process (``headwater features run``) writes. Whether its reads see new writes
depends on the backend:

- Redis: every read is a round trip to the server, so it sees every committed write;
- memory: one process's dict, the writer's own (nothing to follow);
- embedded: a read-only :class:`~headwater.store.online.embedded.EmbeddedOnlineStore`
  holds the state as of its last :meth:`~EmbeddedOnlineStore.refresh`, so it must be
  refreshed to follow the writer.

:class:`StoreFollower` refreshes a store that needs it every ``every_ms`` from a
background thread (``headwater-online-follow``): the request path never waits for the
files (a refresh with nothing new is one ``fstat`` and one ``stat``, a few
microseconds), and reads stay lock-free (the state is copy-on-write). For the other
backends it starts no thread. A refresh that fails (an unreadable file) is logged with
the reason once per new reason, counted in ``errors``, kept in ``last_error`` and
retried at the next tick; the reads keep the state of the last good refresh.

>>> from headwater.store.online.memory import MemoryOnlineStore
>>> follower = StoreFollower(MemoryOnlineStore(), every_ms=5)
>>> follower.needed, follower.start().running
(False, False)
"""

from __future__ import annotations

import logging
import threading
from typing import Final, Protocol, runtime_checkable

from headwater.errors import ConfigError
from headwater.store.online.protocol import OnlineStore

__all__ = ["Refreshable", "StoreFollower"]

_LOG: Final = logging.getLogger("headwater.store.online")


@runtime_checkable
class Refreshable(Protocol):
    """A store whose reads see another process's writes only once refreshed."""

    read_only: bool

    def refresh(self) -> int:
        """Catch up with the writer; return the batches applied."""
        ...


class StoreFollower:
    """Refreshes ``store`` every ``every_ms`` in a thread when it needs it (see the module)."""

    def __init__(self, store: OnlineStore, *, every_ms: float = 5.0) -> None:
        if not every_ms > 0:
            raise ConfigError(f"every_ms: expected a positive interval, got {every_ms!r}")
        self.store = store
        self.every_ms = every_ms
        #: Refreshes made, batches they applied, and refreshes that failed.
        self.refreshes = 0
        self.applied = 0
        self.errors = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def needed(self) -> bool:
        """Whether the store's reads need refreshing to see the writer's writes."""
        return isinstance(self.store, Refreshable) and self.store.read_only

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def refresh(self) -> int:
        """One refresh now (a no-op for a store that needs none); return batches applied."""
        store = self.store
        if not (isinstance(store, Refreshable) and store.read_only):
            return 0
        try:
            applied = store.refresh()
        except Exception as exc:  # a bad file must not end the thread: say it, retry
            self.errors += 1
            reason = f"{type(exc).__name__}: {exc}"
            if reason != self.last_error:
                _LOG.warning("the online store could not catch up with its writer (reads "
                             "serve the last state read; retrying): %s", reason)
            self.last_error = reason
            return 0
        self.refreshes += 1
        self.applied += applied
        self.last_error = None
        return applied

    def start(self) -> StoreFollower:
        """Start following (no thread when the store needs none)."""
        if self.needed and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="headwater-online-follow",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following and wait for the thread."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        interval = self.every_ms / 1000.0
        while not self._stop.wait(interval):
            self.refresh()

    def __enter__(self) -> StoreFollower:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
