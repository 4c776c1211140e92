"""The public surface of headwater.routing, pinned."""

from __future__ import annotations

import importlib
import pkgutil

import headwater.routing as routing


def test_the_public_surface_is_pinned() -> None:
    assert sorted(routing.__all__) == sorted([
        "DEFAULT_SALT", "KINDS", "UCB1", "ArmDecision", "ArmStatistics", "BanditPolicy",
        "BetaThompson", "Canary", "CanarySpec", "ChampionOnly", "ChampionSpec",
        "GaussianThompson", "GaussianThompsonSpec", "Policy", "PolicySpec", "Route", "Shadow",
        "ShadowSpec", "Split", "SplitSpec", "ThompsonSpec", "UCB1Spec", "bucket", "build",
        "check_arms", "parse_spec", "policy_from_spec"])
    for name in routing.__all__:
        assert getattr(routing, name) is not None, name


def test_every_public_member_of_a_module_is_exported() -> None:
    exported = {id(getattr(routing, name)) for name in routing.__all__}
    for info in pkgutil.iter_modules(routing.__path__):
        module = importlib.import_module(f"headwater.routing.{info.name}")
        assert module.__doc__, info.name
        for name in module.__all__:
            assert id(getattr(module, name)) in exported, f"headwater.routing.{info.name}.{name}"
