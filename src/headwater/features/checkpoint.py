"""Checkpoints of a feature task: its state, position and watermark, committed at once.

A checkpoint is a directory ``ckpt-<id>`` holding ``state.npz`` (the tile rings, no
pickle), ``keys.arrow`` (entity keys in id order) and ``meta.json``; it becomes the
committed one when the ``CURRENT`` file, replaced atomically, names it. Arrays equal in
content (the counts of features that fold the same column into one ring, say) are
stored once: ``meta.json`` names the others (``aliases``). A crash before
that leaves the previous checkpoint committed; the task resumes from its position and
recomputes exactly what was lost, so nothing is counted twice or missed.

Checkpoints kept on shared storage (an fsspec URL, :class:`SharedCheckpointStore`) move
with their partition: an engine on another machine that takes the partition over
resumes from the last checkpoint instead of the start of the log. There each file is
one object written whole, and ``CURRENT``, written last, names the committed one.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import CorruptLogError
from headwater.filesystems import open_filesystem
from headwater.fsync import FsyncPolicy, atomic_write, fsync_dir, fsync_file, syncs

__all__ = ["Checkpoint", "CheckpointStore", "SharedCheckpointStore", "is_shared",
           "open_checkpoints"]

Arrays = dict[str, npt.NDArray[Any]]


class Checkpoint(msgspec.Struct, frozen=True):
    """What a task needs to resume: where it was, and the definitions it computed."""

    id: int
    position: int
    watermark: int
    features: dict[str, str]  # feature name -> definition digest
    aliases: dict[str, str] = {}
    """Arrays not stored, each named with the stored array equal to it."""
    lanes: dict[str, tuple[int, int]] = {}
    """For a task over several partitions: each partition's position and watermark."""


class CheckpointStore:
    """The checkpoints of one task, in a directory."""

    def __init__(self, path: Path, *, keep: int = 2, fsync: FsyncPolicy = "group") -> None:
        self.path = path
        self.keep = keep
        self.fsync: FsyncPolicy = fsync
        self._sync = syncs(fsync)
        path.mkdir(parents=True, exist_ok=True)

    def current(self) -> tuple[Checkpoint, dict[str, npt.NDArray[Any]], pa.Array] | None:
        """The committed checkpoint, its arrays and its entity keys, or ``None``."""
        pointer = self.path / "CURRENT"
        if not pointer.exists():
            return None
        name = pointer.read_text().strip()
        folder = self.path / name
        try:
            meta = msgspec.json.decode((folder / "meta.json").read_bytes(), type=Checkpoint)
            with np.load(folder / "state.npz", allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            arrays.update({k: arrays[v] for k, v in meta.aliases.items()})
            with pa.memory_map(str(folder / "keys.arrow")) as source:
                keys = pa.ipc.open_file(source).read_all().column("key").combine_chunks()
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            raise CorruptLogError(f"{folder}: unreadable checkpoint ({exc})") from exc
        return meta, arrays, keys

    def commit(self, meta: Checkpoint, arrays: dict[str, npt.NDArray[Any]], keys: pa.Array
               ) -> None:
        """Write a checkpoint and make it the committed one."""
        name = f"ckpt-{meta.id:012d}"
        staging = self.path / f".{name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        stored, aliases = _once(arrays)
        meta = msgspec.structs.replace(meta, aliases=aliases)
        with open(staging / "state.npz", "wb") as f:
            np.savez(f, allow_pickle=False, **cast("dict[str, Any]", stored))
        with pa.OSFile(str(staging / "keys.arrow"), "wb") as sink, pa.ipc.new_file(
            sink, pa.schema([("key", keys.type)])
        ) as writer:
            writer.write_table(pa.table({"key": keys}))
        (staging / "meta.json").write_bytes(msgspec.json.encode(meta))
        if self._sync:
            for file in ("state.npz", "keys.arrow", "meta.json"):
                fsync_file(staging / file)
            fsync_dir(staging)
        target = self.path / name
        shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)  # a directory: made durable with CURRENT's directory
        atomic_write(self.path / "CURRENT", name.encode(), fsync=self.fsync)
        self._prune(name)

    def _prune(self, current: str) -> None:
        names = sorted(p.name for p in self.path.glob("ckpt-*"))
        for old in names[: max(0, len(names) - self.keep)]:
            if old != current:
                shutil.rmtree(self.path / old, ignore_errors=True)


def _once(arrays: dict[str, npt.NDArray[Any]]
          ) -> tuple[dict[str, npt.NDArray[Any]], dict[str, str]]:
    """The arrays to store, each content once, and the names of the others with the name
    of the stored array equal to each."""
    stored: dict[str, npt.NDArray[Any]] = {}
    aliases: dict[str, str] = {}
    by_digest: dict[tuple[str, tuple[int, ...], bytes], list[str]] = {}
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        raw = array.reshape(-1).view(np.uint8).data
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        same = by_digest.setdefault((array.dtype.str, array.shape, digest), [])
        twin = next((n for n in same if np.array_equal(stored[n], array)), None)
        if twin is None:
            stored[name] = array
            same.append(name)
        else:
            aliases[name] = twin
    return stored, aliases


class SharedCheckpointStore:
    """The checkpoints of one task at an fsspec URL (object storage, or ``memory://``
    in tests): the same files as :class:`CheckpointStore`, each written whole."""

    def __init__(self, url: str, *, keep: int = 2) -> None:
        self.url = url
        self.keep = keep
        self._fs, self._root = open_filesystem(url, "Feature checkpoints")

    def _path(self, *parts: str) -> str:
        return "/".join([self._root.rstrip("/"), *parts])

    def current(self) -> tuple[Checkpoint, Arrays, pa.Array] | None:
        """The committed checkpoint, its arrays and its entity keys, or ``None``."""
        try:
            name = self._fs.cat_file(self._path("CURRENT")).decode().strip()
        except FileNotFoundError:
            return None
        try:
            meta = msgspec.json.decode(self._fs.cat_file(self._path(name, "meta.json")),
                                       type=Checkpoint)
            with np.load(io.BytesIO(self._fs.cat_file(self._path(name, "state.npz"))),
                         allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            arrays.update({k: arrays[v] for k, v in meta.aliases.items()})
            keys_bytes = self._fs.cat_file(self._path(name, "keys.arrow"))
            keys = pa.ipc.open_file(pa.BufferReader(keys_bytes)).read_all().column(
                "key").combine_chunks()
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            raise CorruptLogError(f"{self._path(name)}: unreadable checkpoint ({exc})") from exc
        return meta, arrays, keys

    def commit(self, meta: Checkpoint, arrays: Arrays, keys: pa.Array) -> None:
        """Write a checkpoint's files, then ``CURRENT`` naming it."""
        name = f"ckpt-{meta.id:012d}"
        stored, aliases = _once(arrays)
        meta = msgspec.structs.replace(meta, aliases=aliases)
        state = io.BytesIO()
        np.savez(state, allow_pickle=False, **cast("dict[str, Any]", stored))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, pa.schema([("key", keys.type)])) as writer:
            writer.write_table(pa.table({"key": keys}))
        self._fs.makedirs(self._path(name), exist_ok=True)
        self._fs.pipe_file(self._path(name, "state.npz"), state.getvalue())
        self._fs.pipe_file(self._path(name, "keys.arrow"), sink.getvalue().to_pybytes())
        self._fs.pipe_file(self._path(name, "meta.json"), msgspec.json.encode(meta))
        self._fs.pipe_file(self._path("CURRENT"), name.encode())
        self._prune(name)

    def _prune(self, current: str) -> None:
        names = sorted(p.rstrip("/").rsplit("/", 1)[-1]
                       for p in self._fs.glob(self._path("ckpt-*")))
        for old in names[: max(0, len(names) - self.keep)]:
            if old != current:
                self._fs.rm(self._path(old), recursive=True)


def is_shared(location: str | Path) -> bool:
    """Whether ``location`` is an fsspec URL rather than a local directory."""
    text = str(location)
    return "://" in text and urlsplit(text).scheme not in ("", "file")


def open_checkpoints(location: str | Path, *parts: str, fsync: FsyncPolicy = "group"
                     ) -> CheckpointStore | SharedCheckpointStore:
    """The checkpoints of one task at ``location``/``parts``: a local directory (a path
    or ``file://``), or an fsspec URL."""
    text = str(location)
    if is_shared(text):
        return SharedCheckpointStore("/".join([text.rstrip("/"), *parts]))
    root = Path(urlsplit(text).path if text.startswith("file://") else text)
    return CheckpointStore(root.joinpath(*parts), fsync=fsync)
