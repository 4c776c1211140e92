"""The embedded log: the default backend, a local directory and no server.

Each partition is a sequence of segment files of Arrow IPC record-batch messages with
a small in-memory index for offset and time seeks, so replay runs at columnar speed
from memory-mapped files. Appends are durable under an fsync policy, a torn tail is
repaired on the next append, and several processes may share one directory.
"""

from headwater.log.embedded.backend import EmbeddedBackend

__all__ = ["EmbeddedBackend"]
