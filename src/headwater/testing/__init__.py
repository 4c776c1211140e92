"""Public test seams: in-memory log, online store and model-store backends, and a manual
clock.

Use them in your own tests the way Headwater's tests do::

    from headwater.log import Log
    from headwater.testing import ManualClock, MemoryBackend

    log = Log(MemoryBackend(clock=ManualClock(0)))
"""

from headwater.log.memory import MemoryBackend
from headwater.registry.memory import MemoryRegistryBackend
from headwater.store.online.memory import MemoryOnlineStore
from headwater.time import ManualClock

__all__ = ["ManualClock", "MemoryBackend", "MemoryOnlineStore", "MemoryRegistryBackend"]
