"""The connection to the Redis server, and how its failures surface.

This is the only module of the backend that imports redis-py, so a missing extra is
reported in one place, as :class:`~headwater.errors.MissingExtraError`. Every call to
the server runs inside :func:`failures`, which turns redis-py's errors (connection
refused, timeouts, error replies) into :class:`~headwater.errors.BackendError` naming
the server and what was being done; the original error stays in ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final
from urllib.parse import urlsplit

from headwater.errors import BackendError, MissingExtraError

try:
    import redis
    import redis.asyncio
    from redis.backoff import NoBackoff
    from redis.commands.core import Script
    from redis.retry import Retry
except ImportError as exc:
    raise MissingExtraError("The Redis log backend", "redis", "redis") from exc

__all__ = ["Redis", "Script", "connect", "connect_async", "failures", "location", "raw",
           "text"]

Redis = redis.Redis

#: Seconds to wait for a connection and for a reply (a ``?socket_timeout=`` in the URL wins).
CONNECT_TIMEOUT_S: Final = 5.0
REPLY_TIMEOUT_S: Final = 30.0
#: Seconds a pooled connection may idle before it is checked with PING on next use.
HEALTH_CHECK_S: Final = 30


def connect(url: str) -> redis.Redis:
    """A client for ``url`` (``redis://[user:password@]host:port/db`` or ``rediss://``).

    Commands are not retried automatically: a reply lost after an append was applied
    would store the batch twice. Callers that need exactly-once retry with an
    idempotent producer id instead.
    """
    try:
        return redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=REPLY_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_S,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
        )
    except ValueError as exc:
        raise BackendError(f"cannot use Redis URL {location(url)!r}: {exc}") from exc


def connect_async(url: str) -> redis.asyncio.Redis:
    """An asyncio client for ``url``, configured as :func:`connect`'s (create it in the
    event loop that uses it)."""
    try:
        return redis.asyncio.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=REPLY_TIMEOUT_S,
            health_check_interval=HEALTH_CHECK_S,
            retry=redis.asyncio.retry.Retry(NoBackoff(), 0),
            decode_responses=False,
        )
    except ValueError as exc:
        raise BackendError(f"cannot use Redis URL {location(url)!r}: {exc}") from exc


def location(url: str) -> str:
    """``url`` without its user name and password, for messages."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2] or "localhost"
    return f"{parts.scheme}://{netloc}{parts.path}"


@contextmanager
def failures(where: str, action: str) -> Iterator[None]:
    """Raise redis-py's errors inside the block as :class:`BackendError`."""
    try:
        yield
    except redis.RedisError as exc:
        raise BackendError(f"Redis at {where}: {action} failed: {exc}") from exc


def raw(value: bytes | str) -> bytes:
    """A reply as bytes (the client never decodes replies; this narrows the type)."""
    return value.encode() if isinstance(value, str) else value


def text(value: bytes | str) -> str:
    """A reply as text (names of topics, groups and members are UTF-8)."""
    return value.decode() if isinstance(value, bytes) else value
