"""Fixtures: a :class:`~tests.cli.helpers.Cli` over a fresh embedded log per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def payments(cli: Cli) -> Cli:
    """A log with topic ``payments``: user (key), amount, ts (event time); 2 partitions."""
    cli.ok("topics", "create", "payments", "--schema", "user:string,amount:float64,ts:timestamp",
           "--key", "user", "--event-time", "ts", "--partitions", "2")
    return cli
