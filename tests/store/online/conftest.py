from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.store.online import OnlineStore
from tests.store.online.harness import HARNESSES, Harness


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    with HARNESSES[request.param](tmp_path) as h:
        yield h


@pytest.fixture
def store(harness: Harness) -> OnlineStore:
    return harness.open()
