"""Fixtures: a registry over each backend, a manual clock, artifact directories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from headwater.registry import LocalArtifacts, ModelRegistry, RegistryBackend
from headwater.time import ManualClock
from tests.registry.harness import HARNESSES, START_US, Harness

MakeArtifact = Callable[..., Path]


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    with HARNESSES[request.param](tmp_path) as h:
        yield h


@pytest.fixture
def backend(harness: Harness) -> RegistryBackend:
    return harness.open()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_US)


@pytest.fixture
def registry(backend: RegistryBackend, tmp_path: Path, clock: ManualClock) -> ModelRegistry:
    return ModelRegistry(backend, LocalArtifacts(tmp_path / "artifacts", fsync="never"),
                         clock=clock)


@pytest.fixture
def make_artifact(tmp_path: Path) -> MakeArtifact:
    """``make_artifact(name, {"path": bytes_or_text, ...})``: a directory of those files
    (default: one ``weights.bin`` whose bytes are the name)."""

    def make(name: str = "model", files: dict[str, bytes | str] | None = None) -> Path:
        root = tmp_path / "sources" / name
        for rel, content in (files or {"weights.bin": name}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.write_text(content)
            else:
                path.write_bytes(content)
        return root

    return make
