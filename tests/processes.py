"""Drive ``headwater`` as a user does: separate processes, HTTP on loopback.

:func:`headwater` runs one command to completion; :class:`Server` runs
``headwater serve`` in the background, reads what it prints as it comes, and stops it
with SIGINT (SIGKILL if it does not stop).
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
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Server", "free_port", "headwater", "http", "wait_for"]


def environment(home: Path) -> dict[str, str]:
    """The environment of a command: this one, with ``HEADWATER_HOME`` at ``home``."""
    return {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never",
            "COLUMNS": "200"}


def headwater(home: Path, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """``headwater ARGS…`` in a new process, run to its end."""
    return subprocess.run([sys.executable, "-m", "headwater", *args], env=environment(home),
                          capture_output=True, text=True, timeout=timeout, check=False)


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

    def __init__(self, home: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr: list[str] = []
        self._process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "serve", *args, "--port", str(self.port)],
            env=environment(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
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

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(5)
