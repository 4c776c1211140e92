"""Shared test settings: Hypothesis profiles and whether server tests may skip."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

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
