"""Artifacts: stored by content hash, read-only, verified on every checkout, on local disk
and at an fsspec URL (fsspec's ``memory://`` filesystem)."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import ArtifactCorruptError, ArtifactMissingError, ValidationError
from headwater.registry import (
    ArtifactStore,
    LocalArtifacts,
    MemoryRegistryBackend,
    ModelRegistry,
    hash_directory,
)
from headwater.time import ManualClock
from tests.extras import require_extra
from tests.registry.conftest import MakeArtifact
from tests.registry.harness import START_US

FILES: dict[str, bytes | str] = {"weights.bin": b"\x00\x01" * 100, "meta/config.json": "{}",
                                 "meta/vocab.txt": "a\nb\n"}


class Store:
    """An artifact store and a way to reach its stored files behind its back."""

    def __init__(self, store: ArtifactStore, tamper: Callable[[str, str, str, bytes | None], None],
                 remove: Callable[[str, str], None]) -> None:
        self.store = store
        self.tamper = tamper  # (model, sha256, path, bytes or None to delete)
        self.remove = remove  # (model, sha256): delete the whole artifact


def _local(tmp_path: Path) -> Store:
    root = tmp_path / "artifacts"

    def tamper(model: str, sha: str, rel: str, data: bytes | None) -> None:
        path = root / model / sha / "files" / rel
        for directory in (root / model / sha, root / model / sha / "files", path.parent):
            directory.chmod(0o755)
        if path.exists():
            path.chmod(0o644)
        if data is None:
            path.unlink()
        else:
            path.write_bytes(data)

    def remove(model: str, sha: str) -> None:
        from headwater.registry.artifacts import remove_tree

        remove_tree(root / model / sha)

    return Store(LocalArtifacts(root, fsync="never"), tamper, remove)


def _fsspec(tmp_path: Path) -> Store:
    fsspec = require_extra("fsspec", "fsspec")
    from headwater.registry.remote import FsspecArtifacts

    bucket = f"hwtest-{uuid.uuid4().hex[:12]}"
    fs: Any = fsspec.filesystem("memory")

    def tamper(model: str, sha: str, rel: str, data: bytes | None) -> None:
        path = f"/{bucket}/{model}/{sha}/files/{rel}"
        if data is None:
            fs.rm(path)
        else:
            fs.pipe_file(path, data)

    def remove(model: str, sha: str) -> None:
        fs.rm(f"/{bucket}/{model}/{sha}", recursive=True)

    return Store(FsspecArtifacts(f"memory://{bucket}", cache=tmp_path / "cache", fsync="never"),
                 tamper, remove)


@pytest.fixture(params=["local", "fsspec"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return (_local if request.param == "local" else _fsspec)(tmp_path)


@pytest.fixture
def registry(store: Store) -> ModelRegistry:
    return ModelRegistry(MemoryRegistryBackend(), store.store, clock=ManualClock(START_US))


def make_fifo(path: Path) -> bool:
    os.mkfifo(path)
    return True


def contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_checkout_gives_back_the_same_files(registry: ModelRegistry,
                                            make_artifact: MakeArtifact) -> None:
    source = make_artifact("m", FILES)
    version = registry.register("churn", source)
    assert version.artifact == hash_directory(source)[0]
    assert version.artifact.files == 3
    assert version.artifact.bytes == sum(len(v) for v in contents(source).values())
    checked_out = registry.checkout("churn", 1)
    assert contents(checked_out) == contents(source)
    assert registry.checkout("churn", 1) == checked_out  # the same verified copy again
    assert registry.open("churn", 1) == (version, checked_out)
    assert registry.verify("churn", 1) == version


def test_same_content_is_stored_once(registry: ModelRegistry,
                                     make_artifact: MakeArtifact) -> None:
    one = registry.register("churn", make_artifact("a", FILES))
    two = registry.register("churn", make_artifact("b", FILES))
    assert one.artifact == two.artifact
    assert registry.checkout("churn", 1) == registry.checkout("churn", 2)


def test_stored_files_are_read_only(make_artifact: MakeArtifact, tmp_path: Path) -> None:
    registry = ModelRegistry(MemoryRegistryBackend(), _local(tmp_path).store)
    path = registry.checkout("churn", registry.register("churn", make_artifact("m", FILES)).version)
    for item in [path.parent, path, *path.rglob("*")]:
        assert stat.S_IMODE(item.stat().st_mode) & 0o222 == 0, item
    assert not list((tmp_path / "artifacts" / ".staging").iterdir())


@pytest.mark.parametrize(("change", "detail"), [
    (("weights.bin", b"tampered"), "changed: weights.bin"),
    (("meta/vocab.txt", None), "missing: meta/vocab.txt"),
])
def test_tampering_is_caught(registry: ModelRegistry, store: Store, make_artifact: MakeArtifact,
                             change: tuple[str, bytes | None], detail: str) -> None:
    version = registry.register("churn", make_artifact("m", FILES))
    store.tamper("churn", version.artifact.sha256, *change)
    with pytest.raises(ArtifactCorruptError, match=detail) as caught:
        registry.checkout("churn", 1)
    assert caught.value.expected == version.artifact.sha256
    assert caught.value.actual != version.artifact.sha256
    assert "version 1" in str(caught.value)


def test_an_unexpected_file_is_caught(make_artifact: MakeArtifact, tmp_path: Path) -> None:
    local = _local(tmp_path)
    registry = ModelRegistry(MemoryRegistryBackend(), local.store)
    version = registry.register("churn", make_artifact("m", FILES))
    local.tamper("churn", version.artifact.sha256, "extra.txt", b"!")
    with pytest.raises(ArtifactCorruptError, match=r"unexpected: extra\.txt"):
        registry.checkout("churn", 1)


def test_a_tampered_cached_copy_is_caught(make_artifact: MakeArtifact, tmp_path: Path) -> None:
    remote = _fsspec(tmp_path)
    registry = ModelRegistry(MemoryRegistryBackend(), remote.store)
    registry.register("churn", make_artifact("m", FILES))
    cached = registry.checkout("churn", 1)
    (cached / "meta").chmod(0o755)
    (cached / "meta" / "config.json").chmod(0o644)
    (cached / "meta" / "config.json").write_text('{"evil": true}')
    with pytest.raises(ArtifactCorruptError, match=r"changed: meta/config\.json"):
        registry.checkout("churn", 1)


def test_a_corrupt_download_is_not_kept(make_artifact: MakeArtifact, tmp_path: Path) -> None:
    remote = _fsspec(tmp_path)
    registry = ModelRegistry(MemoryRegistryBackend(), remote.store)
    version = registry.register("churn", make_artifact("m", FILES))
    remote.tamper("churn", version.artifact.sha256, "weights.bin", b"x")
    for _ in range(2):
        with pytest.raises(ArtifactCorruptError, match=r"changed: weights\.bin"):
            registry.checkout("churn", 1)
    assert not (tmp_path / "cache" / "churn").exists()


def test_a_missing_artifact(registry: ModelRegistry, store: Store,
                            make_artifact: MakeArtifact) -> None:
    version = registry.register("churn", make_artifact("m", FILES))
    store.remove("churn", version.artifact.sha256)
    with pytest.raises(ArtifactMissingError, match="version 1"):
        registry.checkout("churn", 1)


def test_only_recorded_hashes_are_handed_out(registry: ModelRegistry,
                                             make_artifact: MakeArtifact) -> None:
    registry.register("churn", make_artifact("m", FILES))
    with pytest.raises(Exception, match="has no version 2"):
        registry.checkout("churn", 2)


@pytest.mark.parametrize(("setup", "reason"), [
    (lambda root: None, "is not a directory"),
    (lambda root: root.mkdir(parents=True), "holds no files"),
    (lambda root: (root.mkdir(parents=True), (root / "link").symlink_to("/etc/hostname")),
     "symbolic link"),
    (lambda root: (root.mkdir(parents=True), make_fifo(root / "pipe")), "not a regular file"),
    (lambda root: (root.mkdir(parents=True), (root / "a\nb").write_text("x")), "line break"),
])
def test_bad_artifact_directories(registry: ModelRegistry, tmp_path: Path,
                                  setup: Callable[[Path], object], reason: str) -> None:
    root = tmp_path / "bad"
    setup(root)
    with pytest.raises(ValidationError, match=reason) as caught:
        registry.register("churn", root)
    assert caught.value.field == "artifact_dir"
    assert registry.models() == []


def test_a_failed_copy_leaves_nothing_behind(tmp_path: Path, make_artifact: MakeArtifact,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import headwater.registry.artifacts as artifacts
    from headwater.registry.hashing import copy_hashing

    root = tmp_path / "artifacts"
    registry = ModelRegistry(MemoryRegistryBackend(), LocalArtifacts(root, fsync="never"))
    real = copy_hashing
    calls = []

    def failing(source: Any, target: Any) -> tuple[int, str]:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(source, target)

    monkeypatch.setattr(artifacts, "copy_hashing", failing)
    with pytest.raises(OSError, match="disk full"):
        registry.register("churn", make_artifact("m", FILES))
    assert list((root / ".staging").iterdir()) == []
    assert not (root / "churn").exists()
    assert registry.models() == []


def test_durable_local_store(tmp_path: Path, make_artifact: MakeArtifact) -> None:
    registry = ModelRegistry(MemoryRegistryBackend(),
                             LocalArtifacts(tmp_path / "a", fsync="always"))
    registry.register("churn", make_artifact("m", FILES))
    assert contents(registry.checkout("churn", 1)) == contents(make_artifact("m", FILES))
