"""``headwater produce`` from a terminal, as a process: it says that it reads standard
input and how to end, and an interrupt exits 130 saying how to resume."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from headwater.config import Settings
from headwater.log import open_log
from tests.processes import environment, headwater, wait_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")


def _produce_on_a_terminal(home: Path, *args: str) -> tuple[subprocess.Popen[str], int,
                                                               list[str]]:
    """``headwater produce ARGS…`` with a terminal for standard input; the terminal's
    other end and the lines printed on standard error, as they come."""
    terminal, stdin = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "headwater", "produce", *args],
                               env=environment(home), stdin=stdin, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    os.close(stdin)
    printed: list[str] = []
    stream = process.stderr
    assert stream is not None
    threading.Thread(target=lambda: printed.extend(iter(stream.readline, "")),
                     daemon=True).start()
    return process, terminal, printed


@pytest.fixture
def home(tmp_path: Path) -> Path:
    made = headwater(tmp_path, "topics", "create", "payments", "--schema",
                     "user:string,amount:float64,ts:timestamp", "--key", "user",
                     "--event-time", "ts")
    assert made.returncode == 0, made.stderr
    return tmp_path


def _events(home: Path) -> list[dict[str, object]]:
    with open_log(str(home / "log"), settings=Settings()) as log:
        return [row for fetched in log.replay("payments")
                for row in fetched.batch.select(["user", "amount"]).to_pylist()]


def test_typed_events_end_with_ctrl_d(home: Path) -> None:
    process, terminal, printed = _produce_on_a_terminal(home, "payments")
    try:
        wait_for(lambda: any("standard input" in line for line in printed), 60,
                 "the notice that standard input is read")
        notice = "".join(printed)
        assert "Ctrl-D" in notice
        assert "payments" in notice
        os.write(terminal, b'{"user": "u1", "amount": 2.5, "ts": "2024-05-01T10:00:00Z"}\n')
        os.write(terminal, b"\x04")  # Ctrl-D on an empty line: the end of the input
        assert process.wait(60) == 0, "".join(printed)
    finally:
        process.kill()
        os.close(terminal)
    assert _events(home) == [{"user": "u1", "amount": 2.5}]


def test_an_interrupt_exits_130_and_says_how_to_resume(home: Path) -> None:
    process, terminal, printed = _produce_on_a_terminal(home, "payments", "--producer-id",
                                                        "p1", "--batch-size", "1")
    try:
        wait_for(lambda: any("standard input" in line for line in printed), 60,
                 "the notice that standard input is read")
        os.write(terminal, b'{"user": "u1", "amount": 2.5, "ts": "2024-05-01T10:00:00Z"}\n')
        wait_for(lambda: len(_events(home)) == 1, 60, "the first event to be appended")
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 130, "".join(printed)
    finally:
        process.kill()
        os.close(terminal)
    said = "".join(printed)
    assert "interrupted" in said
    assert "--producer-id p1" in said
    assert "--batch-size 1" in said
    assert "Traceback" not in said
    assert _events(home) == [{"user": "u1", "amount": 2.5}]
