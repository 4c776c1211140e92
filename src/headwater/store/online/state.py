"""The contents of an online store as plain values: the sans-I/O core.

:class:`OnlineState` holds every namespace's entities, write version and metadata in
dicts, applies :class:`~headwater.store.online.batch.Batch` values, and encodes to and
from bytes (the embedded store's snapshot). The in-memory and embedded stores are thin
shells around it; only the Redis store keeps its data elsewhere.

An entity's feature dict is replaced on every update, never changed in place (copy on
write), so a reader in another thread sees each entity either before or after a batch,
never half-way, without taking a lock.

>>> from headwater.store.online.batch import write_batch
>>> state = OnlineState()
>>> state.apply(write_batch("user", [("u1", {"a": b"1", "b": b"2"})], version=1))
>>> state.apply(write_batch("user", [("u1", {"b": b"3"})]))
>>> state.read("user", "u1"), state.version("user")
({'a': b'1', 'b': b'3'}, 1)
>>> OnlineState.decode(state.encode()).read("user", "u1")
{'a': b'1', 'b': b'3'}
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from headwater.errors import ValidationError
from headwater.store.online.batch import (
    Batch,
    Columns,
    check_entities,
    check_entity,
    check_meta_key,
    check_namespace,
)

__all__ = ["Namespace", "OnlineState", "check_version"]


class Namespace(msgspec.Struct, array_like=True):
    """One namespace: its entities' feature blobs, write version and metadata."""

    entities: dict[str, dict[str, bytes]] = {}
    version: int | None = None
    meta: dict[str, bytes] = {}


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(dict[str, Namespace])


class OnlineState:
    """Every namespace of a store, in memory."""

    __slots__ = ("_names", "namespaces")

    def __init__(self, namespaces: dict[str, Namespace] | None = None) -> None:
        self.namespaces: dict[str, Namespace] = {} if namespaces is None else namespaces
        # Per namespace, every feature name its entities may hold (a superset: names
        # are added, never removed), worked out on the first write in columns.
        self._names: dict[str, set[str]] = {}

    # -- reading ----------------------------------------------------------------

    def read(self, namespace: str, entity: str) -> dict[str, bytes]:
        """A copy of the entity's features (empty for an unknown entity).

        A hit costs two dict lookups and a copy; arguments are validated only on a
        miss, where a wrong type is told apart from an unknown key.
        """
        try:
            features = self.namespaces[namespace].entities[entity]
        except (KeyError, TypeError):
            check_namespace(namespace)
            check_entity(entity)
            return {}
        return features.copy()

    def read_many(self, namespace: str, entities: Sequence[str]) -> list[dict[str, bytes]]:
        """:meth:`read` for each entity, in order."""
        ns = self.namespaces.get(namespace) if isinstance(namespace, str) else None
        if ns is None:
            check_namespace(namespace)
            check_entities(entities)
            return [{} for _ in entities]
        if type(entities) is not list and type(entities) is not tuple:
            check_entities(entities)  # the common types skip this walk when all are hits
        get = ns.entities.get
        found: list[dict[str, bytes]] = []
        missed = False
        try:
            for entity in entities:
                features = get(entity)
                if features is None:
                    missed = True
                    found.append({})
                else:
                    found.append(features.copy())
        except TypeError:
            check_entities(entities)
            raise
        if missed:
            check_entities(entities)  # tell a wrong type apart from an unknown key
        return found

    def version(self, namespace: str) -> int | None:
        ns = self.namespaces.get(namespace) if isinstance(namespace, str) else None
        if ns is None:
            check_namespace(namespace)
            return None
        return ns.version

    def meta_get(self, namespace: str, key: str) -> bytes | None:
        check_meta_key(key)
        ns = self.namespaces.get(namespace) if isinstance(namespace, str) else None
        if ns is None:
            check_namespace(namespace)
            return None
        return ns.meta.get(key)

    # -- changing -----------------------------------------------------------------

    def check(self, batch: Batch) -> None:
        """Refuse a batch whose fence does not hold or whose version does not exceed the
        namespace's last one."""
        ns = self.namespaces.get(batch.namespace)
        if batch.fence is not None:
            batch.fence.check(None if ns is None else ns.meta.get(batch.fence.key),
                              batch.namespace)
        check_version(batch, None if ns is None else ns.version)

    def apply(self, batch: Batch) -> None:
        """Apply a checked batch (deletes, then rows, then version and metadata).

        The state keeps the batch's feature dicts: a batch is not changed once applied.
        """
        ns = self.namespaces.get(batch.namespace)
        if ns is None:
            if (not batch.rows and batch.columns is None and batch.version is None
                    and not batch.meta and batch.fence is None):
                return
            ns = self.namespaces[batch.namespace] = Namespace({}, None, {})
        entities = ns.entities
        for entity in batch.deletes:
            entities.pop(entity, None)
        get = entities.get
        held = self._names.get(batch.namespace)
        for entity, features in batch.rows.items():
            if held is not None:
                held.update(features)
            current = get(entity)
            # Replace, never mutate: concurrent readers copy a dict nobody changes. A
            # batch's dicts are its own (built when it was checked), so the state takes
            # them as they are unless features it does not name must be kept.
            if current is not None and not current.keys() <= features.keys():
                features = current | features
            entities[entity] = features
        if batch.columns is not None:
            self._apply_columns(batch.namespace, entities, batch.columns)
        if batch.version is not None:
            ns.version = batch.version
        if batch.meta or batch.fence is not None:
            ns.meta = ns.meta | batch.meta
            if batch.fence is not None:
                ns.meta[batch.fence.key] = str(batch.fence.epoch).encode()

    def _apply_columns(self, namespace: str, entities: dict[str, dict[str, bytes]],
                       columns: Columns) -> None:
        """Apply rows in columns. When they name every feature the namespace has held,
        no entity keeps a feature they do not name: their dicts replace the entities'
        whole, in one C-level update, with no look-up per entity."""
        names = set(columns.names)
        held = self._names.get(namespace)
        if held is None:  # once per namespace and process: what its entities hold
            held = set()
            for features in entities.values():
                held.update(features)
            self._names[namespace] = held
        rows = columns.rows()
        if held <= names:
            entities.update(rows)
        else:
            get = entities.get
            for entity, features in rows.items():
                current = get(entity)
                entities[entity] = features if current is None else current | features
        held |= names

    # -- snapshot and restore -----------------------------------------------------

    def encode(self) -> bytes:
        """Every namespace as msgpack (see :meth:`decode`)."""
        return _encoder.encode(self.namespaces)

    @classmethod
    def decode(cls, data: bytes | memoryview) -> OnlineState:
        return cls(_decoder.decode(data))


def check_version(batch: Batch, current: int | None) -> None:
    """Raise :class:`~headwater.errors.ValidationError` unless the batch's version (if
    any) is greater than ``current``: a stale writer (say, a zombie engine) is fenced
    off and nothing of its batch is applied."""
    if batch.version is not None and current is not None and batch.version <= current:
        raise ValidationError(
            "version", f"{batch.version} is not greater than the last committed version "
            f"{current} of namespace {batch.namespace!r}"
        )
