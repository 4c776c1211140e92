"""Data sets shipped with Headwater, for demos, examples and tests.

Each data set is a module with a ``load()`` returning Arrow tables in stream order,
with an event-time column, so they can be appended to a topic as they are, and a
``write(directory)`` that writes them as CSV files (``headwater datasets write NAME``).
Nothing is downloaded: the data travel inside the package or are generated.

- :mod:`headwater.datasets.elec2`: the NSW electricity market stream (45,312 half
  hours, 1996-1998), the classic real stream with concept drift.
- :mod:`headwater.datasets.payments`: card payments with chargebacks that arrive days
  later, generated around the present (the README's tour).
"""

from headwater.datasets import elec2, payments

__all__ = ["elec2", "payments"]
