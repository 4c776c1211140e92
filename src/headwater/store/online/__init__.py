"""Online stores: the latest feature state of every entity, for serving.

An online store keeps, per *namespace* (a feature view or entity type), entity and
feature, the state blob the features layer last wrote (its tile partials); reading
an entity returns its whole feature set in one call, and the features layer
evaluates the windows at read time. Writes are atomic batches that may carry a write
version and metadata (an engine's consumer offsets), so the engine commits its state
and its progress together and resumes exactly once, and a fence: the epoch of the
writer that last claimed that part of the store, so a writer taken over is refused.

Backends, all passing one contract (``tests/store/test_contract.py``):

- :class:`EmbeddedOnlineStore`: a dict in memory made durable by a write-ahead log
  and snapshots in a local directory; the default, no server.
- :class:`MemoryOnlineStore`: a dict, for tests.
- ``headwater.store.online.redis.RedisOnlineStore``: one Redis hash per entity
  (``pip install 'headwater[redis]'``; imported only when used).
- ``headwater.store.online.cluster.RedisClusterOnlineStore``: the same on Redis
  Cluster, each namespace in one hash slot (``redis+cluster://``).

:func:`open_online_store` picks one by location; :class:`StoreFollower` keeps a reader
in another process than the writer (the prediction server) as current as the writer.
"""

from headwater.store.online.batch import Row
from headwater.store.online.connect import open_online_store
from headwater.store.online.embedded import EmbeddedOnlineStore
from headwater.store.online.follow import StoreFollower
from headwater.store.online.memory import MemoryOnlineStore
from headwater.store.online.protocol import OnlineStore

__all__ = [
    "EmbeddedOnlineStore",
    "MemoryOnlineStore",
    "OnlineStore",
    "Row",
    "StoreFollower",
    "open_online_store",
]
