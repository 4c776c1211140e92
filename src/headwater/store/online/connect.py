"""Open an online store by location: a path, or a URL naming a server.

- ``path/to/dir`` or ``file:///dir``: embedded, the default (no server)
- ``memory://``: in memory (tests; each call makes a new, empty store)
- ``redis://host:port/db[?prefix=p]`` or ``rediss://…``: Redis
  (``pip install 'headwater[redis]'``); the default prefix is ``headwater-online``, apart
  from the Redis log's ``headwater``. A prefix that overlaps the settings' Redis log
  on the same database (the same, or one under the other) is refused: the online
  store would then share keys with the log.
- ``redis+cluster://host:port[?prefix=p]`` or ``rediss+cluster://…``: Redis Cluster
  (any node; each namespace in one hash slot, see :mod:`headwater.store.online.cluster`)

>>> open_online_store("memory://")
MemoryOnlineStore(namespaces=[])
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from headwater.config import Settings
from headwater.errors import ConfigError
from headwater.locations import pop_query
from headwater.store.online.protocol import OnlineStore

__all__ = ["open_online_store"]

_LOG: Final = logging.getLogger("headwater.store.online")


def open_online_store(
    location: str, *, settings: Settings | None = None, read_only: bool = False,
    create: bool = False,
) -> OnlineStore:
    """The online store at ``location``.

    The embedded store uses the settings' fsync policy; ``read_only`` opens it as a
    reader beside another process's writer (the other backends have no such mode:
    every handle may write). A reader refuses a directory that does not exist, unless
    ``create`` says to make it: a reader started before its writer (a server started
    before the feature engine) then reads nothing until the writer writes there.
    """
    settings = settings or Settings()
    scheme = urlsplit(location).scheme if "://" in location else ""
    if scheme in ("", "file"):
        from headwater.store.online.embedded import EmbeddedOnlineStore

        path = urlsplit(location).path if scheme == "file" else location
        if read_only and create and not Path(path).is_dir():
            Path(path).mkdir(parents=True)
            _LOG.warning("no online store at %s yet: made it empty; every entity reads as "
                         "unknown until its writer (the feature engine) writes there", path)
        return EmbeddedOnlineStore(path, fsync=settings.fsync,
                                   group_commit_ms=settings.group_commit_ms,
                                   read_only=read_only)
    if scheme == "memory":
        from headwater.store.online.memory import MemoryOnlineStore

        return MemoryOnlineStore()
    if scheme in ("redis", "rediss"):
        from headwater.store.online.redis import DEFAULT_PREFIX, RedisOnlineStore

        url, prefix = pop_query(location, "prefix")
        prefix = prefix or DEFAULT_PREFIX
        _check_apart_from_log(url, prefix, settings.log_location)
        return RedisOnlineStore(url, prefix=prefix)
    if scheme in ("redis+cluster", "rediss+cluster"):
        from headwater.store.online.cluster import RedisClusterOnlineStore
        from headwater.store.online.redis import DEFAULT_PREFIX

        url, prefix = pop_query(location, "prefix")
        return RedisClusterOnlineStore(url, prefix=prefix or DEFAULT_PREFIX)
    raise ConfigError(
        f"online store location {location!r}: unknown scheme {scheme!r}; use a path, "
        "memory://, redis:// or redis+cluster://"
    )


def _check_apart_from_log(url: str, prefix: str, log_location: str) -> None:
    """Refuse an online store whose keys would mix with the Redis log's."""
    if urlsplit(log_location).scheme not in ("redis", "rediss"):
        return
    log_url, log_prefix = pop_query(log_location, "prefix")
    from headwater.log.redis.backend import DEFAULT_PREFIX as LOG_PREFIX

    log_prefix = log_prefix or LOG_PREFIX
    if log_url.rstrip("/") != url.rstrip("/"):
        return
    if (prefix == log_prefix or prefix.startswith(f"{log_prefix}:")
            or log_prefix.startswith(f"{prefix}:")):
        raise ConfigError(
            f"online store prefix {prefix!r} overlaps the log's {log_prefix!r} on {url}: "
            "give the online store its own (?prefix=…; the default is headwater-online)")
