"""The console: a local web page that shows the loop live.

``headwater ui`` serves it: topics (offsets, events/s, consumer groups and their lag,
dead letters by reason), features (the engine's lag and freshness, values online, how
often serving filled a default), models (versions over time, the lineage graph, alias
history, rejected candidates), serving (requests/s, latency percentiles, errors, the
running policy, traffic per arm) and the HTML reports of evaluation. It reads the log,
the model store, the online store and the prediction server's metrics, and writes
nothing. Pages are rendered on the server (Jinja2) and refresh by polling a JSON
endpoint; the one chart library (uPlot, MIT) ships in the package, so the console works
without a network.

Needs ``jinja2`` and ``uvicorn`` (``pip install 'headwater[ui]'``).
"""

from headwater.console.app import PAGES, ConsoleApp
from headwater.console.views import Sources

__all__ = ["PAGES", "ConsoleApp", "Sources"]
