"""Backend locations: the small parsing every ``open_*`` function shares.

>>> pop_query("redis://h:6379/0?prefix=hw&x=1", "prefix")
('redis://h:6379/0?x=1', 'hw')
>>> in_process("kafka+mock://?brokers=3"), in_process(".headwater/log")
(True, False)
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from headwater.errors import ConfigError

__all__ = ["check_shared", "in_process", "pop_query", "redacted"]

_SECRETS: Final = ("password", "passwd", "secret", "token")

#: Schemes whose storage lives inside the process that opens them.
IN_PROCESS_SCHEMES: Final = ("memory", "kafka+mock")


def redacted(url: str) -> str:
    """``url`` fit for a message or a log line: without its password, and with the value
    of any query parameter that names a secret (``password``, ``token``, …) masked.

    >>> redacted("postgresql://ada:secret@db:5432/ml")
    'postgresql://ada@db:5432/ml'
    >>> redacted("rediss://:s3cret@[::1]:6380/0?prefix=hw")
    'rediss://[::1]:6380/0?prefix=hw'
    >>> redacted("postgresql://db/ml?sslmode=require&password=secret")
    'postgresql://db/ml?sslmode=require&password=***'
    >>> redacted(".headwater/registry")
    '.headwater/registry'
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name = user.partition(":")[0]
        netloc = f"{name}@{host}" if name else host
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(secret in key.lower() for key, _ in pairs for secret in _SECRETS):
        query = urlencode([(k, "***" if any(s in k.lower() for s in _SECRETS) else v)
                           for k, v in pairs], safe="*")
    else:
        query = parts.query
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def pop_query(url: str, name: str) -> tuple[str, str | None]:
    """``url`` without the query parameter ``name``, and that parameter's value."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    value = next((v for k, v in pairs if k == name), None)
    rest = urlencode([(k, v) for k, v in pairs if k != name])
    return urlunsplit(parts._replace(query=rest)), value


def in_process(location: str) -> bool:
    """Whether ``location`` names storage that lives and dies inside one process
    (``memory://``, ``kafka+mock://``): another process opening it gets its own, empty."""
    return "://" in location and urlsplit(location).scheme in IN_PROCESS_SCHEMES


def check_shared(location: str, field: str) -> str:
    """``location``, or a :class:`~headwater.errors.ConfigError` when it lives inside one
    process, where commands run as processes of their own would each see their own
    empty storage and everything one of them wrote would vanish with it."""
    if in_process(location):
        raise ConfigError(
            f"{field} {location!r} lives inside one process: every headwater command (and "
            "each component of headwater run) is a process of its own and would get its own "
            "empty store, losing what it wrote when it exits. Use a directory (the embedded "
            "default) or a server (kafka://host:port, redis://host:port); the in-process "
            "stores are for tests in one Python process")
    return location
