"""The content hash of an artifact directory, and the manifest it is computed from.

Definition (format 1). Take every regular file under the directory, at any depth. A
file's *path* is relative to the directory, its components joined by ``/``, in UTF-8.
Sort the files by path (UTF-8 byte order, which is code-point order). The *manifest*
is the UTF-8 text::

    headwater-artifact/1\\n
    <SHA-256 of the file's bytes, 64 lower-case hex> <size in bytes, decimal> <path>\\n
    … one line per file, in that order

and the artifact's hash is the SHA-256 of the manifest, in lower-case hex. So the hash
covers every path and every byte, and nothing else: directories (empty ones included),
file modes and times are not part of it. Symbolic links, devices, sockets and FIFOs are
refused, as are names that are not UTF-8 or that hold a line break, so one directory has
exactly one manifest. An artifact holds at least one file.

>>> import hashlib
>>> entry = FileEntry("weights.bin", 2, hashlib.sha256(b"hi").hexdigest())
>>> print(manifest_bytes([entry]).decode(), end="")
headwater-artifact/1
8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4 2 weights.bin
>>> artifact_of([entry]).sha256 == hashlib.sha256(manifest_bytes([entry])).hexdigest()
True
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple

from headwater.errors import ValidationError
from headwater.registry.records import Artifact

__all__ = [
    "HEADER",
    "FileEntry",
    "artifact_of",
    "copy_hashing",
    "describe_changes",
    "hash_directory",
    "list_files",
    "manifest_bytes",
    "parse_manifest",
    "read_only",
]

HEADER: Final = b"headwater-artifact/1\n"
CHUNK: Final = 1 << 20


class FileEntry(NamedTuple):
    """One line of a manifest."""

    path: str
    size: int
    sha256: str


def list_files(root: Path, *, field: str = "artifact_dir") -> list[str]:
    """The relative paths of the regular files under ``root``, sorted.

    Raises :class:`~headwater.errors.ValidationError` naming ``field`` for a missing
    directory, no files, a symbolic link or special file, or an unusable name.
    """
    if not root.is_dir():
        raise ValidationError(field, f"{str(root)!r} is not a directory")
    found: list[str] = []
    pending: list[tuple[Path, str]] = [(root, "")]
    while pending:
        directory, prefix = pending.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = prefix + entry.name
                _check_name(rel, field)
                if entry.is_symlink():
                    raise ValidationError(field, f"{rel!r} is a symbolic link: not stored")
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), rel + "/"))
                elif entry.is_file(follow_symlinks=False):
                    found.append(rel)
                else:
                    raise ValidationError(field, f"{rel!r} is not a regular file")
    if not found:
        raise ValidationError(field, f"{str(root)!r} holds no files")
    return sorted(found)


def hash_directory(root: Path, *, field: str = "artifact_dir") -> tuple[Artifact, list[FileEntry]]:
    """The artifact hash of the directory ``root`` and its manifest entries."""
    entries = []
    for rel in list_files(root, field=field):
        with open(root / rel, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            digest = hashlib.file_digest(file, "sha256").hexdigest()
        entries.append(FileEntry(rel, size, digest))
    return artifact_of(entries), entries


def copy_hashing(source: BinaryIO, target: BinaryIO | None) -> tuple[int, str]:
    """Copy ``source`` to ``target`` (or just read it) and return the size and SHA-256
    of the bytes that went through."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if target is not None:
            target.write(chunk)
    return size, digest.hexdigest()


def manifest_bytes(entries: Iterable[FileEntry]) -> bytes:
    """The manifest text of ``entries`` (which must be sorted by path)."""
    lines = [f"{e.sha256} {e.size} {e.path}\n".encode() for e in entries]
    return HEADER + b"".join(lines)


def artifact_of(entries: Sequence[FileEntry]) -> Artifact:
    """The :class:`~headwater.registry.Artifact` whose manifest lists ``entries``."""
    return Artifact(sha256=hashlib.sha256(manifest_bytes(entries)).hexdigest(),
                    files=len(entries), bytes=sum(e.size for e in entries))


def parse_manifest(data: bytes) -> list[FileEntry]:
    """The entries of a manifest; :class:`ValueError` if it is not one."""
    if not data.startswith(HEADER):
        raise ValueError("not a headwater artifact manifest")
    entries = []
    for line in data[len(HEADER):].decode().splitlines():
        sha, size, path = line.split(" ", 2)
        entries.append(FileEntry(path, int(size), sha))
    return entries


def describe_changes(recorded: Sequence[FileEntry], found: Sequence[FileEntry]) -> str:
    """What differs between two manifests, for an error message.

    >>> describe_changes([FileEntry("a", 1, "x"), FileEntry("b", 1, "y")],
    ...                  [FileEntry("a", 1, "z"), FileEntry("c", 1, "y")])
    'changed: a; missing: b; unexpected: c'
    """
    before = {e.path: e for e in recorded}
    after = {e.path: e for e in found}
    changed = sorted(p for p in before.keys() & after.keys() if before[p] != after[p])
    parts = [(label, paths) for label, paths in (
        ("changed", changed),
        ("missing", sorted(before.keys() - after.keys())),
        ("unexpected", sorted(after.keys() - before.keys())),
    ) if paths]
    return "; ".join(f"{label}: {', '.join(_shorten(paths))}" for label, paths in parts)


def read_only(path: Path) -> None:
    """Remove every write permission bit from ``path``."""
    mode = stat.S_IMODE(path.stat().st_mode)
    path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _check_name(rel: str, field: str) -> None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(field, f"{rel!r}: a file name that is not UTF-8") from None
    if "\n" in rel or "\r" in rel:
        raise ValidationError(field, f"{rel!r}: a file name with a line break")


def _shorten(paths: list[str], most: int = 5) -> list[str]:
    return paths if len(paths) <= most else [*paths[:most], f"… ({len(paths) - most} more)"]
