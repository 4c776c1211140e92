"""Artifacts at an fsspec URL: ``s3://``, ``gs://``, ``az://``, ``memory://``, …
(``pip install 'headwater[fsspec]'`` plus the filesystem's own package, e.g. s3fs).

The layout is the one of :mod:`headwater.registry.artifacts`. Object stores have no
atomic rename, so the manifest is written last and marks a complete artifact: files of
an upload that died before it are overwritten by the next upload of the same content.
Stored files cannot be made read-only here; an artifact is never overwritten once its
manifest exists, and every checkout checks the bytes against the recorded hash.

Checkout downloads into a local cache (a :class:`~headwater.registry.LocalArtifacts`),
checking each byte against the recorded hash before the copy is kept; later checkouts
of the same version verify the cached copy and do not touch the network.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from headwater.errors import (
    ArtifactCorruptError,
    ArtifactMissingError,
    ValidationError,
)
from headwater.filesystems import fsspec_errors, open_filesystem
from headwater.fsync import FsyncPolicy
from headwater.registry.artifacts import LocalArtifacts
from headwater.registry.hashing import (
    FileEntry,
    artifact_of,
    copy_hashing,
    list_files,
    manifest_bytes,
    parse_manifest,
)
from headwater.registry.records import Artifact, ModelVersion

__all__ = ["FsspecArtifacts"]


class FsspecArtifacts:
    """Artifacts on any filesystem fsspec can open, cached locally in ``cache``.

    ``storage_options`` go to the filesystem (credentials, endpoints, …).
    """

    def __init__(self, url: str, *, cache: str | Path, fsync: FsyncPolicy = "group",
                 **storage_options: Any) -> None:
        self._url = url
        self._fs: Any
        self._fs, root = open_filesystem(url, "Artifacts", **storage_options)
        self._root = root.rstrip("/")
        self._cache = LocalArtifacts(cache, fsync=fsync)

    @property
    def location(self) -> str:
        return self._url

    def put(self, model: str, source: Path) -> Artifact:
        paths = list_files(source)
        entries = []
        for rel in paths:
            with open(source / rel, "rb") as file:
                size, sha256 = copy_hashing(file, None)
            entries.append(FileEntry(rel, size, sha256))
        artifact = artifact_of(entries)
        base = self._base(model, artifact.sha256)
        with fsspec_errors("Artifacts", self._url):
            if self._fs.exists(f"{base}/manifest"):
                return artifact  # stored already; every checkout verifies it
            for entry in entries:
                target = f"{base}/files/{entry.path}"
                self._fs.makedirs(target.rpartition("/")[0], exist_ok=True)
                with open(source / entry.path, "rb") as src, self._fs.open(target, "wb") as dst:
                    size, sha256 = copy_hashing(src, dst)
                if (size, sha256) != (entry.size, entry.sha256):
                    raise ValidationError("artifact_dir",
                                          f"{entry.path!r} changed while it was being stored")
            self._fs.pipe_file(f"{base}/manifest", manifest_bytes(entries))
        return artifact

    def checkout(self, version: ModelVersion) -> Path:
        try:
            return self._cache.checkout(version)
        except ArtifactMissingError:
            pass
        expected = version.artifact.sha256
        base = self._base(version.model, expected)
        label = (f"the artifact of model {version.model!r} version {version.version} "
                 f"at {self._url}")
        try:
            with fsspec_errors("Artifacts", self._url):
                manifest = self._fs.cat_file(f"{base}/manifest")
        except FileNotFoundError:
            raise ArtifactMissingError(f"{label} ({expected}) is missing: no {base}") from None
        if hashlib.sha256(manifest).hexdigest() != expected:
            raise ArtifactCorruptError(f"{label}: its manifest does not match the recorded "
                                       f"SHA-256 {expected}", expected=expected,
                                       actual=hashlib.sha256(manifest).hexdigest())
        recorded = parse_manifest(manifest)

        def download(files: Path) -> list[FileEntry]:
            found = []
            for entry in recorded:
                target = files / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with fsspec_errors("Artifacts", self._url), \
                            self._fs.open(f"{base}/files/{entry.path}", "rb") as src, \
                            open(target, "xb") as dst:
                        size, sha256 = copy_hashing(src, dst)
                except FileNotFoundError:
                    target.unlink(missing_ok=True)
                    continue
                found.append(FileEntry(entry.path, size, sha256))
            return found

        _, files = self._cache.store(version.model, download, expected=expected,
                                     manifest=manifest, label=label)
        return files

    def _base(self, model: str, sha256: str) -> str:
        return f"{self._root}/{model}/{sha256}"
