"""Running the app: uvicorn with httptools and uvloop, bound to 127.0.0.1 by default.

:func:`serve` blocks until the server stops (Ctrl-C); :class:`BackgroundServer` runs one
in a thread (tests, benchmarks, notebooks) and reports the port it bound, so port 0
(an ephemeral port) can be used.

The configuration keeps uvicorn's per-request work to what serving needs: no access
log, no ``server`` or ``date`` header, no parsing of ``X-Forwarded-*`` headers (the
service reads no client address), and uvicorn's httptools protocol with one change,
:class:`OneWriteProtocol`: a response's head is written together with its body. uvicorn
writes them separately and uvloop sends each at once, so a small response costs two
``send`` system calls. ``benchmarks/serving.py --only protocol`` measures it, in one run,
against the same protocol writing twice (``one_write=False``) and against uvicorn's own:
on a loaded two-core machine one write took 0.977x the server CPU per request of two,
and the whole subclass, with the connection limits below, 1.04x uvicorn's own protocol
(``benchmarks/RESULTS.md``). The class overrides methods of one uvicorn does not
document (``HttpToolsProtocol``), so the ``serve`` extra pins uvicorn to the versions
its tests ran on, and a test checks that the methods it overrides are still there.

The same protocol bounds what one client can hold (:func:`limited_protocol`): a
connection has ``read_timeout_s`` to deliver each whole request, and past
``max_connections`` a new connection is answered 503 and closed. What the server
answers itself — those, and a request httptools cannot parse (uvicorn's plain-text
400) — has the app's shape, ``{"error": {"field", "reason"}}``.

A large batch is scored in a worker thread beside the event loop (see
:mod:`headwater.serving.app`), and the two share the interpreter lock: at each wake-up
the loop waits for the worker to hand the lock over, up to the interpreter's switch
interval (5 ms by default) and longer when a loaded machine deschedules the worker
while it holds the lock. A running server shortens the interval to
:data:`SWITCH_INTERVAL_S` (and restores it when it stops): on a two-core machine at load
16, ``GET /health`` beside four back-to-back batches of 1,000 requests went from 20 ms at
the median and 700 ms at p99 to 5-9 ms and 170 ms (``benchmarks/chaos.py`` measures it).
The batches lose little: the lock changes hands only when another thread waits for it.

Needs ``uvicorn``, ``httptools`` and ``uvloop`` (``pip install 'headwater[serve]'``).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any, Final

import msgspec

from headwater.errors import MissingExtraError
from headwater.serving.app import ServingApp
from headwater.serving.messages import ErrorBody, ErrorDetail

try:
    import uvicorn
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("The prediction server", "serve", "uvicorn") from exc

__all__ = ["SWITCH_INTERVAL_S", "BackgroundServer", "OneWriteProtocol", "ResponseWrites",
           "http_error", "limited_protocol", "listening_socket", "loop_first", "serve",
           "server_config"]

#: The interpreter's switch interval while a server runs (seconds): how long the event
#: loop waits at most for a batch's worker thread to hand over the interpreter lock.
SWITCH_INTERVAL_S: Final = 0.0005


@contextmanager
def loop_first() -> Iterator[None]:
    """Within the block, the interpreter switches threads every :data:`SWITCH_INTERVAL_S`
    (so the event loop waits less for a batch's worker); the interval before, after."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


class ResponseWrites(asyncio.Transport):
    r"""A connection's transport that holds each response's head until the first write of
    its body, and writes both at once.

    The first write of a response (other than an informational ``1xx`` one) is its head;
    it is held until the next write, :meth:`response_complete` (a response without a
    body, e.g. to ``HEAD``) or :meth:`close`, so nothing is reordered or left behind.
    After ``101 Switching Protocols`` every write goes out as it comes.

    >>> class Wire:
    ...     def __init__(self): self.writes = []
    ...     def write(self, data): self.writes.append(bytes(data))
    >>> wire = Wire()
    >>> transport = ResponseWrites(wire)  # type: ignore[arg-type]
    >>> transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    >>> transport.write(b"{}")
    >>> transport.response_complete()
    >>> transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    >>> transport.response_complete()
    >>> wire.writes  # doctest: +NORMALIZE_WHITESPACE
    [b'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}',
     b'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n']
    """

    __slots__ = ("_expect_head", "_head", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport
        self._head: bytes | None = None
        self._expect_head = True

    def write(self, data: bytes | bytearray | memoryview[int]) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + data)
        elif not self._expect_head:
            self._transport.write(data)
        elif data[9:10] != b"1":  # an informational b"HTTP/1.1 1xx" goes out at once
            self._expect_head = False
            self._head = bytes(data)
        else:
            if data[9:12] == b"101":  # switching protocols: no more HTTP responses here
                self._expect_head = False
            self._transport.write(data)

    def response_complete(self) -> None:
        """Write a head still held; the next write starts a new response."""
        self.flush()
        self._expect_head = True

    def flush(self) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._head or b"")

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()


def http_error(status: int, field: str, reason: str) -> bytes:
    """A whole ``Connection: close`` response carrying ``{"error": {field, reason}}``,
    for what the server answers itself, before or without the app.

    >>> http_error(408, "request", "late").split(b"\\r\\n")[0]
    b'HTTP/1.1 408 Request Timeout'
    """
    body = msgspec.json.encode(ErrorBody(ErrorDetail(field, reason)))
    phrase = HTTPStatus(status).phrase.encode()
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, phrase, len(body), body))


def _one_write_protocol() -> type[asyncio.Protocol] | None:
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is missing: uvicorn's h11 protocol serves as it is
        return None

    class OneWriteProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol writing each response in one system call, with
        the connection limits of :func:`limited_protocol` (none on this class)."""

        read_timeout_s: float | None = None
        max_connections: int | None = None
        one_write = True
        _read_timer: asyncio.TimerHandle | None = None
        _received = False
        _refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            limit = self.max_connections
            if limit is not None and len(self.server_state.connections) >= limit:
                self._refused = True
                self.transport = transport
                transport.write(http_error(503, "connection", f"the server holds its limit of "
                                           f"{limit} open connections; retry later"))
                transport.close()
                return
            super().connection_made(ResponseWrites(transport) if self.one_write else transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            self._received = True
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._refused:
                return
            super().connection_lost(exc)

        def on_message_complete(self) -> None:
            self._disarm()  # the whole request is in: the app has it
            super().on_message_complete()

        def on_response_complete(self) -> None:
            transport = self.transport
            if isinstance(transport, ResponseWrites):
                transport.response_complete()
            super().on_response_complete()
            if not transport.is_closing() and not self.pipeline:
                self._arm()  # the next request has the same time to arrive whole

        def send_400_response(self, msg: str) -> None:
            self.transport.write(http_error(400, "request", msg))
            self.transport.close()

        def _arm(self) -> None:
            self._disarm()
            self._received = False
            if self.read_timeout_s is not None:
                self._read_timer = self.loop.call_later(self.read_timeout_s, self._timed_out)

        def _disarm(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _timed_out(self) -> None:
            self._read_timer = None
            if self.transport.is_closing():
                return
            if self._received:  # part of a request came: say why it is cut
                self.transport.write(http_error(408, "request", f"not received whole within "
                                                f"{self.read_timeout_s:g} s"))
            self.transport.close()

    return OneWriteProtocol


#: uvicorn's httptools protocol with each response written at once (``None`` without
#: httptools).
OneWriteProtocol = _one_write_protocol()


def limited_protocol(read_timeout_s: float | None, max_connections: int | None, *,
                     one_write: bool = True) -> type[asyncio.Protocol] | None:
    """:data:`OneWriteProtocol` with connection limits (``None`` without httptools);
    ``one_write=False`` writes a response's head and body apart, as uvicorn does (for
    the benchmark that measures what the one write saves).

    ``read_timeout_s``: a connection must deliver a whole request (headers and body)
    within this time of opening, or of the previous response; otherwise it is closed —
    with a 408 when part of a request came, silently when nothing did. This is what
    frees the connections of a slow client (slowloris) or of one that sends nothing;
    uvicorn's own keep-alive timer starts only after a first response.
    ``max_connections``: one more connection is answered 503 and closed at once.
    """
    if OneWriteProtocol is None:
        return None
    return type("LimitedProtocol", (OneWriteProtocol,), {
        "read_timeout_s": read_timeout_s, "max_connections": max_connections,
        "one_write": one_write,
        "__doc__": f"OneWriteProtocol: read timeout {read_timeout_s} s, at most "
                   f"{max_connections} connections."})


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def server_config(app: ServingApp, host: str = "127.0.0.1", port: int = 8000, *,
                  read_timeout_s: float | None = 10.0, max_connections: int | None = 1_000,
                  **options: Any) -> uvicorn.Config:
    """The uvicorn configuration: httptools (:func:`limited_protocol`) and uvloop when
    installed, no access log, no forwarded headers."""
    settings: dict[str, Any] = {
        "host": host, "port": port, "lifespan": "on", "access_log": False,
        "log_level": "warning", "server_header": False, "date_header": False,
        "proxy_headers": False,
        "http": limited_protocol(read_timeout_s, max_connections) or "h11",
        "loop": "uvloop" if _has("uvloop") else "asyncio",
    }
    settings.update(options)
    return uvicorn.Config(app, **settings)


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port``. With ``reuse_port`` it is bound with
    ``SO_REUSEPORT``: several processes (the workers of one ``headwater serve --workers
    N``) listen on the same port and the kernel spreads the connections between them.
    Without it, a second server on a port in use fails to bind (``OSError``), as it
    should: two unrelated servers must not share a port by accident."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def serve(app: ServingApp, host: str = "127.0.0.1", port: int = 8000, *,
          reuse_port: bool = False, **options: Any) -> None:
    """Serve ``app`` until interrupted (``reuse_port``: see :func:`listening_socket`),
    the event loop first (:func:`loop_first`)."""
    sock = listening_socket(host, port, reuse_port=reuse_port)
    with sock, loop_first():
        uvicorn.Server(server_config(app, host, port, **options)).run(sockets=[sock])


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
        self._thread = threading.Thread(target=self._run, name="headwater-serve",
                                        daemon=True)

    def _run(self) -> None:
        with loop_first():
            self.server.run()

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
