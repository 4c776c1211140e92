"""One time partition of a source: checkpoint files, compacted files and the manifest.

The protocol (see :mod:`headwater.store.history.manifest` for the manifest):

- **Readers take no lock.** :meth:`Partition.snapshot` reads the manifest, lists the
  directory, and reads the manifest again; if the generation moved, it starts over. The
  listing therefore belongs to one generation: the compacted files it names plus the
  checkpoint files it does not replace. A file deleted after the listing (only ever
  after a newer generation is committed) makes the read fail with ``FileNotFoundError``,
  and the caller takes a new snapshot.
- **Writers** install checkpoint files and **drop** checkpoints under the source lock. A
  drop deletes checkpoint files, filters the dropped rows out of the compacted file if
  it holds any, and always commits a new generation.
- **Compaction** (one at a time per partition, under ``_compacting``): under the source
  lock it collects garbage and notes the manifest and the visible checkpoint files;
  it merges them outside the lock into one file sorted by (entity, event time, offset);
  under the lock again it commits the next generation, which names the new file and
  replaces the merged checkpoints, unless the generation moved meanwhile (a drop): then
  it gives up, and the next compaction starts afresh. Only then are the merged files
  deleted. A reader sees the day before or after, never both or neither; a crash
  anywhere leaves garbage that the next compaction deletes.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from headwater.errors import HeadwaterError
from headwater.fsync import staged_name
from headwater.store.history.layout import CheckpointFile, compacted_name, is_compacted
from headwater.store.history.manifest import Manifest, read_manifest, write_manifest
from headwater.store.history.rows import CHECKPOINT, ENTITY, EVENT_TIME, OFFSET, PARTITION, TASK
from headwater.store.history.storage import Storage

__all__ = ["Partition"]

_COMPACTING: Final = "_compacting"
_SNAPSHOT_ATTEMPTS: Final = 1000
_SORT_KEYS: Final = [(ENTITY, "ascending"), (EVENT_TIME, "ascending"), (OFFSET, "ascending"),
                     (PARTITION, "ascending")]


class Partition:
    """The files of one source in one time partition of one entity bucket (a directory)."""

    def __init__(self, storage: Storage, path: str, lock: str) -> None:
        self.storage = storage
        self.path = path
        self._lock = lock  # the source lock

    def _names(self) -> list[str]:
        return [name for name, _ in self.storage.listdir(self.path)]

    def _file(self, name: str) -> str:
        return self.storage.join(self.path, name)

    def manifest(self) -> Manifest:
        return read_manifest(self.storage, self.path)

    def visible(self, manifest: Manifest, names: list[str]) -> list[str]:
        """The checkpoint files among ``names`` that ``manifest`` does not replace."""
        out = []
        for name in names:
            parsed = CheckpointFile.parse(name)
            if parsed is not None and not manifest.replaces(parsed.task, parsed.checkpoint):
                out.append(name)
        return sorted(out)

    def snapshot(self) -> list[str]:
        """The files that hold this partition's rows, as of one generation."""
        for _ in range(_SNAPSHOT_ATTEMPTS):
            before = self.manifest()
            names = self._names()
            after = self.manifest()
            if before.generation == after.generation:
                live = [*after.files, *self.visible(after, names)]
                return [self._file(name) for name in live]
        raise HeadwaterError(f"{self.path}: the manifest kept changing while listing")

    def max_checkpoint(self, task: str) -> int:
        """The latest checkpoint of ``task`` with rows here, in files or compacted (-1:
        none)."""
        latest = self.manifest().max_checkpoint(task)
        for name in self._names():
            parsed = CheckpointFile.parse(name)
            if parsed is not None and parsed.task == task:
                latest = max(latest, parsed.checkpoint)
        return latest

    # -- writers (the caller holds the source lock) -----------------------------------

    def drop(self, task: str, low: int, high: int, schema: pa.Schema) -> bool:
        """Delete the rows of checkpoints ``low..high`` of ``task``: their files and their
        rows in the compacted file. True if any existed."""
        doomed = []
        for name in self._names():
            parsed = CheckpointFile.parse(name)
            if parsed is not None and parsed.task == task and low <= parsed.checkpoint <= high:
                doomed.append(name)
        manifest = self.manifest()
        if not doomed and not manifest.replaces_any(task, low, high):
            return False
        for name in doomed:
            self.storage.delete(self._file(name))
        generation = manifest.generation + 1
        files = manifest.files
        if manifest.replaces_any(task, low, high):
            rows = self._read(manifest.files, schema)
            gone = pc.and_(pc.equal(rows.column(TASK), task),
                           pc.and_(pc.greater_equal(rows.column(CHECKPOINT), low),
                                   pc.less_equal(rows.column(CHECKPOINT), high)))
            rows = rows.filter(pc.invert(gone))
            files = (compacted_name(generation),)
            target = self._file(files[0])
            self.storage.install(self.storage.stage_parquet(target, rows), target)
        write_manifest(self.storage, self.path, Manifest(generation, files, manifest.replaced)
                       .without(task, low, high))
        for name in set(manifest.files) - set(files):
            self.storage.delete(self._file(name))
        return True

    def clear_staged(self, task: str) -> None:
        """Delete the temporary files a crashed writer of ``task`` left behind (only
        while no writer of ``task`` runs: at recovery)."""
        for name in self._names():
            parsed = CheckpointFile.parse(staged_name(name) or "")
            if parsed is not None and parsed.task == task:
                self.storage.delete(self._file(name))

    # -- compaction ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _compacting(self) -> Iterator[None]:
        with self.storage.locked(self._file(_COMPACTING)):
            yield

    def _collect_garbage(self, manifest: Manifest, names: list[str]) -> None:
        """Delete what no generation will read again: files the manifest replaces,
        compacted files it does not name, and temporary compacted files (only a crashed
        compaction leaves those: the caller holds both locks)."""
        for name in names:
            parsed = CheckpointFile.parse(name)
            staged = staged_name(name)
            if ((parsed is not None and manifest.replaces(parsed.task, parsed.checkpoint))
                    or (is_compacted(name) and name not in manifest.files)
                    or (staged is not None and is_compacted(staged))):
                self.storage.delete(self._file(name))

    def _read(self, names: tuple[str, ...] | list[str], schema: pa.Schema) -> pa.Table:
        return self.storage.dataset([self._file(name) for name in names], schema).to_table()

    def compact(self, schema: pa.Schema) -> bool:
        """Merge this partition's files into one (see the module docstring). ``schema``
        is the source's, with provenance. True if a new generation was committed."""
        with self._compacting():
            with self.storage.locked(self._lock):
                manifest = self.manifest()
                names = self._names()
                self._collect_garbage(manifest, names)
                inputs = self.visible(manifest, names)
            if not inputs and len(manifest.files) <= 1:
                return False
            try:
                rows = self._read([*manifest.files, *inputs], schema).sort_by(_SORT_KEYS)
            except FileNotFoundError:
                return False  # a drop deleted an input: the generation moved
            generation = manifest.generation + 1
            target = self._file(compacted_name(generation))
            temp = self.storage.stage_parquet(target, rows)
            with self.storage.locked(self._lock):
                if self.manifest().generation != manifest.generation:
                    self.storage.delete(temp)
                    return False
                self.storage.install(temp, target)
                merged: defaultdict[str, list[int]] = defaultdict(list)
                for name in inputs:
                    parsed = CheckpointFile.parse(name)
                    assert parsed is not None
                    merged[parsed.task].append(parsed.checkpoint)
                write_manifest(self.storage, self.path,
                               Manifest(generation, (compacted_name(generation),),
                                        manifest.replaced).replacing(merged))
            for name in [*inputs, *manifest.files]:
                self.storage.delete(self._file(name))
            return True
