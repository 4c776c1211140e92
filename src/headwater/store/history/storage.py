"""Where the history's files live: a local directory, or object storage through fsspec.

:func:`open_storage` takes a path (the default, ``<home>/features/history``) or an fsspec
URL (``s3://bucket/history``, ``gs://…``, ``memory://…``; ``pip install
'headwater[fsspec]'`` plus the filesystem's own package, e.g. s3fs). Both give the same
small set of operations, so the layout, manifest and compaction code is written once:

- a file appears whole or not at all: a local file is staged under a temporary name,
  fsynced and renamed into place; an object store's PUT is atomic already, so a staged
  object is only ever read under its final name;
- :meth:`Storage.locked` is an ``flock`` on a local file. Object stores have no lock:
  writers of different tasks never write the same file, so appending checkpoints needs
  none, but compaction rewrites files that a task's recovery may also rewrite, so on
  object storage it runs only when the caller says no engine recovers meanwhile
  (:meth:`~headwater.store.history.FeatureHistory.compact`, ``exclusive=True``).

>>> import tempfile
>>> storage = open_storage(tempfile.mkdtemp())
>>> storage.write_bytes(storage.join(storage.root, "a", "note"), b"hello")
>>> storage.listdir(storage.join(storage.root, "a")), storage.locks
([('note', False)], True)
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from headwater.filesystems import fsspec_errors, open_filesystem
from headwater.fsync import FsyncPolicy, atomic_write, install, temporary_name
from headwater.store.history import files

if TYPE_CHECKING:  # imported where used: pyarrow.dataset imports pandas (~0.3 s a process)
    import pyarrow.dataset as ds

__all__ = ["Storage", "open_storage"]


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _remote(method: Callable[Concatenate[Storage, _P], _R]
            ) -> Callable[Concatenate[Storage, _P], _R]:
    """On object storage, the method's filesystem failures as a
    :class:`~headwater.errors.BackendError` naming the location
    (:func:`~headwater.filesystems.fsspec_errors`)."""
    @functools.wraps(method)
    def call(self: Storage, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if self._fs is None:
            return method(self, *args, **kwargs)
        with fsspec_errors("A feature history", self.location):
            return method(self, *args, **kwargs)
    return call


class Storage:
    """The files under ``root`` of a local directory (``fs`` is ``None``) or of an fsspec
    filesystem."""

    def __init__(self, root: str, fs: Any = None, *, location: str | None = None,
                 fsync: FsyncPolicy = "group") -> None:
        self.root = root.rstrip("/") or "/"
        self.location = location or root
        self._fs = fs
        self._fsync: FsyncPolicy = fsync

    @property
    def local(self) -> bool:
        return self._fs is None

    @property
    def locks(self) -> bool:
        """Whether :meth:`locked` excludes other processes (only on a local directory)."""
        return self._fs is None

    def join(self, *parts: str) -> str:
        return "/".join(p.rstrip("/") for p in parts)

    # -- reading -------------------------------------------------------------------------

    @_remote
    def listdir(self, path: str) -> list[tuple[str, bool]]:
        """``(name, is_directory)`` of each entry of ``path`` (none if it is missing)."""
        if self._fs is None:
            try:
                return [(e.name, e.is_dir()) for e in os.scandir(path)]
            except (FileNotFoundError, NotADirectoryError):
                return []
        try:
            entries = self._fs.ls(path, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        out = []
        for entry in entries:
            name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
            if str(entry["name"]).rstrip("/") != path.rstrip("/"):
                out.append((name, entry["type"] == "directory"))
        return out

    @_remote
    def exists(self, path: str) -> bool:
        if self._fs is None:
            return os.path.exists(path)
        return bool(self._fs.exists(path))

    @_remote
    def read_bytes(self, path: str) -> bytes:
        """The bytes of ``path``; FileNotFoundError when it is missing."""
        if self._fs is None:
            return Path(path).read_bytes()
        return bytes(self._fs.cat_file(path))

    def dataset(self, paths: list[str], schema: pa.Schema) -> ds.Dataset:
        """The Parquet files ``paths`` as one dataset read with ``schema``."""
        import pyarrow.dataset as ds

        return ds.dataset(paths, schema=schema, format="parquet",
                          filesystem=self._fs)

    @_remote
    def row_count(self, path: str) -> int:
        """The rows of one Parquet file, from its footer."""
        if self._fs is None:
            return int(pq.ParquetFile(path).metadata.num_rows)
        with self._fs.open(path, "rb") as handle:
            return int(pq.ParquetFile(handle).metadata.num_rows)

    # -- writing -------------------------------------------------------------------------

    @_remote
    def makedirs(self, path: str) -> None:
        if self._fs is None:
            os.makedirs(path, exist_ok=True)
        else:
            self._fs.makedirs(path, exist_ok=True)

    @_remote
    def stage_parquet(self, target: str, table: pa.Table) -> str:
        """Write ``table`` as zstd Parquet under a temporary name beside ``target``; the
        temporary path, to :meth:`install` later (or :meth:`delete`)."""
        if self._fs is None:
            return str(files.stage_parquet(Path(target), table, fsync=self._fsync))
        folder, _, name = target.rpartition("/")
        temp = f"{folder}/{temporary_name(name, shared=True)}"
        try:
            with self._fs.open(temp, "wb") as handle:
                pq.write_table(table, handle, compression="zstd",
                               row_group_size=files.ROW_GROUP_ROWS)
        except BaseException:
            with contextlib.suppress(Exception):
                self._fs.rm_file(temp)
            raise
        return temp

    @_remote
    def install(self, temp: str, target: str) -> None:
        """Put a staged file in place as ``target`` (replacing it)."""
        if self._fs is None:
            install(temp, target, fsync=self._fsync)
        else:
            self._fs.mv(temp, target)

    @_remote
    def write_bytes(self, path: str, data: bytes) -> None:
        """Replace ``path`` with ``data``, atomically."""
        if self._fs is None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write(path, data, fsync=self._fsync)
        else:
            self._fs.pipe_file(path, data)

    @_remote
    def delete(self, path: str) -> None:
        """Delete a file; a missing one is fine."""
        if self._fs is None:
            Path(path).unlink(missing_ok=True)
            return
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm_file(path)

    @contextlib.contextmanager
    def locked(self, path: str) -> Iterator[None]:
        """Exclusive among processes on a local directory (see the module docstring)."""
        if self._fs is None:
            with files.locked(Path(path)):
                yield
        else:
            yield


def open_storage(location: str | os.PathLike[str], *, fsync: FsyncPolicy = "group",
                 **storage_options: Any) -> Storage:
    """The storage at ``location``: a path (or ``file://``) or an fsspec URL. ``fsync``
    applies to a local directory (an object store's PUT is durable when it returns)."""
    text = os.fspath(location)
    if "://" not in text or text.startswith("file://"):
        path = text[len("file://"):] if text.startswith("file://") else text
        return Storage(os.path.abspath(path), location=text, fsync=fsync)
    fs, root = open_filesystem(text, "A feature history", **storage_options)
    return Storage(root, fs, location=text)
