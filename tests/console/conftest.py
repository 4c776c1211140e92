"""The loop's run that the console's tests look at: one per backend, shared by every
test of the console (a run takes a few dozen processes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.loop import Loop, run_the_loop
from tests.processes import backends_of


@pytest.fixture(scope="session", params=["embedded", "redis+postgres"])
def loop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Loop]:
    root: Path = tmp_path_factory.mktemp(f"console-{request.param}")
    with backends_of(request.param) as backends:
        yield from run_the_loop(root, backends)
