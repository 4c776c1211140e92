"""The Redis online store (``pip install 'headwater[redis]'``): one hash per entity.

==========================================  ============================================
key                                         holds
==========================================  ============================================
``<prefix>:<namespace>:e:<entity>``         hash: feature name → state blob
``<prefix>:<namespace>:meta``               hash: ``version``, and ``m:<key>`` → value
==========================================  ============================================

A read is one ``HGETALL`` (the whole feature set, one round trip); ``read_many`` is one
pipelined round trip. ``read_many_async``, its form for an event loop (an asyncio
client, created in the loop on first use: the server batches the reads of concurrent
requests through it, :mod:`headwater.store.online.batched`), is one command whatever
the number of entities, a Lua script (:data:`READ`) that answers every entity's hash in
one reply, sent on a connection kept for it
(:class:`~headwater.log.redis.client.ScriptConnection`): the client's cost per command (a
reply read and parsed on its own, with its own timeout, through the connection pool)
was most of a served request's CPU time, the server's cost per ``HGETALL`` a small part
of it. Every change
(write, delete, ``meta_set``) is one Lua script (:data:`COMMIT`), which Redis runs
alone: the rows, the version check and the new version and metadata of a batch are
applied together or not at all, in one round trip, however many processes write. Redis
6.2 or newer, standalone or primary/replica: a batch's keys span hash slots, so Redis
Cluster is not supported.

Namespaces never hold ``:``, so a key's namespace ends at the next ``:``. The default
prefix, ``headwater-online`` (:data:`DEFAULT_PREFIX`), keeps these keys apart from the
Redis log backend's (``headwater``): neither prefix is the other's, so neither
``destroy`` reaches the other's keys. :meth:`RedisOnlineStore.destroy` deletes only keys
of the two shapes above, whatever else shares the prefix.

Importing this module without redis-py installed raises
:class:`~headwater.errors.MissingExtraError`, which names the extra to install.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from typing import Any, Final

from headwater.errors import ConfigError, MissingExtraError

try:
    import redis  # noqa: F401  (checked here so the message names the online store)
except ImportError as exc:
    raise MissingExtraError("The Redis online store", "redis", "redis") from exc

from headwater.log.redis.client import (
    Script,
    ScriptConnection,
    connect,
    failures,
    location,
    raw,
)
from headwater.store.online.batch import (
    Batch,
    check_entities,
    check_entity,
    check_meta_key,
    check_namespace,
)
from headwater.store.online.state import check_version
from headwater.store.online.writer import BatchWriter

__all__ = ["COMMIT", "DEFAULT_PREFIX", "READ", "RedisOnlineStore"]

#: The key prefix of a store opened without one (the log's is ``headwater``).
DEFAULT_PREFIX: Final = "headwater-online"

COMMIT: Final = """
-- KEYS: the namespace's meta hash, the D entities to delete, the entities to write
-- ARGV: version ('' for none), D, and the blobs (see _pack): the metadata to set,
--       then the features of each entity written; then the fence's metadata field
--       ('' for none), its epoch and '1' for a claim
-- Returns nil once applied; the current version when ours is not greater, or
-- {'fenced', the stored epoch} when the fence does not hold (then nothing is
-- applied). Versions are decimal strings compared by length, then bytes: exact to
-- any size.
local version = ARGV[1]
local fence = ARGV[4]
if fence ~= nil and fence ~= '' then
  local stored = tonumber(redis.call('HGET', KEYS[1], 'm:' .. fence) or '-1')
  local epoch = tonumber(ARGV[5])
  if (ARGV[6] == '1' and epoch <= stored) or (ARGV[6] ~= '1' and epoch ~= stored) then
    return {'fenced', tostring(stored)}
  end
  redis.call('HSET', KEYS[1], 'm:' .. fence, ARGV[5])
end
if version ~= '' then
  local current = redis.call('HGET', KEYS[1], 'version')
  if current and (#version < #current or (#version == #current and version <= current)) then
    return current
  end
end
local deletes = tonumber(ARGV[2])
for i = 2, deletes + 1 do redis.call('UNLINK', KEYS[i]) end
local data, pos, count = ARGV[3], 1, 0
count, pos = struct.unpack('<I4', data, pos)
for _ = 1, count do
  local key, value
  key, value, pos = struct.unpack('<I4c0I4c0', data, pos)
  redis.call('HSET', KEYS[1], 'm:' .. key, value)
end
for k = deletes + 2, #KEYS do
  count, pos = struct.unpack('<I4', data, pos)
  while count > 0 do  -- in chunks: unpack is bounded by Lua's C stack
    local n, flat = math.min(count, 2000), {}
    for i = 1, n do
      flat[2 * i - 1], flat[2 * i], pos = struct.unpack('<I4c0I4c0', data, pos)
    end
    redis.call('HSET', KEYS[k], unpack(flat, 1, 2 * n))
    count = count - n
  end
end
if version ~= '' then redis.call('HSET', KEYS[1], 'version', version) end
return nil
"""

READ: Final = """
-- KEYS: the entities' hashes. Returns each one's fields and values, flat, in order.
local found = {}
for i, key in ipairs(KEYS) do found[i] = redis.call('HGETALL', key) end
return found
"""

_GLOB: Final = re.compile(r"([*?\[\]\\])")
_U32: Final = struct.Struct("<I")


class RedisOnlineStore(BatchWriter):
    """Feature-state blobs in Redis hashes, shared by every process on the URL.

    ``url`` is ``redis://[user:password@]host:port/db`` (or ``rediss://`` for TLS);
    every key goes under ``prefix``, so several stores can share a database.
    """

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError("the Redis online store needs a non-empty key prefix")
        self.url = url
        self.prefix = prefix
        self._where = location(url)
        self._client = connect(url)
        self._commit_script: Script = self._client.register_script(COMMIT)
        self._checked: set[str] = set()  # namespaces whose names passed the check
        self._async: ScriptConnection | None = None  # made in the loop that reads

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self._where!r}, prefix={self.prefix!r})"

    # -- the protocol -------------------------------------------------------------

    def read(self, namespace: str, entity: str) -> dict[str, bytes]:
        self._check_namespace(namespace)
        check_entity(entity)
        with failures(self._where, f"reading {namespace!r} entity {entity!r}"):
            found: Any = self._client.hgetall(self._entity(namespace, entity))
        # The client never decodes replies: names are bytes here.
        return {name.decode(): blob for name, blob in found.items()}

    def read_many(self, namespace: str, entities: Sequence[str]) -> list[dict[str, bytes]]:
        self._check_namespace(namespace)
        check_entities(entities)
        if not entities:
            return []
        with failures(self._where, f"reading {len(entities)} entities of {namespace!r}"):
            pipe = self._client.pipeline(transaction=False)
            for entity in entities:
                pipe.hgetall(self._entity(namespace, entity))
            replies: list[Any] = pipe.execute()
        return [{name.decode(): blob for name, blob in found.items()} for found in replies]

    async def read_many_async(self, namespace: str, entities: Sequence[str]
                              ) -> list[dict[str, bytes]]:
        """:meth:`read_many` without blocking the event loop it is awaited in."""
        self._check_namespace(namespace)
        check_entities(entities)
        if not entities:
            return []
        if self._async is None:
            self._async = ScriptConnection(self.url, READ)
        with failures(self._where, f"reading {len(entities)} entities of {namespace!r}"):
            replies: list[list[bytes]] = await self._async(
                [self._entity(namespace, entity) for entity in entities])
        out = []
        for flat in replies:
            names = iter(flat)
            out.append({name.decode(): blob for name, blob in zip(names, names, strict=True)})
        return out

    async def close_async(self) -> None:
        """Close the asyncio client's connections (from the loop that made them)."""
        connection, self._async = self._async, None
        if connection is not None:
            with failures(self._where, "closing the connections"):
                await connection.close()

    def version(self, namespace: str) -> int | None:
        self._check_namespace(namespace)
        with failures(self._where, f"reading the version of {namespace!r}"):
            value = self._client.hget(self._meta(namespace), "version")
        return None if value is None else int(value)

    def meta_get(self, namespace: str, key: str) -> bytes | None:
        self._check_namespace(namespace)
        check_meta_key(key)
        with failures(self._where, f"reading metadata {key!r} of {namespace!r}"):
            value = self._client.hget(self._meta(namespace), f"m:{key}")
        return None if value is None else raw(value)

    def close(self) -> None:
        with failures(self._where, "closing the connections"):
            self._client.close()

    # -- the server -----------------------------------------------------------------

    def ping(self) -> None:
        """Check that the server answers; raises :class:`BackendError` if not."""
        with failures(self._where, "ping"):
            self._client.ping()

    def destroy(self) -> None:
        """Delete every namespace of this store: the keys under the prefix that have the
        shape of its entity and metadata keys, not the others (a log sharing the prefix
        keeps its streams; :func:`~headwater.store.online.open_online_store` refuses a
        prefix that overlaps the log's)."""
        pattern = _GLOB.sub(r"\\\1", self.prefix) + ":*"
        own = re.compile(re.escape(self.prefix.encode()) + rb":[^:]+:(?:meta|e:.*)\Z", re.S)
        with failures(self._where, f"deleting the keys under {self.prefix!r}"):
            doomed: list[bytes] = []
            for key in self._client.scan_iter(match=pattern, count=1000):
                if not own.match(key):
                    continue
                doomed.append(key)
                if len(doomed) >= 1000:
                    self._client.unlink(*doomed)
                    doomed.clear()
            if doomed:
                self._client.unlink(*doomed)

    # -- internals ----------------------------------------------------------------

    def _commit(self, batch: Batch, action: str) -> None:
        rows = batch.all_rows()
        if not (rows or batch.deletes or batch.meta or batch.version is not None
                or batch.fence is not None):
            return
        ns = batch.namespace
        keys = [self._meta(ns), *(self._entity(ns, e) for e in batch.deletes),
                *(self._entity(ns, e) for e in rows)]
        data = _pack([batch.meta, *rows.values()])
        args: list[str | int | bytes] = [
            "" if batch.version is None else str(batch.version), len(batch.deletes), data
        ]
        if batch.fence is not None:
            args += [batch.fence.key, batch.fence.epoch, "1" if batch.fence.claim else "0"]
        with failures(self._where, f"{action} {ns!r}"):
            current = self._commit_script(keys=keys, args=args)
        if isinstance(current, list):  # ['fenced', the stored epoch]
            assert batch.fence is not None
            batch.fence.check(current[1], ns)
        elif current is not None:
            check_version(batch, int(current))

    def _check_namespace(self, namespace: str) -> None:
        if type(namespace) is not str or namespace not in self._checked:
            check_namespace(namespace)
            self._checked.add(namespace)

    def _entity(self, namespace: str, entity: str) -> str:
        return f"{self.prefix}:{namespace}:e:{entity}"

    def _meta(self, namespace: str) -> str:
        return f"{self.prefix}:{namespace}:meta"


def _pack(sections: list[dict[str, bytes]]) -> bytes:
    """Every (name, blob) pair of a batch as one argument for :data:`COMMIT`.

    redis-py packs each argument of a command in Python, so passing thousands of pairs
    apart costs more than the server's work. Each section is its pair count, then the
    pairs, every string prefixed by its length (u32, little end), the layout Lua's
    ``struct.unpack('<I4c0')`` reads.
    """
    parts: list[bytes] = []
    for features in sections:
        parts.append(_U32.pack(len(features)))
        for name, blob in features.items():
            encoded = name.encode()
            parts += (_U32.pack(len(encoded)), encoded, _U32.pack(len(blob)), blob)
    return b"".join(parts)
