"""The manifest of a time partition: which compacted files are live, and which
checkpoints their rows replace.

``_manifest.json`` is replaced atomically, and its ``generation`` goes up by one at every
change, so it is the single commit point of a partition:

- a checkpoint file is *visible* unless its ``(task, checkpoint)`` is in ``replaced``
  (its rows are in a compacted file, or it is about to be deleted);
- a compacted file is visible only if ``files`` names it.

A partition without a manifest has generation 0 and no compacted file. ``replaced``
keeps, per task, sorted disjoint inclusive ranges of checkpoints, so it stays small
however many checkpoints are compacted.

>>> m = Manifest().replacing({"p-0": [3, 1, 2, 7]})
>>> m.replaced
{'p-0': [(1, 3), (7, 7)]}
>>> m.replaces("p-0", 2), m.replaces("p-0", 5), m.replaces("p-1", 2)
(True, False, False)
>>> m.without("p-0", 2, 3).replaced
{'p-0': [(1, 1), (7, 7)]}
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

import msgspec

from headwater.errors import ValidationError

if TYPE_CHECKING:
    from headwater.store.history.storage import Storage

__all__ = ["MANIFEST", "Manifest", "read_manifest", "write_manifest"]

#: The file name of a partition's manifest.
MANIFEST: Final = "_manifest.json"
Ranges = list[tuple[int, int]]


def _merge(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sorted, disjoint, non-adjacent inclusive ranges covering ``ranges``."""
    out: Ranges = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One generation of a partition (see the module docstring)."""

    generation: int = 0
    files: tuple[str, ...] = ()
    replaced: dict[str, Ranges] = msgspec.field(default_factory=dict)

    def replaces(self, task: str, checkpoint: int) -> bool:
        ranges = self.replaced.get(task, [])
        at = bisect.bisect_right(ranges, (checkpoint, float("inf"))) - 1
        return at >= 0 and ranges[at][0] <= checkpoint <= ranges[at][1]

    def replaces_any(self, task: str, low: int, high: int) -> bool:
        return any(a <= high and low <= b for a, b in self.replaced.get(task, []))

    def replacing(self, checkpoints: Mapping[str, Iterable[int]]) -> Manifest:
        """This manifest with more replaced checkpoints (same generation and files)."""
        replaced = dict(self.replaced)
        for task, more in checkpoints.items():
            replaced[task] = _merge([*replaced.get(task, []), *((c, c) for c in more)])
        return msgspec.structs.replace(self, replaced=replaced)

    def without(self, task: str, low: int, high: int) -> Manifest:
        """This manifest no longer replacing checkpoints ``low..high`` of ``task``."""
        kept: Ranges = []
        for a, b in self.replaced.get(task, []):
            if a < low:
                kept.append((a, min(b, low - 1)))
            if b > high:
                kept.append((max(a, high + 1), b))
        replaced = {t: r for t, r in self.replaced.items() if t != task}
        if kept:
            replaced[task] = kept
        return msgspec.structs.replace(self, replaced=replaced)

    def max_checkpoint(self, task: str) -> int:
        ranges = self.replaced.get(task)
        return ranges[-1][1] if ranges else -1


def read_manifest(storage: Storage, partition: str) -> Manifest:
    """The partition's current manifest (generation 0 when it has none)."""
    path = storage.join(partition, MANIFEST)
    try:
        data = storage.read_bytes(path)
    except FileNotFoundError:
        return Manifest()
    try:
        return msgspec.json.decode(data, type=Manifest)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise ValidationError(path, f"unreadable manifest: {error}") from error


def write_manifest(storage: Storage, partition: str, manifest: Manifest) -> None:
    """Commit ``manifest`` (atomically, durably)."""
    storage.write_bytes(storage.join(partition, MANIFEST), msgspec.json.encode(manifest))
