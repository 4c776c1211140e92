"""Object storage through fsspec: its failures arrive as Headwater errors naming where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from headwater.errors import ArtifactMissingError, BackendError
from headwater.registry import ModelRegistry
from headwater.testing import ManualClock, MemoryRegistryBackend
from tests.extras import require_extra


def test_a_filesystem_failure_under_the_artifacts_is_a_backend_error(tmp_path: Path) -> None:
    fsspec = require_extra("fsspec", "fsspec")
    from headwater.registry.remote import FsspecArtifacts

    url = (tmp_path / "bucket").as_uri()
    store = FsspecArtifacts(url, cache=tmp_path / "cache", fsync="never")
    registry = ModelRegistry(MemoryRegistryBackend(), store, clock=ManualClock(0))
    source = tmp_path / "model"
    source.mkdir()
    (source / "weights.bin").write_bytes(b"\x00\x01")
    version = registry.register("churn", source)
    fs: Any = fsspec.filesystem("file")
    manifest = f"{tmp_path}/bucket/churn/{version.artifact.sha256}/manifest"
    fs.rm(manifest)
    with pytest.raises(ArtifactMissingError):  # missing stays missing
        registry.checkout("churn", version.version)
    fs.makedirs(manifest)  # unreadable as a file: the filesystem refuses
    with pytest.raises(BackendError, match=f"Artifacts at '{url}'") as raised:
        registry.checkout("churn", version.version)
    assert isinstance(raised.value.__cause__, OSError)


def test_a_filesystem_failure_under_the_history_is_a_backend_error(tmp_path: Path) -> None:
    fsspec = require_extra("fsspec", "fsspec")
    from headwater.store.history.storage import Storage

    storage = Storage(str(tmp_path), fsspec.filesystem("file"), location="s3://bucket/history")
    (tmp_path / "source").mkdir()
    assert storage.listdir(str(tmp_path / "missing")) == []
    with pytest.raises(FileNotFoundError):  # each caller says what missing means
        storage.read_bytes(str(tmp_path / "missing"))
    with pytest.raises(BackendError, match="A feature history at 's3://bucket/history'") as raised:
        storage.read_bytes(str(tmp_path / "source"))
    assert isinstance(raised.value.__cause__, OSError)
