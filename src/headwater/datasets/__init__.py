"""Data sets shipped with Headwater, for demos, examples and tests.

Each data set is a module with a ``load()`` returning an Arrow table in stream order,
with an ``event_time`` column, so it can be appended to a topic as it is. The data
travel inside the package (compressed), so nothing is downloaded.

- :mod:`headwater.datasets.elec2`: the NSW electricity market stream (45,312 half
  hours, 1996-1998), the classic real stream with concept drift.
"""

from headwater.datasets import elec2

__all__ = ["elec2"]
