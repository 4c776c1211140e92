"""Optional dependencies in tests: requiring one, and importing as if one were absent.

A test that needs an optional extra calls :func:`require_extra`: it skips naming the extra
on a machine without it, and fails instead under ``HEADWATER_REQUIRE_EXTRAS=1`` (set by
CI, which installs every extra), so a missing library can never turn CI's tests into
silent skips."""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

import pytest

from headwater.errors import MissingExtraError

#: Set in CI: an optional extra that is not installed fails its tests instead of skipping.
REQUIRE_EXTRAS = os.environ.get("HEADWATER_REQUIRE_EXTRAS", "") not in ("", "0", "false")


def require_extra(module: str, extra: str | None = None) -> ModuleType:
    """Import and return ``module``; skip the test naming ``pip install 'headwater[extra]'``
    when it is not installed, or fail it under ``HEADWATER_REQUIRE_EXTRAS=1``."""
    if REQUIRE_EXTRAS:
        return importlib.import_module(module)
    reason = f"pip install 'headwater[{extra}]'" if extra else f"{module} is not installed"
    found: ModuleType = pytest.importorskip(module, reason=reason)
    return found


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
