"""An online store in a dict: for tests, and for prototypes that need no persistence.

>>> store = MemoryOnlineStore()
>>> store.write("user", [("u1", {"clicks": b"\\x03"})], version=1, meta={"offsets": b"[9]"})
>>> store.read("user", "u1"), store.read("user", "nobody")
({'clicks': b'\\x03'}, {})
>>> store.version("user"), store.meta_get("user", "offsets")
(1, b'[9]')
"""

from __future__ import annotations

import threading

from headwater.store.online.batch import (
    Batch,
)
from headwater.store.online.state import OnlineState
from headwater.store.online.writer import BatchWriter, StateReads

__all__ = ["MemoryOnlineStore"]


class MemoryOnlineStore(StateReads, BatchWriter):
    """Everything in one process's memory; safe across threads.

    ``close`` releases nothing and keeps the data, so a test can "reopen" a memory
    store by going on using it.
    """

    def __init__(self) -> None:
        self._state = OnlineState()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryOnlineStore(namespaces={sorted(self._state.namespaces)!r})"

    def close(self) -> None:
        pass

    def _commit(self, batch: Batch, action: str) -> None:
        with self._lock:
            self._state.check(batch)
            self._state.apply(batch)
