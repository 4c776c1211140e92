"""The protocol every online store implements.

The store is deliberately dumb. The features layer serialises each feature's state
(its tile partials, see ``docs/design/features.md``) to bytes and evaluates windows at
read time; the store keeps, per namespace and entity, the latest blob of each feature,
and nothing else. A new backend implements :class:`OnlineStore` and passes
``tests/store/test_contract.py``.

Conventions every backend keeps:

- A *namespace* is a feature view or entity type: a name of letters, digits, ``.``,
  ``_`` and ``-``. Namespaces need no creating; an unknown one is empty.
- ``write`` is atomic: its rows, its version and its metadata are all committed or
  none is. Features a row does not name keep their blobs.
- ``read`` returns an entity's whole feature set in one call (one round trip on a
  server), a fresh dict the caller may change; an unknown entity gives ``{}``.
- A write ``version`` must exceed the namespace's last one, or the write is refused
  with :class:`~headwater.errors.ValidationError` (``field == "version"``) and nothing
  of it is applied. Versions let an engine commit its state with its consumer offsets
  (in ``meta``) and resume exactly once after a crash, and fence off a stale writer.
- A write ``fence`` ``(key, epoch)`` must name the epoch last stored at metadata
  ``key`` by :meth:`~OnlineStore.claim`, or the write is refused whole with
  :class:`~headwater.errors.FencedError`: an engine claims a source partition when it
  takes it over, so the previous owner, still writing, can no longer write.
- Bad arguments raise :class:`~headwater.errors.ValidationError` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from headwater.store.online.batch import Row

__all__ = ["OnlineStore"]


class OnlineStore(Protocol):
    """The latest feature-state blobs per namespace and entity, for serving."""

    def write(
        self,
        namespace: str,
        rows: Sequence[Row],
        *,
        version: int | None = None,
        meta: Mapping[str, bytes] | None = None,
        fence: tuple[str, int] | None = None,
    ) -> None:
        """Set the given features of each entity, atomically with ``version`` and ``meta``.

        ``rows`` holds ``(entity, {feature: blob})`` pairs; two rows for one entity
        merge, the later winning. A write with no rows may still commit a version or
        metadata.
        """
        ...

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
        """:meth:`write` in columns: entity ``i`` gets ``columns[feature][i]`` for every
        feature. The same atomic write, for writers holding whole columns (an engine's
        micro-batch), without a dict per row."""
        ...

    def read(self, namespace: str, entity: str) -> dict[str, bytes]:
        """The entity's feature blobs, every feature in one call (``{}`` if unknown)."""
        ...

    def read_many(self, namespace: str, entities: Sequence[str]) -> list[dict[str, bytes]]:
        """:meth:`read` for each entity, in order, in one call (one round trip)."""
        ...

    def delete(self, namespace: str, entities: Sequence[str]) -> None:
        """Remove the entities' whole feature sets (unknown entities are ignored)."""
        ...

    def version(self, namespace: str) -> int | None:
        """The last committed write version (``None`` if no write carried one)."""
        ...

    def meta_get(self, namespace: str, key: str) -> bytes | None:
        """A metadata entry set by :meth:`meta_set` or a write's ``meta``."""
        ...

    def meta_set(self, namespace: str, key: str, value: bytes) -> None:
        """Set one metadata entry on its own (a write's ``meta`` commits with its rows)."""
        ...

    def claim(self, namespace: str, key: str) -> int:
        """Store at metadata ``key`` an epoch newer than any stored there before, and
        return it: writes fenced with an older one are refused from then on."""
        ...

    def close(self) -> None:
        """Release files, locks and connections."""
        ...
