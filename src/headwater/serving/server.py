"""Running the app: uvicorn with httptools and uvloop, bound to 127.0.0.1 by default.

:func:`serve` blocks until the server stops (Ctrl-C); :class:`BackgroundServer` runs one
in a thread (tests, benchmarks, notebooks) and reports the port it bound, so port 0
(an ephemeral port) can be used.

Needs ``uvicorn``, ``httptools`` and ``uvloop`` (``pip install 'headwater[serve]'``).
"""

from __future__ import annotations

import threading
from typing import Any

from headwater.errors import MissingExtraError
from headwater.serving.app import ServingApp

try:
    import uvicorn
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("The prediction server", "serve", "uvicorn") from exc

__all__ = ["BackgroundServer", "serve", "server_config"]


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def server_config(app: ServingApp, host: str = "127.0.0.1", port: int = 8000,
                  **options: Any) -> uvicorn.Config:
    """The uvicorn configuration: httptools and uvloop when installed, no access log."""
    settings: dict[str, Any] = {
        "host": host, "port": port, "lifespan": "on", "access_log": False,
        "log_level": "warning", "server_header": False, "date_header": False,
        "http": "httptools" if _has("httptools") else "h11",
        "loop": "uvloop" if _has("uvloop") else "asyncio",
    }
    settings.update(options)
    return uvicorn.Config(app, **settings)


def serve(app: ServingApp, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve ``app`` until interrupted."""
    uvicorn.Server(server_config(app, host, port, **options)).run()


class BackgroundServer:
    """A uvicorn server in a daemon thread; ``port`` is the port it bound.

    Use it as a context manager: entering waits until the server listens (at most
    ``timeout_s``), leaving stops it.
    """

    def __init__(self, app: ServingApp, host: str = "127.0.0.1", port: int = 0,
                 *, timeout_s: float = 10.0, **options: Any) -> None:
        self.server = uvicorn.Server(server_config(app, host, port, **options))
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._thread = threading.Thread(target=self.server.run, name="headwater-serve",
                                        daemon=True)

    def start(self) -> BackgroundServer:
        self._thread.start()
        ready = threading.Event()
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server stopped while starting")
            if ready.wait(0.01) or self.timeout_s <= 0:
                break
            self.timeout_s -= 0.01
        if not self.server.started:
            raise TimeoutError("the server did not start in time")
        sockets = [s for server in self.server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
