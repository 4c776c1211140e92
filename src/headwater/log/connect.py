"""Open a log by location: a path, or a URL naming a server backend.

- ``path/to/dir`` or ``file:///dir``: embedded, the default (no server)
- ``memory://``: in memory (tests)
- ``redis://host:port/db[?prefix=p]``: Redis Streams (``pip install 'headwater[redis]'``)
- ``kafka://host:port[,host:port]``: Kafka (``pip install 'headwater[kafka]'``)
- ``kafka+mock://``: librdkafka's built-in mock cluster (tests)
"""

from __future__ import annotations

from urllib.parse import urlsplit

from headwater.config import Settings
from headwater.locations import pop_query
from headwater.log.backend import LogBackend
from headwater.log.log import Log
from headwater.log.records import Retention
from headwater.time import Clock

__all__ = ["open_backend", "open_log"]


def open_log(location: str | None = None, *, settings: Settings | None = None,
             clock: Clock | None = None) -> Log:
    """Open the log at ``location`` (default: the settings' log location)."""
    settings = settings or Settings.from_env()
    backend = open_backend(location or settings.log_location, settings=settings, clock=clock)
    retention = Retention(max_age_us=settings.system_retention_us)
    return Log(backend, clock=clock, max_event_bytes=settings.max_event_bytes,
               system_retention=retention)


def open_backend(location: str, *, settings: Settings | None = None,
                 clock: Clock | None = None) -> LogBackend:
    settings = settings or Settings()
    scheme = urlsplit(location).scheme if "://" in location else ""
    if scheme in ("", "file"):
        from headwater.log.embedded import EmbeddedBackend

        path = urlsplit(location).path if scheme == "file" else location
        return EmbeddedBackend(path, fsync=settings.fsync, group_commit_ms=settings.group_commit_ms,
                               segment_bytes=settings.segment_bytes, clock=clock)
    if scheme == "memory":
        from headwater.log.memory import MemoryBackend

        return MemoryBackend(clock=clock)
    if scheme in ("redis", "rediss"):
        from headwater.log.redis import RedisBackend
        from headwater.log.redis.backend import DEFAULT_PREFIX

        url, prefix = pop_query(location, "prefix")
        return RedisBackend(url, prefix=prefix or DEFAULT_PREFIX, clock=clock,
                            session_timeout_s=settings.group_timeout_s)
    if scheme in ("kafka", "kafka+mock"):
        from headwater.log.kafka import KafkaBackend

        return KafkaBackend(location, clock=clock)
    from headwater.errors import ConfigError

    raise ConfigError(
        f"log location {location!r}: unknown scheme {scheme!r}; use a path, memory://, "
        "redis://, kafka:// or kafka+mock://"
    )
