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
from collections.abc import Mapping, Sequence

from headwater.store.online.batch import (
    Batch,
    Row,
    columns_batch,
    delete_batch,
    meta_batch,
    write_batch,
)
from headwater.store.online.state import OnlineState

__all__ = ["MemoryOnlineStore"]


class MemoryOnlineStore:
    """Everything in one process's memory; safe across threads.

    ``close`` releases nothing and keeps the data, so a test can "reopen" a memory
    store by going on using it.
    """

    def __init__(self) -> None:
        self._state = OnlineState()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryOnlineStore(namespaces={sorted(self._state.namespaces)!r})"

    def write(
        self,
        namespace: str,
        rows: Sequence[Row],
        *,
        version: int | None = None,
        meta: Mapping[str, bytes] | None = None,
    ) -> None:
        self._commit(write_batch(namespace, rows, version=version, meta=meta))

    def write_columns(
        self,
        namespace: str,
        entities: Sequence[str],
        columns: Mapping[str, Sequence[bytes]],
        *,
        version: int | None = None,
        meta: Mapping[str, bytes] | None = None,
    ) -> None:
        self._commit(columns_batch(namespace, entities, columns, version=version,
                                   meta=meta))

    def read(self, namespace: str, entity: str) -> dict[str, bytes]:
        return self._state.read(namespace, entity)

    def read_many(self, namespace: str, entities: Sequence[str]) -> list[dict[str, bytes]]:
        return self._state.read_many(namespace, entities)

    def delete(self, namespace: str, entities: Sequence[str]) -> None:
        self._commit(delete_batch(namespace, entities))

    def version(self, namespace: str) -> int | None:
        return self._state.version(namespace)

    def meta_get(self, namespace: str, key: str) -> bytes | None:
        return self._state.meta_get(namespace, key)

    def meta_set(self, namespace: str, key: str, value: bytes) -> None:
        self._commit(meta_batch(namespace, key, value))

    def close(self) -> None:
        pass

    def _commit(self, batch: Batch) -> None:
        with self._lock:
            self._state.check(batch)
            self._state.apply(batch)
