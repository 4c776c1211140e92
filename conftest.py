"""Collection rules for the whole tree (the doctests under src/ and tests/).

The doctests import every module under ``src/headwater``; a module that exists only for an
optional extra outside the ``test`` extra (the PyTorch adapter, the Spark join) is left
out of collection when its package is not installed, so the README's test command works without it. Its
tests skip with the extra named (and fail instead under ``HEADWATER_REQUIRE_EXTRAS=1``,
as in CI, which installs it).
"""

from __future__ import annotations

import importlib.util

collect_ignore: list[str] = []
if importlib.util.find_spec("torch") is None:
    collect_ignore.append("src/headwater/models/torch.py")
if importlib.util.find_spec("pyspark") is None:
    collect_ignore.append("src/headwater/store/history/spark.py")
