"""Making files durable: the fsync policy, and the one way Headwater replaces a file.

A file created or renamed is durable only once its directory is synced too. Every
writer that replaces a file whole (group offsets, topic definitions, checkpoints, the
feature history, the online store's snapshots, model and report files) goes through
:func:`atomic_write`, or :func:`stage` then :func:`install` when the file is encoded
before a lock is taken:

1. the content is written to a temporary file beside the target,
   ``.<name>.<pid>.<thread>.tmp``, created with mode ``0o666`` so the process umask
   (``HEADWATER_FILE_MODE``) decides its permissions;
2. unless the policy is ``"never"``, the file is fsynced;
3. it is renamed over the target (atomic within a directory: a reader sees the old
   content or the new, whole);
4. unless the policy is ``"never"``, the directory is fsynced, so the rename survives a
   power cut.

A write that fails removes its temporary file. One killed mid-write leaves it behind;
its name starts with a dot and ends with ``.tmp`` (:func:`is_temporary`), so no reader
mistakes it for data.

>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write(folder / "note", b"hello", fsync="always")
>>> (folder / "note").read_bytes(), [p.name for p in folder.iterdir()]
(b'hello', ['note'])
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Literal

from headwater.errors import ConfigError

__all__ = [
    "FsyncPolicy",
    "atomic_write",
    "fsync_dir",
    "fsync_file",
    "install",
    "is_temporary",
    "stage",
    "staged_name",
    "syncs",
    "temporary_name",
    "temporary_path",
]

FsyncPolicy = Literal["always", "group", "never"]
"""When Headwater calls fsync. For the embedded log: after every append, every
``group_commit_ms`` (appends wait for it), or never (the OS decides; survives a process
crash, not a power cut). A file replaced whole is synced before the write returns under
``always`` and ``group`` alike (there is no batch to share), and not under ``never``."""

_POLICIES: tuple[FsyncPolicy, ...] = ("always", "group", "never")

Content = bytes | Callable[[BinaryIO], object]
"""What :func:`atomic_write` writes: bytes, or a function writing to the open file."""


def syncs(policy: FsyncPolicy) -> bool:
    """Whether ``policy`` syncs files replaced whole; an unknown policy is a
    :class:`~headwater.errors.ConfigError`."""
    if policy not in _POLICIES:
        raise ConfigError(f"fsync: expected always, group or never, got {policy!r}")
    return policy != "never"


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file's data and metadata to the disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (files created, renamed or removed in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_name(name: str, *, shared: bool = False) -> str:
    """The name of the temporary file this process and thread write the file ``name``
    through: ``.<name>.<pid>.<thread>.tmp``. ``shared`` (storage other hosts write to
    as well, where a pid and thread may repeat) puts a random part in the thread's place.

    >>> staged_name(temporary_name("part.parquet", shared=True))
    'part.parquet'
    """
    unique = uuid.uuid4().hex[:12] if shared else str(threading.get_ident())
    return f".{name}.{os.getpid()}.{unique}.tmp"


def temporary_path(target: str | os.PathLike[str]) -> Path:
    """The temporary file beside ``target`` that this process and thread write it through."""
    target = Path(target)
    return target.with_name(temporary_name(target.name))


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`temporary_name`'s (a write under way, or
    left by a crash)."""
    return name.startswith(".") and name.endswith(".tmp")


def staged_name(name: str) -> str | None:
    """The name of the file a temporary file named ``name`` was to become (``None`` if
    ``name`` is not a temporary file). Also reads the earlier ``.<name>.<random>.tmp``
    that a crash may have left in older data.

    >>> staged_name(".part.parquet.0f3a9c.tmp")
    'part.parquet'
    """
    if not is_temporary(name):
        return None
    stem, _, _unique = name[1:-len(".tmp")].rpartition(".")
    head, _, pid = stem.rpartition(".")
    return head if head and pid.isdigit() else stem or None


def stage(target: str | os.PathLike[str], content: Content, *, fsync: FsyncPolicy) -> Path:
    """Write ``content`` to a temporary file beside ``target`` (fsynced under ``fsync``)
    and return its path, to :func:`install` later or delete."""
    sync = syncs(fsync)
    temp = temporary_path(target)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            if isinstance(content, bytes):
                file.write(content)
            else:
                content(file)
            file.flush()
            if sync:
                os.fsync(file.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def install(temp: str | os.PathLike[str], target: str | os.PathLike[str], *,
            fsync: FsyncPolicy) -> None:
    """Rename a staged file over ``target``; under ``fsync``, sync the directory so the
    rename is durable."""
    os.replace(temp, target)
    if syncs(fsync):
        fsync_dir(Path(target).parent)


def atomic_write(target: str | os.PathLike[str], content: Content, *,
                 fsync: FsyncPolicy) -> None:
    """Replace ``target`` with ``content`` whole: a reader (and a crash) sees the old
    file or the new one, never a mix; durable on return unless ``fsync`` is ``"never"``."""
    temp = stage(target, content, fsync=fsync)
    try:
        install(temp, target, fsync=fsync)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
