"""The ``headwater`` command line.

One module per command: :mod:`~headwater.cli.topics` (create, list, describe),
:mod:`~headwater.cli.produce` (append a CSV, Parquet or JSON-lines file),
:mod:`~headwater.cli.consume` (read through a consumer group), :mod:`~headwater.cli.tail`,
:mod:`~headwater.cli.replay` (to a file) and :mod:`~headwater.cli.demo`. Every command
takes the global ``--log LOCATION`` (default from :class:`headwater.config.Settings`).

Exit codes: 0 success, 1 failure, 2 bad input (arguments, files, settings).
"""

from headwater.cli.app import app, main

__all__ = ["app", "main"]
