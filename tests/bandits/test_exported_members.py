"""The public surface of headwater.bandits: everything exported exists, nothing is missed."""

from __future__ import annotations

import importlib
import pkgutil

import headwater.bandits as bandits


def test_every_exported_name_exists() -> None:
    for name in bandits.__all__:
        assert getattr(bandits, name) is not None, name


def test_every_public_member_of_a_module_is_exported() -> None:
    exported = {id(getattr(bandits, name)) for name in bandits.__all__}
    for info in pkgutil.iter_modules(bandits.__path__):
        module = importlib.import_module(f"headwater.bandits.{info.name}")
        assert module.__doc__, info.name
        for name in module.__all__:
            member = getattr(module, name)
            if isinstance(member, str | int | float | tuple):
                continue  # constants are reached through their module
            assert id(member) in exported, f"headwater.bandits.{info.name}.{name}"
