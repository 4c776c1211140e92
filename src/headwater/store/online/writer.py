"""What every online store backend shares: writes as one checked, atomic batch.

A backend implements :meth:`BatchWriter._commit` (apply one checked
:class:`~headwater.store.online.batch.Batch` atomically) and its reads; the four
writing calls of the protocol turn into batches here, once for every backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from headwater.errors import FencedError
from headwater.store.online.batch import (
    Batch,
    Fence,
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
        fence: tuple[str, int] | None = None,
    ) -> None:
        self._commit(write_batch(namespace, rows, version=version, meta=meta, fence=fence),
                     "writing to")

    def write_columns(
        self,
        namespace: str,
        entities: Sequence[str],
        columns: Mapping[str, Sequence[bytes]],
        *,
        version: int | None = None,
        meta: Mapping[str, bytes] | None = None,
        fence: tuple[str, int] | None = None,
    ) -> None:
        self._commit(columns_batch(namespace, entities, columns, version=version, meta=meta,
                                   fence=fence), "writing to")

    def delete(self, namespace: str, entities: Sequence[str]) -> None:
        self._commit(delete_batch(namespace, entities), "deleting from")

    def meta_set(self, namespace: str, key: str, value: bytes) -> None:
        self._commit(meta_batch(namespace, key, value), "setting metadata of")

    def claim(self, namespace: str, key: str) -> int:
        """Take the part of the store fenced at metadata ``key`` over: store an epoch
        newer than any before and return it. Writes fenced with an older epoch are
        refused from then on (:class:`~headwater.errors.FencedError`)."""
        for _ in range(100):  # another claimer between the read and the write: again
            stored = self.meta_get(namespace, key)
            epoch = (-1 if stored is None else int(stored)) + 1
            try:
                self._commit(write_batch(namespace, [], fence=Fence(key, epoch, claim=True)),
                             "claiming")
            except FencedError:
                continue
            return epoch
        raise FencedError(f"{namespace!r} {key}: claimed by others 100 times in a row")

    @abstractmethod
    def meta_get(self, namespace: str, key: str) -> bytes | None:
        """A metadata entry (every backend reads its own)."""


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
