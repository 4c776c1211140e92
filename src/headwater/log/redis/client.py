"""The connection to the Redis server, and how its failures surface.

This is the only module of the backend that imports redis-py, so a missing extra is
reported in one place, as :class:`~headwater.errors.MissingExtraError`. Every call to
the server runs inside :func:`failures`, which turns redis-py's errors (connection
refused, timeouts, error replies) into :class:`~headwater.errors.BackendError` naming
the server and what was being done; the original error stays in ``__cause__``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from headwater.errors import BackendError, MissingExtraError
from headwater.locations import redacted

try:
    import redis
    import redis.asyncio
    from redis.backoff import NoBackoff
    from redis.commands.core import Script
    from redis.retry import Retry
except ImportError as exc:
    raise MissingExtraError("The Redis log backend", "redis", "redis") from exc

__all__ = ["Redis", "Script", "ScriptConnection", "connect", "connect_async", "failures",
           "location", "raw", "text"]

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


class ScriptConnection:
    """One asyncio connection to ``url`` that runs one Lua ``script``, a call at a time.

    For a hot path that calls one script over and over from an event loop: a call is
    ``EVALSHA``, sent and answered on a connection kept for it, without the client's
    connection pool, retry wrapper and script object around every call (a third of the
    client's CPU time per call). A server that does not know the script (restarted,
    flushed) gets it with ``EVAL`` once. A call that fails or is cancelled drops the
    connection (its reply may still be on the way); the next call opens another.
    """

    def __init__(self, url: str, script: str) -> None:
        self._client = connect_async(url)
        self._script = script
        self._sha = hashlib.sha1(script.encode()).hexdigest()
        self._connection: Any = None
        self._lock = asyncio.Lock()

    async def __call__(self, keys: Sequence[str]) -> Any:
        """The script's reply for ``keys`` (redis-py's errors as they come)."""
        async with self._lock:
            connection = self._connection
            if connection is None:
                pool: Any = self._client.connection_pool  # redis-py leaves it untyped
                connection = pool.make_connection()
                await connection.connect()
                self._connection = connection
            try:
                await connection.send_command("EVALSHA", self._sha, len(keys), *keys)
                try:
                    return await connection.read_response()
                except redis.exceptions.NoScriptError:
                    await connection.send_command("EVAL", self._script, len(keys), *keys)
                    return await connection.read_response()
            except BaseException:
                self._connection = None
                await connection.disconnect()
                raise

    async def close(self) -> None:
        """Close the connection (from the loop that made it)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()
        await self._client.aclose()


def location(url: str) -> str:
    """``url`` without its password, for messages (:func:`headwater.locations.redacted`)."""
    return redacted(url)


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
