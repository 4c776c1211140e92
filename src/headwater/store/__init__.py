"""Stores of derived feature data, rebuilt from the log when lost.

- :mod:`headwater.store.online`: the latest feature state per entity, for serving
  (embedded, Redis, in memory).
- :mod:`headwater.store.history`: every feature value change, for point-in-time joins.

The package root imports no backend, so importing it never needs an optional extra:
import the subpackage you use.
"""

__all__: list[str] = []
