"""Where artifacts live: the :class:`ArtifactStore` protocol and the local-disk store.

A store is content-addressed: the artifact of a version is kept once under its content
hash (see :mod:`headwater.registry.hashing`), as::

    <root>/<model>/<sha256>/manifest     the manifest; its SHA-256 is the artifact hash
    <root>/<model>/<sha256>/files/…      the artifact's files

An artifact is present exactly when its manifest is. :meth:`ArtifactStore.checkout`
returns a local directory only after hashing it and finding the recorded hash, so an
artifact this store did not record, or one changed since, is never handed out.

:class:`LocalArtifacts` copies a directory into a staging directory beside the store
(hashing the bytes as it writes them), removes every write permission, then renames it
into place, so a reader sees a whole artifact or none. Checkout hands out the stored
directory itself, read-only; copy it first to change anything.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from headwater.errors import ArtifactCorruptError, ArtifactMissingError, ValidationError
from headwater.fsync import FsyncPolicy, fsync_dir, syncs
from headwater.registry.hashing import (
    FileEntry,
    artifact_of,
    copy_hashing,
    describe_changes,
    hash_directory,
    list_files,
    manifest_bytes,
    parse_manifest,
    read_only,
)
from headwater.registry.records import Artifact, ModelVersion

__all__ = ["ArtifactStore", "LocalArtifacts", "check_content", "remove_tree"]


class ArtifactStore(Protocol):
    """Stores artifact directories by content hash and hands out verified copies."""

    @property
    def location(self) -> str:
        """Where the artifacts are (a path or a URL), for messages."""
        ...

    def put(self, model: str, source: Path) -> Artifact:
        """Store a copy of the directory ``source`` for ``model``; return its hash and size.

        Storing content that is already there keeps the stored copy (after checking it).
        """
        ...

    def checkout(self, version: ModelVersion) -> Path:
        """A local directory holding ``version``'s artifact, verified against its hash.

        Raises :class:`~headwater.errors.ArtifactMissingError` or
        :class:`~headwater.errors.ArtifactCorruptError`.
        """
        ...


class LocalArtifacts:
    """Artifacts in a directory on local disk (no optional dependency).

    ``fsync="never"`` skips flushing files and directories to disk (faster; a power cut
    may then lose recent artifacts, never corrupt the ones it keeps unnoticed).
    """

    def __init__(self, root: str | Path, *, fsync: FsyncPolicy = "group") -> None:
        self._root = Path(root)
        self._fsync = syncs(fsync)

    @property
    def location(self) -> str:
        return str(self._root)

    def put(self, model: str, source: Path) -> Artifact:
        paths = list_files(source)

        def copy(files: Path) -> list[FileEntry]:
            return [self._copy(source, files, rel) for rel in paths]

        artifact, _ = self.store(model, copy)
        return artifact

    def checkout(self, version: ModelVersion) -> Path:
        final = self._root / version.model / version.artifact.sha256
        label = f"the artifact of model {version.model!r} version {version.version}"
        if not (final / "manifest").is_file() and not (final / "files").is_dir():
            raise ArtifactMissingError(f"{label} ({version.artifact.sha256}) is missing: "
                                       f"no {final}")
        _verify(final, version.artifact.sha256, label)
        return final / "files"

    def store(self, model: str, write: Callable[[Path], list[FileEntry]], *,
              expected: str | None = None, manifest: bytes | None = None,
              label: str = "the artifact") -> tuple[Artifact, Path]:
        """Store the files ``write`` puts into the directory it is given (returning their
        manifest entries); return the artifact and its ``files`` directory.

        With ``expected``, content with another hash raises
        :class:`~headwater.errors.ArtifactCorruptError` (naming the files that differ
        from ``manifest``, the recorded one, and using ``label``) and is not kept.
        """
        staging = self._root / ".staging" / uuid.uuid4().hex
        moved = False
        try:
            entries = write(staging / "files")
            artifact = artifact_of(entries)
            if expected is not None and artifact.sha256 != expected:
                raise _mismatch(expected, manifest, label, entries, actual=artifact.sha256)
            (staging / "files").mkdir(parents=True, exist_ok=True)
            with open(staging / "manifest", "xb") as file:
                file.write(manifest_bytes(entries))
                self._flush(file.fileno())
            for directory, _, _ in os.walk(staging):
                self._flush_dir(Path(directory))
            _seal(staging)
            final = self._root / model / artifact.sha256
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
            except OSError:
                if not (final / "manifest").exists():
                    raise
                _verify(final, artifact.sha256, f"the stored artifact of model {model!r}")
            else:
                moved = True
                read_only(final)
                self._flush_dir(final.parent)
        finally:
            if not moved and staging.exists():
                remove_tree(staging)
        return artifact, final / "files"

    def _copy(self, source: Path, files: Path, rel: str) -> FileEntry:
        target = files / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source / rel, "rb") as src, open(target, "xb") as dst:
            size, sha256 = copy_hashing(src, dst)
            dst.flush()
            self._flush(dst.fileno())
        return FileEntry(rel, size, sha256)

    def _flush(self, fd: int) -> None:
        if self._fsync:
            os.fsync(fd)

    def _flush_dir(self, path: Path) -> None:
        if self._fsync:
            fsync_dir(path)


def check_content(files: Path, expected: str, recorded_manifest: bytes | None,
                  label: str) -> None:
    """Hash the directory ``files``; raise :class:`~headwater.errors.ArtifactCorruptError`
    unless it hashes to ``expected``. ``recorded_manifest`` (the stored manifest, trusted
    only if it hashes to ``expected``) lets the message name the files that differ."""
    try:
        found, entries = hash_directory(files, field=label)
    except ValidationError as exc:
        raise ArtifactCorruptError(f"{label} is corrupt at {files}: {exc.reason}",
                                   expected=expected, actual="") from None
    if found.sha256 != expected:
        raise _mismatch(expected, recorded_manifest, f"{label} at {files}", entries,
                        actual=found.sha256)


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything under it, read-only directories included."""
    for directory, _, _ in os.walk(path):
        os.chmod(directory, 0o755)
    shutil.rmtree(path)


def _verify(final: Path, expected: str, label: str) -> None:
    try:
        manifest: bytes | None = (final / "manifest").read_bytes()
    except OSError:
        manifest = None
    check_content(final / "files", expected, manifest, label)


def _mismatch(expected: str, recorded_manifest: bytes | None, label: str,
              found: list[FileEntry], *, actual: str) -> ArtifactCorruptError:
    detail = "its manifest was changed too, so the files that differ are unknown"
    if recorded_manifest is not None:
        try:
            recorded = parse_manifest(recorded_manifest)
        except ValueError:
            recorded = None
        if recorded is not None and artifact_of(recorded).sha256 == expected:
            detail = describe_changes(recorded, found)
    return ArtifactCorruptError(
        f"{label} does not match its recorded SHA-256 {expected}: {detail}",
        expected=expected, actual=actual,
    )


def _seal(staging: Path) -> None:
    """Remove write permissions below ``staging`` (``staging`` itself stays writable so
    it can be renamed; it is sealed after)."""
    for directory, _, names in os.walk(staging, topdown=False):
        for name in names:
            read_only(Path(directory, name))
        if Path(directory) != staging:
            read_only(Path(directory))
