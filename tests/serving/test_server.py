"""The uvicorn server: each response written whole, whatever its shape."""

from __future__ import annotations

import importlib.metadata
import json
import socket
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from headwater.serving.app import ServingApp
from headwater.serving.server import BackgroundServer, OneWriteProtocol, ResponseWrites


class _Wire:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True


def test_a_head_waits_for_its_body_or_the_end_of_the_response() -> None:
    wire = _Wire()
    transport = ResponseWrites(wire)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # informational: at once
    assert wire.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    transport.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    assert len(wire.writes) == 1
    transport.write(b"2\r\n{}\r\n")
    transport.write(b"0\r\n\r\n")
    assert wire.writes[1:] == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                               b"2\r\n{}\r\n", b"0\r\n\r\n"]
    transport.response_complete()
    transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
    transport.close()  # uvicorn's own error responses: written, then closed
    assert wire.writes[-1] == b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"
    assert wire.closed


def test_after_switching_protocols_writes_go_out_as_they_come() -> None:
    wire = _Wire()
    transport = ResponseWrites(wire)  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    transport.write(b"\x81\x02hi")
    assert wire.writes == [b"HTTP/1.1 101 Switching Protocols\r\n\r\n", b"\x81\x02hi"]


def _exchange(port: int, raw: bytes, responses: int) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while data.count(b"HTTP/1.1 ") < responses or not data.endswith((b"}", b"\r\n\r\n")):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return [b"HTTP/1.1 " + part for part in data.split(b"HTTP/1.1 ")[1:]]


def test_head_pipelined_and_errors_over_real_uvicorn(app: ServingApp) -> None:
    assert OneWriteProtocol is not None  # httptools is installed with the serve extra
    with BackgroundServer(app, "127.0.0.1", 0) as server:
        body = json.dumps({"entities": {"user": "u1"}}).encode()
        predict = (b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: "
                   + str(len(body)).encode() + b"\r\n\r\n" + body)
        answers = _exchange(server.port, b"HEAD /health HTTP/1.1\r\nhost: x\r\n\r\n"
                            + predict + b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n" + predict,
                            4)
    assert [a[9:12] for a in answers] == [b"200", b"200", b"404", b"200"]
    assert answers[0].endswith(b"\r\n\r\n")  # HEAD: a head and no body
    assert json.loads(answers[1].split(b"\r\n\r\n", 1)[1])["version"] == 1
    assert json.loads(answers[2].split(b"\r\n\r\n", 1)[1])["error"]["field"] == "path"


def test_expect_continue_gets_its_interim_response(app: ServingApp) -> None:
    with BackgroundServer(app, "127.0.0.1", 0) as server, socket.create_connection(
            ("127.0.0.1", server.port), timeout=5) as sock:
        body = json.dumps({"entities": {"user": "u2"}}).encode()
        sock.sendall(b"POST /predict HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
                     b"content-length: " + str(len(body)).encode() + b"\r\n\r\n")
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        data = b""
        while not data.endswith(b"}"):
            data += sock.recv(65536)
    assert data.startswith(b"HTTP/1.1 200")


def test_the_server_does_no_per_request_work_it_does_not_need(app: ServingApp) -> None:
    from headwater.serving.server import server_config

    config = server_config(app)
    assert OneWriteProtocol is not None
    assert isinstance(config.http, type)
    assert issubclass(config.http, OneWriteProtocol)
    assert config.loop == "uvloop"
    assert not config.access_log
    assert not config.proxy_headers
    assert not config.server_header
    assert not config.date_header


def test_the_overridden_uvicorn_methods_are_still_there() -> None:
    """:data:`OneWriteProtocol` overrides methods of uvicorn's undocumented httptools
    protocol: an uvicorn outside the pinned versions that renamed one fails here, not in
    production."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    for name in ("connection_made", "data_received", "connection_lost",
                 "on_message_complete", "on_response_complete", "send_400_response"):
        assert callable(getattr(HttpToolsProtocol, name, None)), name
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    [pin] = [r for r in project["project"]["optional-dependencies"]["serve"]
             if r.startswith("uvicorn")]
    assert Version(importlib.metadata.version("uvicorn")) in SpecifierSet(
        pin.removeprefix("uvicorn"))


def test_two_writes_answer_the_same_as_one(app: ServingApp) -> None:
    """The benchmark's baseline (``one_write=False``) serves the same answers."""
    from headwater.serving.server import limited_protocol

    body = json.dumps({"entities": {"user": "u1"}}).encode()
    predict = (b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
    answers = []
    for one_write in (True, False):
        protocol = limited_protocol(10.0, 100, one_write=one_write)
        with BackgroundServer(app, "127.0.0.1", 0, http=protocol) as server:
            answers.append([json.loads(a.split(b"\r\n\r\n", 1)[1])["score"]
                            for a in _exchange(server.port, predict * 2, 2)])
    assert answers[0] == answers[1]
