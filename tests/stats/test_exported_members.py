"""The public surface of headwater.stats, pinned."""

from __future__ import annotations

import headwater.stats as stats


def test_the_public_surface_is_pinned() -> None:
    assert sorted(stats.__all__) == ["MixtureSPRT", "Moments", "mixture_likelihood_ratio"]
    assert all(getattr(stats, name) is not None for name in stats.__all__)
