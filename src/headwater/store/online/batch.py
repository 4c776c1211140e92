"""The unit of change of an online store: one validated, atomic batch.

Every backend turns its calls into a :class:`Batch` first: ``write`` gives rows (plus
an optional version and metadata), ``delete`` gives entities, ``meta_set`` gives one
metadata entry. A batch is applied whole or not at all, and this module is where bad
input stops: wrong types raise :class:`~headwater.errors.ValidationError` naming the
offending value's path, so no backend ever sees half-checked data.

>>> batch = write_batch("user", [("u1", {"clicks": b"\\x01"})], version=7)
>>> batch.rows, batch.version
({'u1': {'clicks': b'\\x01'}}, 7)
>>> write_batch("user", [("u1", {"clicks": 1})])
Traceback (most recent call last):
...
headwater.errors.ValidationError: rows[0][1]['clicks']: expected bytes, got int
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import repeat
from typing import Any, Final, cast

import msgspec

from headwater.errors import FencedError, ValidationError

__all__ = [
    "Batch",
    "Columns",
    "Fence",
    "Row",
    "check_entities",
    "check_entity",
    "check_fence",
    "check_meta_key",
    "check_namespace",
    "columns_batch",
    "delete_batch",
    "meta_batch",
    "write_batch",
]

Row = tuple[str, Mapping[str, bytes]]
"""One entity's update: its key and the state blobs of the features to set."""

_NAMESPACE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


class Columns(msgspec.Struct, frozen=True, array_like=True):
    """Rows in columns, as a writer holding whole columns gives them: entity ``i`` gets
    ``blobs[j][i]`` for feature ``names[j]`` (an entity named twice: the later wins).

    Kept as columns until applied, so checking, logging and applying a micro-batch
    never build a dict per entity on the way.
    """

    entities: list[str]
    names: list[str]
    blobs: list[list[bytes]]

    def rows(self) -> dict[str, dict[str, bytes]]:
        """The same as rows (entity → feature → blob)."""
        if not self.names:
            return {}
        features: Iterator[dict[str, bytes]]
        if len(self.names) <= _ROW_MAKERS_UP_TO:
            features = map(_row_maker(tuple(self.names)), *self.blobs)
        else:
            per_entity: Iterator[tuple[bytes, ...]] = zip(*self.blobs, strict=True)
            features = map(dict, map(zip, repeat(self.names), per_entity))
        # An entity named twice keeps its later row: every row names the same features.
        return dict(zip(self.entities, features, strict=True))


_ROW_MAKERS_UP_TO: Final = 64


@functools.lru_cache(maxsize=256)
def _row_maker(names: tuple[str, ...]) -> Callable[..., dict[str, bytes]]:
    """A function of one blob per name that returns them as a dict, built by a dict
    display: a third faster than ``dict(zip(names, blobs))`` per row, which is what an
    engine's micro-batch of a hundred thousand rows pays. The names are passed in as
    values, never written into the code."""
    args = ", ".join(f"v{i}" for i in range(len(names)))
    items = ", ".join(f"k{i}: v{i}" for i in range(len(names)))
    keys = {f"k{i}": name for i, name in enumerate(names)}
    return cast("Callable[..., dict[str, bytes]]",
                eval(f"lambda {args}: {{{items}}}", {"__builtins__": {}, **keys}))


class Batch(msgspec.Struct, frozen=True, array_like=True):
    """A validated change to one namespace, applied atomically.

    Deletes apply before rows, then ``columns``; ``version`` (when set) and ``meta``
    are committed with them, in the same atomic step.
    """

    namespace: str
    rows: dict[str, dict[str, bytes]] = {}
    """entity → feature → state blob; features not named are left as they are."""
    deletes: list[str] = []
    """Entities whose whole feature set is removed."""
    version: int | None = None
    """The namespace's new write version; must exceed the last committed one."""
    meta: dict[str, bytes] = {}
    """Metadata entries to set (e.g. the engine's consumer offsets)."""
    columns: Columns | None = None
    """More rows, in columns (``write_columns``), applied after ``rows``."""
    fence: Fence | None = None
    """The epoch the batch is written under: refused whole unless it is the epoch
    stored at the fence's metadata key (see :class:`Fence`)."""

    def all_rows(self) -> dict[str, dict[str, bytes]]:
        """``rows`` and ``columns`` together, as rows (for a backend that stores each
        entity apart)."""
        if self.columns is None:
            return self.rows
        rows = {e: dict(f) for e, f in self.rows.items()}
        for entity, features in self.columns.rows().items():
            rows.setdefault(entity, {}).update(features)
        return rows


class Fence(msgspec.Struct, frozen=True, array_like=True):
    """A writer's claim on part of a namespace (an engine's source partition), kept as a
    decimal epoch in the metadata entry ``key``.

    A *claim* (``claim=True``) is applied only when ``epoch`` exceeds the stored one,
    and stores it: from then on, a batch fenced with an older epoch (the previous owner,
    still writing) is refused whole with :class:`~headwater.errors.FencedError`. Any
    other fenced batch is applied only while ``epoch`` is the stored one.
    """

    key: str
    epoch: int
    claim: bool = False

    def check(self, stored: bytes | None, namespace: str) -> None:
        """Raise :class:`~headwater.errors.FencedError` unless the fence holds against
        the stored epoch (``None``: never claimed)."""
        current = -1 if stored is None else int(stored)
        if self.epoch > current if self.claim else self.epoch == current:
            return
        raise FencedError(
            f"{namespace!r} {self.key}: epoch {self.epoch} is "
            f"{'not newer than' if self.claim else 'not'} the stored epoch {current}: "
            "another writer claimed this part of the store")


def check_fence(fence: object) -> Fence | None:
    """A ``(key, epoch)`` pair as a :class:`Fence` (or ``None``)."""
    if fence is None or isinstance(fence, Fence):
        return fence
    if (not isinstance(fence, tuple) or len(fence) != 2 or not isinstance(fence[0], str)
            or not fence[0] or isinstance(fence[1], bool) or not isinstance(fence[1], int)
            or not 0 <= fence[1] < 2**63):
        raise ValidationError("fence", f"expected a (metadata key, epoch) pair, got "
                                       f"{_kind(fence)}")
    return Fence(fence[0], fence[1])


def write_batch(
    namespace: str,
    rows: Sequence[Row],
    *,
    version: int | None = None,
    meta: Mapping[str, bytes] | None = None,
    fence: tuple[str, int] | Fence | None = None,
) -> Batch:
    """Check the arguments of ``write``; rows of one entity merge, later ones winning."""
    check_namespace(namespace)
    if not _is_sequence(rows):
        raise ValidationError("rows", f"expected a sequence of (entity, features) pairs, "
                                      f"got {_kind(rows)}")
    merged: dict[str, dict[str, bytes]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, tuple | list) or len(row) != 2:
            raise ValidationError(f"rows[{i}]", f"expected an (entity, features) pair, "
                                                f"got {_kind(row)}")
        entity, features = row
        check_entity(entity, f"rows[{i}][0]")
        blobs = _blobs(features, f"rows[{i}][1]")
        if not blobs:
            continue
        current = merged.get(entity)
        if current is None:
            merged[entity] = blobs
        else:
            current.update(blobs)
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 2**63
    ):
        raise ValidationError("version", f"expected an integer in 0..2**63-1 or None, "
                                         f"got {version!r}")
    return Batch(namespace, merged, version=version,
                 meta={} if meta is None else _blobs(meta, "meta"), fence=check_fence(fence))


def columns_batch(
    namespace: str,
    entities: Sequence[str],
    columns: Mapping[str, Sequence[bytes]],
    *,
    version: int | None = None,
    meta: Mapping[str, bytes] | None = None,
    fence: tuple[str, int] | None = None,
) -> Batch:
    """Check the arguments of ``write_columns``: entity ``i`` gets ``columns[f][i]`` for
    every feature ``f``. Checked column by column, without a dict per row on the way in.

    >>> columns_batch("user", ["u1", "u2"], {"clicks": [b"\\x01", b"\\x02"]}).all_rows()
    {'u1': {'clicks': b'\\x01'}, 'u2': {'clicks': b'\\x02'}}
    """
    check_namespace(namespace)
    if not _is_sequence(entities):
        raise ValidationError("entities", f"expected a sequence of entity keys, "
                                          f"got {_kind(entities)}")
    n = len(entities)
    # Whole columns are checked with C-level passes (set(map(type, ...)), all(...)).
    if n and (set(map(type, entities)) != {str} or not all(entities)):
        check_entities(entities)  # names the first bad one
    if not isinstance(columns, Mapping):
        raise ValidationError("columns", f"expected a mapping of feature names to blobs, "
                                         f"got {_kind(columns)}")
    for name, blobs in columns.items():
        if not isinstance(name, str) or not name:
            raise ValidationError("columns", f"names must be non-empty strings, got {name!r}")
        if not _is_sequence(blobs) or len(blobs) != n:
            raise ValidationError(f"columns[{name!r}]", f"expected {n} blobs, one per entity")
        if n and set(map(type, blobs)) != {bytes}:
            bad = next((i for i, b in enumerate(blobs) if type(b) is not bytes), 0)
            raise ValidationError(f"columns[{name!r}][{bad}]",
                                  f"expected bytes, got {_kind(blobs[bad])}")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 2**63
    ):
        raise ValidationError("version", f"expected an integer in 0..2**63-1 or None, "
                                         f"got {version!r}")
    checked = {} if meta is None else _blobs(meta, "meta")
    fenced = check_fence(fence)
    if not columns or not n:
        return Batch(namespace, version=version, meta=checked, fence=fenced)
    lists = [list(c) for c in columns.values()]
    return Batch(namespace, version=version, meta=checked,
                 columns=Columns(list(entities), list(columns), lists), fence=fenced)


def delete_batch(namespace: str, entities: Sequence[str]) -> Batch:
    """Check the arguments of ``delete``."""
    check_namespace(namespace)
    check_entities(entities)
    return Batch(namespace, deletes=list(dict.fromkeys(entities)))


def meta_batch(namespace: str, key: str, value: bytes) -> Batch:
    """Check the arguments of ``meta_set``."""
    check_namespace(namespace)
    check_meta_key(key)
    if not isinstance(value, bytes):
        raise ValidationError("value", f"expected bytes, got {_kind(value)}")
    return Batch(namespace, meta={key: value})


def check_meta_key(key: object) -> None:
    """A metadata key is a non-empty string."""
    if not isinstance(key, str) or not key:
        raise ValidationError("key", f"expected a non-empty string, got {_kind(key)}")


def check_namespace(namespace: str) -> None:
    """A namespace (a feature view or entity type) is a name safe in any key scheme."""
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise ValidationError(
            "namespace", f"{namespace!r} is not a namespace name: letters, digits, '.', '_', "
            "'-', at most 200, starting with a letter or digit"
        )


def check_entity(entity: object, field: str = "entity") -> None:
    """An entity key is a non-empty string."""
    if not isinstance(entity, str) or not entity:
        raise ValidationError(field, f"expected a non-empty string, got {_kind(entity)}")


def check_entities(entities: Sequence[str], field: str = "entities") -> None:
    """A sequence (not a single string) of entity keys."""
    if not _is_sequence(entities):
        raise ValidationError(field, f"expected a sequence of entity keys, got {_kind(entities)}")
    for i, entity in enumerate(entities):
        check_entity(entity, f"{field}[{i}]")


def _blobs(values: object, field: str) -> dict[str, bytes]:
    """A copy of ``values``, checked to map non-empty names to bytes."""
    if not isinstance(values, Mapping):
        raise ValidationError(field, f"expected a mapping of names to bytes, got {_kind(values)}")
    blobs: dict[str, bytes] = {}
    for name, blob in values.items():
        if not isinstance(name, str) or not name:
            raise ValidationError(field, f"names must be non-empty strings, got {name!r}")
        if not isinstance(blob, bytes):
            raise ValidationError(f"{field}[{name!r}]", f"expected bytes, got {_kind(blob)}")
        blobs[name] = blob
    return blobs


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def _kind(value: object) -> str:
    if isinstance(value, str | bytes) and len(value) <= 40:
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__
