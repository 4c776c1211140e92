"""Importing a module as if an optional dependency were not installed."""

from __future__ import annotations

import importlib
import sys

import pytest

from headwater.errors import MissingExtraError


def import_without(monkeypatch: pytest.MonkeyPatch, module: str, *missing: str
                   ) -> MissingExtraError:
    """Import ``module`` afresh with the packages ``missing`` hidden; return the
    :class:`MissingExtraError` it raised. Modules the failed import left behind are
    dropped, so later tests import the real thing."""
    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import <name>` fail
    before = set(sys.modules)  # the packages stay hidden until the test ends
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    try:
        with pytest.raises(MissingExtraError) as raised:
            importlib.import_module(module)
    finally:
        for name in set(sys.modules) - before:
            del sys.modules[name]
    return raised.value
