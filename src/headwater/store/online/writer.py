"""What every online store backend shares: writes as one checked, atomic batch.

A backend implements :meth:`BatchWriter._commit` (apply one checked
:class:`~headwater.store.online.batch.Batch` atomically) and its reads; the four
writing calls of the protocol turn into batches here, once for every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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

__all__ = ["BatchWriter", "StateReads"]


class BatchWriter(ABC):
    """The writing calls of :class:`~headwater.store.online.protocol.OnlineStore`."""

    @abstractmethod
    def _commit(self, batch: Batch, action: str) -> None:
        """Apply a checked batch atomically; ``action`` names it in error messages."""

    def write(
        self,
        namespace: str,
        rows: Sequence[Row],
        *,
        version: int | None = None,
        meta: Mapping[str, bytes] | None = None,
    ) -> None:
        self._commit(write_batch(namespace, rows, version=version, meta=meta), "writing to")

    def write_columns(
        self,
        namespace: str,
        entities: Sequence[str],
        columns: Mapping[str, Sequence[bytes]],
        *,
        version: int | None = None,
        meta: Mapping[str, bytes] | None = None,
    ) -> None:
        self._commit(columns_batch(namespace, entities, columns, version=version, meta=meta),
                     "writing to")

    def delete(self, namespace: str, entities: Sequence[str]) -> None:
        self._commit(delete_batch(namespace, entities), "deleting from")

    def meta_set(self, namespace: str, key: str, value: bytes) -> None:
        self._commit(meta_batch(namespace, key, value), "setting metadata of")


class StateReads:
    """Reads served from an in-process :class:`~headwater.store.online.state.OnlineState`."""

    _state: OnlineState

    def read(self, namespace: str, entity: str) -> dict[str, bytes]:
        return self._state.read(namespace, entity)

    def read_many(self, namespace: str, entities: Sequence[str]) -> list[dict[str, bytes]]:
        return self._state.read_many(namespace, entities)

    def version(self, namespace: str) -> int | None:
        return self._state.version(namespace)

    def meta_get(self, namespace: str, key: str) -> bytes | None:
        return self._state.meta_get(namespace, key)
