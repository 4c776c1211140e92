"""The Redis Streams log backend (``pip install 'headwater[redis]'``).

Open it by URL, through :func:`headwater.log.open_log`, or directly::

    from headwater.log import Log
    from headwater.log.redis import RedisBackend

    log = Log(RedisBackend("redis://localhost:6379/0", prefix="headwater"))

Importing this package without redis-py installed raises
:class:`~headwater.errors.MissingExtraError`, which names the extra to install.
"""

from headwater.log.redis.backend import RedisBackend

__all__ = ["RedisBackend"]
