"""Shared test settings: Hypothesis profiles and whether server tests may skip; the
``backends`` fixture (a test run on the embedded default and on Redis + PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.processes import Backends, backends_of

settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=50
)
# CI explores: each run draws new examples (a failure prints the blob that reproduces it
# with ``@reproduce_failure``), so the suite keeps looking instead of replaying one fixed set.
settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100,
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(params=["embedded", "redis+postgres"])
def backends(request: pytest.FixtureRequest) -> Iterator[Backends]:
    """Where a test's commands keep their data: see :func:`tests.processes.backends_of`."""
    with backends_of(request.param) as chosen:
        yield chosen
