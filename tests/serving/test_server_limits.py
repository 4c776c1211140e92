"""What one client can hold of the server, over real sockets on loopback: slow and idle
connections are closed, connections are capped, large batches do not hold the loop, and
what the server answers itself has the app's error shape."""

from __future__ import annotations

import http.client
import json
import select
import socket
import sys
import threading
import time

import pytest

from headwater.serving.app import ServingApp
from headwater.serving.server import SWITCH_INTERVAL_S, BackgroundServer, OneWriteProtocol

pytestmark = pytest.mark.skipif(OneWriteProtocol is None, reason="needs httptools")


def predict_ok(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", "/predict", body=json.dumps({"entities": {"user": "u1"}}))
        response = connection.getresponse()
        return response.status == 200 and json.loads(response.read())["version"] == 1
    finally:
        connection.close()


def read_until_closed(sock: socket.socket, deadline: float) -> bytes | None:
    """What the server sent before closing ``sock``; ``None`` if it was still open at
    ``deadline``."""
    data = b""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    return None


def error_body(response: bytes) -> dict[str, str]:
    head, body = response.split(b"\r\n\r\n", 1)
    assert b"content-type: application/json" in head.lower()
    return dict(json.loads(body)["error"])


def test_slow_and_idle_connections_are_closed_and_others_served(app: ServingApp) -> None:
    with BackgroundServer(app, "127.0.0.1", 0, read_timeout_s=0.5) as server:
        slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
        slow_body = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        for sock in slow:
            sock.sendall(b"POST /predict HTTP/1.1\r\nhost: x\r\n")
        for sock in slow_body:  # headers whole, the body never
            sock.sendall(b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        served = 0
        deadline = time.monotonic() + 30
        open_slow = list(slow)
        while open_slow and time.monotonic() < deadline:  # drip headers, slowloris-style
            for sock in list(open_slow):
                try:
                    sock.sendall(b"x-drip: 1\r\n")
                except OSError:
                    open_slow.remove(sock)
            served += predict_ok(server.port)  # everyone else is answered meanwhile
            time.sleep(0.05)
        answers = [read_until_closed(s, deadline) for s in slow + slow_body]
        silences = [read_until_closed(s, deadline) for s in idle]
        assert predict_ok(server.port)
    for sock in slow + idle + slow_body:
        sock.close()
    assert served > 0
    assert None not in answers  # every slow connection was closed by the server ...
    for answer in answers:
        if answer:  # ... with a 408 when it could still write one
            assert answer.startswith(b"HTTP/1.1 408")
            assert error_body(answer)["field"] == "request"
    assert silences == [b""] * 5  # idle ones closed without a word


def test_connections_over_the_limit_are_refused_and_the_others_served(app: ServingApp) -> None:
    with BackgroundServer(app, "127.0.0.1", 0, max_connections=3) as server:
        held = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
                for _ in range(3)]
        for connection in held:  # each one accepted and answered: all three are open
            connection.request("GET", "/health")
            assert connection.getresponse().read() == b'{"status":"ok"}'
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as extra:
            refused = read_until_closed(extra, time.monotonic() + 10)
        assert refused is not None
        assert refused.startswith(b"HTTP/1.1 503")
        assert "limit of 3" in error_body(refused)["reason"]
        held[0].request("GET", "/health")  # the kept ones go on
        assert held[0].getresponse().status == 200
        held.pop().close()
        deadline = time.monotonic() + 10
        while True:  # the freed place is taken once the server has seen the close
            try:
                if predict_ok(server.port):
                    break
            except (OSError, http.client.HTTPException):
                pass
            assert time.monotonic() < deadline, "no place freed"
            time.sleep(0.05)
        for connection in held:
            connection.close()


def test_a_request_that_cannot_be_parsed_gets_the_error_shape(app: ServingApp) -> None:
    with BackgroundServer(app, "127.0.0.1", 0) as server, socket.create_connection(
            ("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"BREW /pot HTCPCP\r\n\r\n")
        answer = read_until_closed(sock, time.monotonic() + 10)
    assert answer is not None
    assert answer.startswith(b"HTTP/1.1 400")
    assert error_body(answer) == {"field": "request", "reason": "Invalid HTTP request received."}


def test_health_answers_while_large_batches_run(app: ServingApp) -> None:
    app.max_batch = 10_000
    requests = [{"entities": {"user": f"u{i % 5}"}, "request": {"price": float(i % 7)}}
                for i in range(10_000)]
    body = json.dumps({"requests": requests}).encode()
    finished: list[str] = []
    lock = threading.Lock()
    sent = threading.Barrier(5)

    def batch(port: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        connection.request("POST", "/predict", body=body)
        sent.wait()
        answer = json.loads(connection.getresponse().read())
        with lock:
            finished.append(f"batch of {len(answer['predictions'])}")
        connection.close()

    with BackgroundServer(app, "127.0.0.1", 0) as server:
        batches = [threading.Thread(target=batch, args=(server.port,)) for _ in range(4)]
        for thread in batches:
            thread.start()
        sent.wait()  # four batches are in
        health = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        health.request("GET", "/health")
        assert health.getresponse().read() == b'{"status":"ok"}'
        with lock:
            finished.append("health")
        for thread in batches:
            thread.join()
        health.close()
    assert finished.count("batch of 10000") == 4
    assert finished[0] == "health"  # answered while the first batch was still running


def test_a_running_server_hands_the_loop_the_interpreter_lock_sooner(app: ServingApp) -> None:
    # A batch's worker thread holds the lock the loop needs for /health; a running server
    # shortens the switch interval, and restores the process's own when it stops.
    before = sys.getswitchinterval()
    with BackgroundServer(app, "127.0.0.1", 0) as server:
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S < before
        assert predict_ok(server.port)
    assert sys.getswitchinterval() == before
