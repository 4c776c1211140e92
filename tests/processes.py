"""Drive ``headwater`` as a user does: separate processes, HTTP on loopback.

:func:`headwater` runs one command to completion; :class:`Server` runs
``headwater serve`` in the background, reads what it prints as it comes, and stops it
with SIGINT (SIGKILL if it does not stop). Both take ``env``: variables over those of
the home, such as the backends of :class:`Backends` (the ``backends`` fixture runs a
test on the embedded default and on Redis + PostgreSQL, skipping when those servers
are absent unless ``HEADWATER_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from headwater.config import Settings
from headwater.log import Log, open_log
from tests.extras import require_extra
from tests.log.harness import REDIS_URL, unavailable
from tests.registry.harness import POSTGRES_URL, drop_schema

__all__ = ["Backends", "Server", "backends_of", "free_port", "headwater", "http", "wait_for"]


def environment(home: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a command: this one, with ``HEADWATER_HOME`` at ``home``, and
    ``env`` over it."""
    return {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never",
            "COLUMNS": "200", **(env or {})}


def headwater(home: Path, *args: str, timeout: float = 180.0, env: Mapping[str, str] | None = None,
              input: str | None = None) -> subprocess.CompletedProcess[str]:
    """``headwater ARGS…`` in a new process, run to its end."""
    return subprocess.run([sys.executable, "-m", "headwater", *args], env=environment(home, env),
                          input=input, capture_output=True, text=True, timeout=timeout,
                          check=False)


@dataclass(frozen=True)
class Backends:
    """Where the log, the online store and the model store are (``None``: embedded, under
    the home).."""

    name: str = "embedded"
    log: str | None = None
    online: str | None = None
    registry: str | None = None

    def environment(self, home: Path) -> dict[str, str]:
        """The ``HEADWATER_*`` variables that point a command at these backends (a server
        registry keeps its artifacts in ``<home>/artifacts``)."""
        env: dict[str, str] = {}
        for name, value in (("HEADWATER_LOG_URL", self.log),
                            ("HEADWATER_ONLINE_URL", self.online),
                            ("HEADWATER_REGISTRY_URL", self.registry),
                            ("HEADWATER_ARTIFACTS_URL",
                             str(home / "artifacts") if self.registry else None)):
            if value is not None:
                env[name] = value
        return env

    def settings(self, home: Path) -> Settings:
        """The settings a command run with :meth:`environment` reads."""
        return Settings.from_env({"HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never",
                                  **self.environment(home)})

    def open_log(self, home: Path) -> Log:
        settings = self.settings(home)
        return open_log(settings.log_location, settings=settings)


@contextmanager
def backends_of(name: str) -> Iterator[Backends]:
    """``"embedded"``: the default; ``"redis+postgres"``: the log and the online store on
    Redis (under prefixes of their own, destroyed after) and the model store on
    PostgreSQL (a fresh schema, dropped after). The ``backends`` fixture gives both."""
    if name == "embedded":
        yield Backends()
        return
    require_extra("redis", "redis")
    require_extra("psycopg", "postgres")
    from headwater.log.redis import RedisBackend
    from headwater.registry.postgres import PostgresRegistryBackend
    from headwater.store.online.redis import RedisOnlineStore

    prefix = f"hwtest-{uuid.uuid4().hex[:12]}"
    schema = f"hwtest_{uuid.uuid4().hex[:12]}"
    log = RedisBackend(REDIS_URL, prefix=prefix)
    online = RedisOnlineStore(REDIS_URL, prefix=f"{prefix}-online")  # apart from the log's
    try:
        log.ping()
        PostgresRegistryBackend(POSTGRES_URL, schema=schema, connect_timeout_s=3).close()
    except Exception as exc:
        log.close()
        online.close()
        unavailable(f"Redis at {REDIS_URL} and PostgreSQL at {POSTGRES_URL}: {exc}")
    try:
        yield Backends("redis+postgres", f"{REDIS_URL}?prefix={prefix}",
                       f"{REDIS_URL}?prefix={prefix}-online", f"{POSTGRES_URL}?schema={schema}")
    finally:
        log.destroy()
        log.close()
        online.destroy()
        online.close()
        drop_schema(schema)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: object | None = None) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of one request (status 0 when nothing answered)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except OSError:
        return 0, {}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Server:
    """``headwater serve ARGS…`` on a free loopback port, for a ``with`` block."""

    def __init__(self, home: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr: list[str] = []
        self._process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "serve", *args, "--port", str(self.port)],
            env=environment(home, env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        stream = self._process.stderr
        assert stream is not None
        self._reader = threading.Thread(target=lambda: self.stderr.extend(
            iter(stream.readline, "")), daemon=True)
        self._reader.start()

    def __enter__(self) -> Server:
        wait_for(lambda: self.answering() or self._process.poll() is not None, 120,
                 "the server to answer")
        assert self._process.poll() is None, "".join(self.stderr)
        return self

    def answering(self) -> bool:
        return http("GET", f"{self.url}/health")[0] == 200

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        return http("GET", f"{self.url}{path}")

    def post(self, path: str, body: object) -> tuple[int, dict[str, Any]]:
        return http("POST", f"{self.url}{path}", body)

    def printed(self) -> str:
        return "".join(self.stderr)

    def stop(self, signum: int = signal.SIGINT) -> int:
        """Send ``signum``; the exit code (SIGKILL after 30 s: a negative code)."""
        if self._process.poll() is None:
            self._process.send_signal(signum)
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(5)
        return self._process.returncode

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
