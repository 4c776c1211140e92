"""The ``headwater`` command line.

One module per command (``headwater --help`` lists them; a test keeps this list whole):

- the log: :mod:`~headwater.cli.topics` (create, list, describe, retention),
  :mod:`~headwater.cli.produce` (append a CSV, Parquet or JSON-lines file),
  :mod:`~headwater.cli.consume` (read through a consumer group), :mod:`~headwater.cli.tail`,
  :mod:`~headwater.cli.replay` (to a file);
- features and labels: :mod:`~headwater.cli.features`, :mod:`~headwater.cli.labels`;
- models: :mod:`~headwater.cli.models` (the registry), :mod:`~headwater.cli.train`,
  :mod:`~headwater.cli.serve`, :mod:`~headwater.cli.policy` (the routing policy of a
  running server);
- the loop: :mod:`~headwater.cli.run` (every component, supervised),
  :mod:`~headwater.cli.simulate` (the whole system on a simulated clock),
  :mod:`~headwater.cli.report`, :mod:`~headwater.cli.eval` (backtests and evaluation in
  production), :mod:`~headwater.cli.demos` (``headwater demo``),
  :mod:`~headwater.cli.datasets` (sample data), :mod:`~headwater.cli.simulate` (a history
  replayed through the whole system), :mod:`~headwater.cli.ui` (the console, a web page
  that shows the loop live).

Every command takes the global ``--log LOCATION`` (default from
:class:`headwater.config.Settings`); ``--version`` prints the version.

Exit codes: 0 success, 1 failure, 2 bad input (arguments, files, settings).
"""

from headwater.cli.app import app, main

__all__ = ["app", "main"]
