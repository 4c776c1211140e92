"""The online store on Redis Cluster (``pip install 'headwater[redis]'``).

The same hashes, scripts and atomic batches as :mod:`headwater.store.online.redis`, on a
cluster that spreads its keys over several primaries by hash slot. Every key of a
namespace carries the namespace as its hash tag, so a namespace's entities, version,
metadata and fences are in one slot:

==============================================  ========================================
key                                             holds
==============================================  ========================================
``{<prefix>:<namespace>}:e:<entity>``           hash: feature name → state blob
``{<prefix>:<namespace>}:meta``                 hash: ``version``, and ``m:<key>`` → value
==============================================  ========================================

A batch (a micro-batch of the feature engine, with its fence) is then still one Lua
script on one primary, applied whole or not at all, and ``read_many`` one script call;
namespaces (entity types, feature views) spread over the primaries. A namespace is held
by one primary (and its replicas): its entities do not spread over the cluster.

``redis+cluster://host:port`` (``rediss+cluster://`` for TLS) names any node of the
cluster; the client learns the others from it and follows slots as they move.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from headwater.errors import BackendError, ConfigError, MissingExtraError

try:
    import redis
    import redis.asyncio.cluster
    import redis.cluster
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as exc:
    raise MissingExtraError("The Redis Cluster online store", "redis", "redis") from exc

from headwater.log.redis.client import CONNECT_TIMEOUT_S, REPLY_TIMEOUT_S, location
from headwater.store.online.batch import Batch, check_entities
from headwater.store.online.redis import COMMIT, DEFAULT_PREFIX, READ, RedisOnlineStore

__all__ = ["RedisClusterOnlineStore", "cluster_url"]

_SCHEMES: Final = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def cluster_url(url: str) -> str:
    """The ``redis://`` URL redis-py's cluster client takes for a
    ``redis+cluster://`` one."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _SCHEMES:
        raise ConfigError(f"{location(url)!r} is not a Redis Cluster location: use "
                          "redis+cluster://host:port")
    return f"{_SCHEMES[scheme]}://{rest}"


@contextmanager
def failures(where: str, action: str) -> Iterator[None]:
    """redis-py's errors, the cluster client's own among them, as :class:`BackendError`."""
    try:
        yield
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        raise BackendError(f"Redis Cluster at {where}: {action} failed: {exc}") from exc


class RedisClusterOnlineStore(RedisOnlineStore):
    """Feature-state blobs in Redis hashes on a cluster, one hash slot per namespace."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        if not isinstance(prefix, str) or not prefix or re.search(r"[{}]", prefix):
            raise ConfigError("the Redis Cluster online store needs a non-empty key prefix "
                              f"without braces, got {prefix!r}")
        self.url = url
        self.prefix = prefix
        self._where = location(url)
        with failures(self._where, "connecting"):
            self._client: Any = redis.cluster.RedisCluster.from_url(
                cluster_url(url), socket_connect_timeout=CONNECT_TIMEOUT_S,
                socket_timeout=REPLY_TIMEOUT_S, retry=Retry(NoBackoff(), 0),
                decode_responses=False)
        self._commit_script = self._client.register_script(COMMIT)
        self._read_script = self._client.register_script(READ)
        self._checked: set[str] = set()
        self._async_client: Any = None  # made in the loop that reads
        self._async_read: Any = None

    def __repr__(self) -> str:
        return f"RedisClusterOnlineStore({self._where!r}, prefix={self.prefix!r})"

    def read(self, namespace: str, entity: str) -> dict[str, bytes]:
        with _as_cluster(self):
            return super().read(namespace, entity)

    def read_many(self, namespace: str, entities: Sequence[str]) -> list[dict[str, bytes]]:
        self._check_namespace(namespace)
        check_entities(entities)
        if not entities:
            return []
        with failures(self._where, f"reading {len(entities)} entities of {namespace!r}"):
            replies = self._read_script(keys=[self._entity(namespace, e) for e in entities])
        return _features(replies)

    async def read_many_async(self, namespace: str, entities: Sequence[str]
                              ) -> list[dict[str, bytes]]:
        """:meth:`read_many` without blocking the event loop it is awaited in."""
        self._check_namespace(namespace)
        check_entities(entities)
        if not entities:
            return []
        if self._async_client is None:
            with failures(self._where, "connecting"):
                self._async_client = redis.asyncio.cluster.RedisCluster.from_url(
                    cluster_url(self.url), socket_connect_timeout=CONNECT_TIMEOUT_S,
                    socket_timeout=REPLY_TIMEOUT_S, decode_responses=False)
            self._async_read = self._async_client.register_script(READ)
        with failures(self._where, f"reading {len(entities)} entities of {namespace!r}"):
            replies = await self._async_read(
                keys=[self._entity(namespace, e) for e in entities])
        return _features(replies)

    async def close_async(self) -> None:
        client, self._async_client = self._async_client, None
        if client is not None:
            with failures(self._where, "closing the connections"):
                await client.aclose()

    def version(self, namespace: str) -> int | None:
        with _as_cluster(self):
            return super().version(namespace)

    def meta_get(self, namespace: str, key: str) -> bytes | None:
        with _as_cluster(self):
            return super().meta_get(namespace, key)

    def destroy(self) -> None:
        """Delete every namespace of this store (on every primary): the keys of the two
        shapes above under the prefix, not the others."""
        pattern = "{" + re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + ":*"
        own = re.compile(rb"\{" + re.escape(self.prefix.encode())
                         + rb":[^:}]+\}:(?:meta|e:.*)\Z", re.S)
        with failures(self._where, f"deleting the keys under {self.prefix!r}"):
            doomed = [key for key in self._client.scan_iter(match=pattern, count=1000)
                      if own.match(key)]
            for start in range(0, len(doomed), 1000):
                self._client.unlink(*doomed[start:start + 1000])

    def _commit(self, batch: Batch, action: str) -> None:
        with _as_cluster(self):
            super()._commit(batch, action)

    def _entity(self, namespace: str, entity: str) -> str:
        return f"{{{self.prefix}:{namespace}}}:e:{entity}"

    def _meta(self, namespace: str) -> str:
        return f"{{{self.prefix}:{namespace}}}:meta"


@contextmanager
def _as_cluster(store: RedisClusterOnlineStore) -> Iterator[None]:
    """The cluster client's own errors (not redis-py's ``RedisError``) as
    :class:`BackendError`; the others are wrapped by the shared code already."""
    try:
        yield
    except redis.exceptions.RedisClusterException as exc:
        raise BackendError(f"Redis Cluster at {store._where}: {exc}") from exc


def _features(replies: list[list[bytes]]) -> list[dict[str, bytes]]:
    out = []
    for flat in replies:
        names = iter(flat)
        out.append({name.decode(): blob for name, blob in zip(names, names, strict=True)})
    return out
