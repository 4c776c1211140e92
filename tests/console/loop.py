"""A small real run of the loop, as a user makes one, and the console over it.

``produce`` (one row refused into the dead letters), ``features apply`` / ``features
run``, ``models register``, ``serve`` with an admin token, predictions and their
outcomes over HTTP, ``labels run`` and ``train --strategy continual``, every one a
separate ``headwater`` process; then ``headwater ui`` in its own process, pointed at the
same log, stores and server.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from headwater.time import format_micros, to_micros
from tests.processes import Backends, Server, environment, free_port, headwater, wait_for

PROJECT = """
from headwater.features import Entity, Feature, FeatureSet, StreamSource

user = Entity("user", key="user")
clicks = StreamSource.of("clicks", allowed_lateness="1d")
activity = FeatureSet("activity", (
    Feature.of("clicks", user, clicks, "count"),
    Feature.of("spend", user, clicks, "sum", column="amount"),
))
"""
USERS = ("ann", "bob", "cid", "dee")
#: The row the log refuses: an amount that is not a number.
BAD = "bob,12;5,{ts}\n"


def clicks_csv(rows: int, start: datetime, *, bad: bool = False) -> str:
    """``rows`` clicks of the users in turn, one a minute from ``start``."""
    lines = ["user,amount,ts\n"]
    for i in range(rows):
        at = (start + timedelta(minutes=i)).isoformat()
        lines.append(f"{USERS[i % len(USERS)]},{1.5 * (i % 7)},{at}\n")
    if bad:
        lines.append(BAD.format(ts=start.isoformat()))
    return "".join(lines)


class Console:
    """``headwater ui ARGS…`` on a free loopback port, for a ``with`` block."""

    def __init__(self, home: Path, *args: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stderr: list[str] = []
        self._process = subprocess.Popen(
            [sys.executable, "-m", "headwater", "ui", *args, "--port", str(self.port),
             "--refresh-ms", "500"],
            env=environment(home, env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        stream = self._process.stderr
        assert stream is not None
        self._reader = threading.Thread(target=lambda: self.stderr.extend(
            iter(stream.readline, "")), daemon=True)
        self._reader.start()
        wait_for(lambda: self.answering() or self._process.poll() is not None, 120,
                 "the console to answer")
        assert self._process.poll() is None, "".join(self.stderr)

    def answering(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/static/console.css", timeout=5) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def data(self, page: str) -> dict[str, Any]:
        """What ``/api/<page>`` answers: the page's values, its HTML and its charts."""
        with urllib.request.urlopen(f"{self.url}/api/{page}", timeout=30) as answer:
            body: dict[str, Any] = json.loads(answer.read())
            return body

    def close(self) -> None:
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(5)
        assert "Traceback" not in "".join(self.stderr), "".join(self.stderr)


@dataclass
class Loop:
    """The run: where it lives, the server, the console, and what was made."""

    root: Path
    home: Path
    backends: Backends
    env: dict[str, str]
    server: Server
    console: Console
    token_file: Path
    produced: int
    versions: int

    def run(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = headwater(self.home, *args, env=self.env)
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        return done


def run_the_loop(root: Path, backends: Backends) -> Iterator[Loop]:
    """The loop's run on ``backends``, with its server and console open until the end."""
    home = root / "home"
    (root / "features.py").write_text(PROJECT)
    env = {**backends.environment(home), "HEADWATER_PROJECT": str(root / "features.py")}

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = headwater(home, *args, env=env)
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        return done

    start = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(hours=2)
    first = root / "clicks.csv"
    first.write_text(clicks_csv(40, start, bad=True))
    run("produce", "clicks", str(first), "--create", "--key", "user", "--event-time", "ts",
        "--allow-rejects")
    run("features", "apply")
    run("features", "run", "--idle-timeout", "0.5")
    run("models", "register", "clicks", "--builtin", "logistic", "--promote", "--reason",
        "start the loop")
    token_file = root / "token"
    token_file.write_text("console-test-token\n")
    token_file.chmod(0o600)
    with ExitStack() as stack:
        server = stack.enter_context(Server(
            home, "--model", "clicks", "--feature-set", "activity", "--poll-ms", "200",
            "--admin-token-file", str(token_file), env=env))
        ids = [f"r{i}-{u}" for i in range(6) for u in USERS]
        requests = [{"entities": {"user": rid.split("-")[1]}, "request_id": rid}
                    for rid in ids]
        status, answer = server.post("/predict", {"requests": requests})
        assert status == 200, answer
        logged = _logged(backends, home, set(ids))
        outcomes = [{"request_id": rid, "entity": row["entity"],
                     "label": float(row["entity"] in ("ann", "cid")),
                     "ts": format_micros(to_micros(row["ts"]) + 1_000_000)}
                    for rid, row in logged.items()]
        assert server.post("/outcomes", {"outcomes": outcomes})[0] == 200
        run("labels", "run", "--idle-timeout", "0.5")
        run("train", "--model", "clicks", "--strategy", "continual", "--volume",
            str(len(outcomes)), "--gate-min-examples", str(len(outcomes)),
            "--idle-timeout", "0.5")
        console = Console(home, "--server", server.url, "--reports", str(root), env=env)
        stack.callback(console.close)
        yield Loop(root, home, backends, env, server, console, token_file, produced=40, versions=2)


def _logged(backends: Backends, home: Path, ids: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def all_logged() -> bool:
        with backends.open_log(home) as log:
            for fetched in log.replay("predictions"):
                for row in fetched.batch.to_pylist():
                    if row["request_id"] in ids:
                        found[row["request_id"]] = row
        return set(found) == ids

    wait_for(all_logged, 60, "the predictions to be logged")
    return found
