"""Chaos benchmark: every long-running process killed with SIGKILL at random points under
load, on loopback and the embedded backends; prints one JSON object (progress goes to
stderr).

Three stages, each in its own home, each checked against an oracle computed here from
what the log holds, independently of the component under test.

Data (``acked_lost``, ``duplicated``, ``dlq_lost``, ``dlq_duplicated``,
``online_mismatches``). A producer process appends batches of events to a two-partition
``events`` topic with the embedded log writer, idempotently (its producer id and the
batch number as sequence), and prints each batch number once the append returned;
``headwater features run`` consumes the topic meanwhile. Both are SIGKILLed ``--kills``
times each, at a random moment after they started working; a restarted producer retries
the batch after the last one it acknowledged (the one in flight may or may not have
landed). After a last producer run and a last engine run to idle:

- ``acked_lost``: events of acknowledged batches missing from the log; ``duplicated``:
  events stored more than once (each event is named by its batch and item).
- ``dlq_lost`` / ``dlq_duplicated``: late events (more than the allowed lateness behind
  the partition's highest event time so far, walked here in offset order) missing from /
  stored more than once in ``events.dlq``.
- ``online_mismatches``: users whose count and sum in the online store differ from a
  recount of the log's events that are not late.

Serving (``examples_mismatches``, ``failed_requests``, ``lineage_forks``). Two
``headwater serve`` processes of model ``m`` over those features: ``B`` runs throughout,
``A`` is SIGKILLed ``--kills`` times, each time once it answered ``/ready`` and some
requests. ``headwater labels run`` and ``headwater train --strategy continual`` (which
promotes new versions, so both servers hot-swap) are SIGKILLed ``--kills`` times each
meanwhile. Clients send ``POST /predict`` to both servers without pause; a feeder reads
the predictions topic and appends an outcome for every request id logged there. After a
last joiner run to idle:

- ``examples_mismatches``: the multiset difference (both ways) between the training
  examples and the join computed here (each outcome with the prediction logged under its
  request id: request id, entity, features, version, label).
- ``failed_requests``: requests answered with anything but 200 by a server that was up,
  plus requests to ``B`` that got no answer. A request to ``A`` whose connection failed
  because ``A`` was killed is not a failure of the system when the client, retrying, is
  answered 200 by the restarted ``A`` (such requests are counted in ``requests_retried``);
  it fails if the retries give up (two minutes). The request in flight when the run ends
  with ``A`` killed is ``requests_abandoned``, not a failure. Requests to ``B`` run
  through every hot swap and every restart of the other processes.
- ``request_ids_logged_twice``: ids a killed server logged before its client retried
  them (the join labels the first; context for the count above).
- ``lineage_forks``: promotions of the champion to a version that does not descend from
  the one it replaced (:func:`headwater.registry.forks`).

Stalled health (``stalled_health_p99_ms``). Two servers; four clients send batches of
``serve_max_batch`` requests back to back to the first while a slowloris client holds 50
connections to it dripping header lines (reopening those it closes); ``GET /health`` on
a new connection every 20 ms, timed from connect to the last byte. The baselines of the
same run: ``health_p99_ms_idle`` (no load) and ``health_p99_ms_batches_elsewhere`` (the
same load sent to the second server, so the machine is as busy but the first server's
process is not); ``stalled_vs_elsewhere_p99`` is what the load costs inside the process.

Targets: every count 0, ``stalled_health_p99_ms <= 50``.

Run: ``python benchmarks/chaos.py`` (50 kills of each process; 28 minutes on a
two-core machine at load 16, most of it starting processes), ``--kills N``, ``--quick``
(3 kills each, a smoke run), ``--skip-health`` (the kills only).
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import http.client
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from headwater.config import Settings
from headwater.features import Entity, Feature, Lifetime, StreamSource
from headwater.features.definitions import FeatureSet
from headwater.features.online import FeatureReader
from headwater.labels import (
    LATE_OUTCOMES_TOPIC,
    OUTCOMES_SCHEMA,
    OUTCOMES_TOPIC,
    TRAINING_EXAMPLES_TOPIC,
)
from headwater.log import Log, Schema
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.models import LinearRegression
from headwater.registry import forks, open_registry
from headwater.serving.prediction_log import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from headwater.store.online import EmbeddedOnlineStore

SECOND = 1_000_000
LATENESS = 5 * SECOND
USERS = 100
PARTITIONS = 2
SCHEMA = Schema.of({"user": "string", "batch": "int64", "item": "int64", "x": "float64",
                    "ts": "timestamp"}, key="user", event_time="ts")
PROJECT = textwrap.dedent(f"""
    from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
    user = Entity("user", key="user")
    events = StreamSource.of("events", allowed_lateness={LATENESS})
    n = Feature.of("n", user, events, "count", window=Lifetime())
    total = Feature.of("total", user, events, "sum", column="x", window=Lifetime())
    fs = FeatureSet("fs", (n, total))
""")
USER = Entity("user", key="user")
EVENTS = StreamSource.of("events", allowed_lateness=LATENESS)
FEATURE_SET = FeatureSet("fs", (
    Feature.of("n", USER, EVENTS, "count", window=Lifetime()),
    Feature.of("total", USER, EVENTS, "sum", column="x", window=Lifetime())))

# The producer: batch k (k = start, start + 1, ...) appended idempotently, its number
# printed once acknowledged. Its events follow from k alone (``batch_events``), one in
# twenty of them 20 s behind the others (late).
PRODUCER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[3])
    from chaos import SCHEMA, batch_events
    from headwater.log import Log
    from headwater.log.embedded import EmbeddedBackend

    root, start = sys.argv[1], int(sys.argv[2])
    stop = int(sys.argv[4])
    log = Log(EmbeddedBackend(root, fsync="never"))
    log.create_topic("events", SCHEMA, partitions=2)
    k = start
    while stop < 0 or k <= stop:
        log.append("events", batch_events(k), producer_id="chaos-producer", sequence=k)
        sys.stdout.write(f"{k}\\n")
        sys.stdout.flush()
        k += 1
        time.sleep(0.002)
""")


def batch_events(k: int, t0: int = 1_700_000_000_000_000) -> pa.RecordBatch:
    """The events of batch ``k``: 1 to 40 of them, 10 ms of event time per batch."""
    n = 1 + (k * 7919) % 40
    items = np.arange(n)
    late = (k * 31 + items) % 20 == 0
    return pa.record_batch({
        "user": pa.array([f"u{(k * 13 + i) % USERS}" for i in range(n)]),
        "batch": pa.array(np.full(n, k)),
        "item": pa.array(items),
        "x": pa.array(((k * 7 + items) % 17).astype(np.float64)),
        "ts": pa.array(t0 + k * 10_000 + items - late * 20 * SECOND).cast(TIMESTAMP),
    })


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never",
            "HEADWATER_PROJECT": str(home / "features.py"), "COLUMNS": "200"}


class Process:
    """A ``headwater`` (or Python) process whose error output is kept as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str], stdout: Any = subprocess.DEVNULL
                 ) -> None:
        self.proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def printed(self) -> str:
        return "".join(self.lines)

    def wait_for(self, ready: Callable[[], bool], what: str, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not ready (exit {self.proc.poll()}): "
                                   f"{self.printed()[-3000:]}")
            time.sleep(0.05)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._reader.join(5)

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM, then SIGKILL if it does not stop."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)

    def finish(self, timeout_s: float = 600.0) -> None:
        """Wait for it to end by itself, successfully."""
        self.proc.wait(timeout_s)
        self._reader.join(5)
        if self.proc.returncode != 0:
            raise RuntimeError(f"exit {self.proc.returncode}: {self.printed()[-3000:]}")


def headwater(home: Path, *args: str) -> Process:
    return Process([sys.executable, "-m", "headwater", *args], environment(home))


class KillLoop(threading.Thread):
    """Start a process, wait until it works, let it work a random while, SIGKILL it;
    ``kills`` times."""

    def __init__(self, name: str, kills: int, seed: int, start: Callable[[], Process],
                 ready: Callable[[Process], None], most_s: float,
                 after: Callable[[Process], None] = lambda p: None) -> None:
        super().__init__(name=name, daemon=True)
        self.kills, self.rng = kills, random.Random(seed)
        self.begin, self.ready, self.most_s, self.after = start, ready, most_s, after
        self.done = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for _ in range(self.kills):
                process = self.begin()
                try:
                    self.ready(process)
                    time.sleep(self.rng.uniform(0.0, self.most_s))
                finally:
                    process.kill()
                self.after(process)
                self.done += 1
                if self.done % 10 == 0:
                    say(f"{self.name}: {self.done} kills")
        except BaseException as exc:  # reported by check()
            self.error = exc

    def check(self) -> None:
        self.join()
        if self.error is not None:
            raise RuntimeError(f"{self.name}: {self.error}") from self.error


# -- data: the producer and the feature engine ---------------------------------------


def rows_of(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """The rows of ``batch``, times as integers (µs since the epoch)."""
    columns = {name: batch.column(name) for name in batch.schema.names}
    for name, column in columns.items():
        if pa.types.is_timestamp(column.type):
            columns[name] = column.cast(pa.int64())
    rows: list[dict[str, Any]] = pa.RecordBatch.from_pydict(columns).to_pylist()
    return rows


def stored_events(home: Path) -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Each partition's events in offset order, and the dead letters."""
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    try:
        parts = [[row for f in log.replay("events", [p]) for row in rows_of(f.batch)]
                 for p in range(PARTITIONS)]
        dead = [row for f in log.replay("events.dlq") for row in f.batch.to_pylist()] \
            if "events.dlq" in {t.name for t in log.topics()} else []
        return parts, dead
    finally:
        log.close()


def data_stage(root: Path, kills: int, seed: int) -> dict[str, Any]:
    home = root / "data"
    home.mkdir()
    (home / "features.py").write_text(PROJECT)
    here = str(Path(__file__).resolve().parent)
    acked: set[int] = set()
    outputs: list[Path] = []

    def producer(stop: int = -1) -> Process:
        out = home / f"producer-{len(outputs)}.out"
        outputs.append(out)
        start = max(acked) + 1 if acked else 0
        return Process([sys.executable, "-c", PRODUCER, str(home / "log"), str(start), here,
                        str(stop)], environment(home), stdout=out.open("w"))

    def acks(process: Process) -> None:
        text = outputs[-1].read_text()
        acked.update(int(line) for line in text.split("\n")[:-1] if line)  # whole lines

    def producing(process: Process) -> None:
        process.wait_for(lambda: outputs[-1].stat().st_size > 0, "the producer")

    def engine() -> Process:
        return headwater(home, "features", "run")

    def running(process: Process) -> None:
        process.wait_for(lambda: process.said("engine running"), "the engine")

    say(f"data: {kills} kills of the producer and of the feature engine, concurrently")
    loops = [KillLoop("producer", kills, seed, producer, producing, 1.0, after=acks),
             KillLoop("engine", kills, seed + 1, engine, running, 2.0)]
    for loop in loops:
        loop.start()
    for loop in loops:
        loop.check()
    last = max(acked) + 1
    final = producer(stop=last)
    final.finish()
    acks(final)
    say("data: a last engine run, to idle")
    headwater(home, "features", "run", "--idle-timeout", "3").finish()

    parts, dead = stored_events(home)
    seen = Counter((r["batch"], r["item"]) for part in parts for r in part)
    expected = Counter((k, i) for k in acked for i in range(batch_events(k).num_rows))
    acked_lost = sum((expected - seen).values())
    duplicated = sum(n - 1 for n in seen.values() if n > 1)
    unacked = sum(1 for (k, _) in seen if k not in acked)  # the batch in flight landed
    # The oracle: late events in offset order, and the recount of the others.
    late: Counter[tuple[int, int]] = Counter()
    counts: Counter[str] = Counter()
    sums: dict[str, float] = {}
    for part in parts:
        highest = None
        for row in part:
            t = row["ts"]
            if highest is not None and t < highest - LATENESS:
                late[(row["batch"], row["item"])] += 1
            else:
                counts[row["user"]] += 1
                sums[row["user"]] = sums.get(row["user"], 0.0) + row["x"]
            highest = t if highest is None else max(highest, t)
    stored_late: Counter[tuple[int, int]] = Counter()
    for row in dead:
        event = msgspec.json.decode(row["payload"])
        stored_late[(event["batch"], event["item"])] += 1
    store = EmbeddedOnlineStore(home / "online", read_only=True)
    try:
        reader = FeatureReader(store, FEATURE_SET)
        now = int(time.time() * SECOND)
        online_mismatches = 0
        for u in range(USERS):
            user = f"u{u}"
            got = reader.read({"user": user}, now)
            if got["n"] != counts[user] or got["total"] != sums.get(user, 0.0):
                online_mismatches += 1
    finally:
        store.close()
    return {
        "acked_lost": acked_lost, "duplicated": duplicated,
        "dlq_lost": sum((late - stored_late).values()),
        "dlq_duplicated": sum((stored_late - late).values()),
        "online_mismatches": online_mismatches,
        "producer_kills": loops[0].done, "engine_kills": loops[1].done,
        "acked_batches": len(acked), "events": sum(seen.values()), "late_events": len(late),
        "unacked_stored_events": unacked,
    }


# -- serving: two servers, the joiner and the trainer -----------------------------------


def request(port: int, method: str, path: str, body: object = None,
            timeout_s: float = 30.0) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data,
                           headers={"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def ready(port: int) -> bool:
    try:
        return request(port, "GET", "/ready", timeout_s=5)[0] == 200
    except OSError:
        return False


class Client(threading.Thread):
    """``POST /predict`` to one server, one request after the other, each under its own
    request id. With ``retry``, a request whose connection failed is sent again (to the
    restarted server) until answered or two minutes passed."""

    def __init__(self, name: str, port: int, retry: bool, seed: int) -> None:
        super().__init__(name=name, daemon=True)
        self.port, self.retry, self.rng = port, retry, random.Random(seed)
        self.stopping = threading.Event()
        self.sent = self.failed = self.retried = self.abandoned = 0
        self.failures: Counter[str] = Counter()

    def run(self) -> None:
        while not self.stopping.is_set():
            body = {"entities": {"user": f"u{self.rng.randrange(USERS)}"},
                    "request_id": f"{self.name}-{self.sent}"}
            self.sent += 1
            deadline = time.monotonic() + 120
            retried = False
            while True:
                try:
                    status, _ = request(self.port, "POST", "/predict", body)
                    if status != 200:
                        self.failed += 1
                        self.failures[f"status {status}"] += 1
                    break
                except (OSError, http.client.HTTPException) as exc:
                    if self.retry and self.stopping.is_set():
                        self.abandoned += 1  # the run ended with this server killed
                        break
                    if not self.retry or time.monotonic() > deadline:
                        self.failed += 1
                        self.failures[type(exc).__name__] += 1
                        break
                    retried = True
                    time.sleep(0.05)
            self.retried += retried
            time.sleep(0.01)


def label_of(features: bytes) -> float:
    values = msgspec.json.decode(features)
    return 0.01 * float(values["total"]) - 0.02 * float(values["n"]) + 2.0


class Feeder(threading.Thread):
    """Appends an outcome for every request id it reads in the predictions topic (served),
    1 ms after the first prediction logged under it, labelled from the features the
    prediction was made with."""

    def __init__(self, home: Path) -> None:
        super().__init__(name="feeder", daemon=True)
        self.log = Log(EmbeddedBackend(home / "log", fsync="never"))
        self.positions = [0] * PARTITIONS
        self.stopping = threading.Event()
        self.outcomes = 0
        self.labelled: set[str] = set()
        self.error: BaseException | None = None

    def drain(self) -> int:
        moved = 0
        for p in range(PARTITIONS):
            batch = self.log.read(PREDICTIONS_TOPIC, p, self.positions[p], 5_000).batch
            if not batch.num_rows:
                continue
            self.positions[p] += batch.num_rows
            rows = []
            for r in rows_of(batch):
                # A request retried after its server was killed may have been logged
                # twice under its id; the first logged is the prediction it names.
                if r["served"] and r["request_id"] not in self.labelled:
                    self.labelled.add(r["request_id"])
                    rows.append(r)
            if rows:
                self.log.append(OUTCOMES_TOPIC, pa.record_batch({
                    "request_id": [r["request_id"] for r in rows],
                    "entity": [r["entity"] for r in rows],
                    "label": [label_of(r["features"]) for r in rows],
                    "ts": pa.array([r["ts"] + 1_000 for r in rows], pa.int64()).cast(TIMESTAMP),
                }, schema=OUTCOMES_SCHEMA.arrow_schema()))
                self.outcomes += len(rows)
            moved += batch.num_rows
        return moved

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                if not self.drain():
                    time.sleep(0.05)
            while self.drain():
                pass
        except BaseException as exc:
            self.error = exc
        finally:
            self.log.close()


def expected_join(home: Path) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]],
                                       Counter[str], int]:
    """The examples the join must make, computed from the topics; those made; the late
    outcomes by reason; the request ids logged more than once."""
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    try:
        predictions: dict[str, dict[str, Any]] = {}
        logged: Counter[str] = Counter()
        for f in log.replay(PREDICTIONS_TOPIC):
            for r in rows_of(f.batch):
                if r["served"]:
                    predictions.setdefault(r["request_id"], r)
                    logged[r["request_id"]] += 1
        twice = sum(1 for n in logged.values() if n > 1)
        want: Counter[tuple[Any, ...]] = Counter()
        for f in log.replay(OUTCOMES_TOPIC):
            for o in rows_of(f.batch):
                p = predictions[o["request_id"]]
                want[(p["request_id"], p["entity"], p["features"], p["version"],
                      o["label"])] += 1
        got = Counter((r["request_id"], r["entity"], r["features"], r["version"], r["label"])
                      for f in log.replay(TRAINING_EXAMPLES_TOPIC)
                      for r in rows_of(f.batch))
        late = Counter(r["reason"] for f in log.replay(LATE_OUTCOMES_TOPIC)
                       for r in f.batch.to_pylist()) \
            if LATE_OUTCOMES_TOPIC in {t.name for t in log.topics()} else Counter()
        return want, got, late, twice
    finally:
        log.close()


def lineage_forks(home: Path) -> tuple[int, int]:
    with open_registry(home / "registry", settings=Settings(home=str(home), fsync="never")
                       ) as registry:
        versions = registry.versions("m")
        found = forks(registry.history("m", "champion"), {v.version: v.parent
                                                          for v in versions})
    return len(found), len(versions)


def serving_home(root: Path) -> Path:
    """The data stage's home, features computed, with model ``m`` (v1) the champion."""
    home = root / "data"
    settings = Settings.from_env(environment(home))
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    log.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA, partitions=PARTITIONS)
    log.create_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA, partitions=PARTITIONS)
    log.close()
    model = LinearRegression()
    rng = np.random.default_rng(1)
    n = rng.integers(0, 500, 200).astype(np.float64)
    total = rng.integers(0, 4000, 200).astype(np.float64)
    model.learn({"n": n, "total": total}, 0.01 * total - 0.01 * n + 1.0)
    model.save(root / "model")
    with open_registry(settings.registry_location, settings=settings) as registry:
        registry.register("m", root / "model")
        registry.promote("m", 1, actor="chaos", reason="the first champion")
    return home


def serving_stage(root: Path, kills: int, seed: int) -> dict[str, Any]:
    home = serving_home(root)
    serve = ("serve", "--model", "m", "--poll-ms", "200")

    def server(port: int) -> Process:
        return headwater(home, *serve, "--port", str(port))

    port_a, port_b = free_port(), free_port()
    b = server(port_b)
    b.wait_for(lambda: ready(port_b), "server B")
    clients = [Client("a", port_a, retry=True, seed=seed), Client("b", port_b, retry=False,
                                                                  seed=seed + 1)]
    feeder = Feeder(home)

    def serving(process: Process) -> None:
        process.wait_for(lambda: ready(port_a), "server A")
        if not clients[0].is_alive():
            clients[0].start()

    def joiner() -> Process:
        return headwater(home, "labels", "run", "--window", "10m", "--quiet")

    def joining(process: Process) -> None:
        process.wait_for(lambda: process.said("joining"), "the joiner")

    def trainer() -> Process:
        return headwater(home, "train", "--model", "m", "--strategy", "continual",
                         "--model-class", "headwater.models:LinearRegression",
                         "--gate-metric", "rmse", "--margin", "1000000", "--volume", "100",
                         "--gate-min-examples", "50", "--poll", "0.2", "--lease", "2s")

    def training(process: Process) -> None:
        process.wait_for(lambda: process.said("running"), "the trainer")

    clients[1].start()
    feeder.start()
    say(f"serving: {kills} kills each of server A, the joiner and the trainer, "
        "concurrently, under load")
    loops = [KillLoop("server", kills, seed, lambda: server(port_a), serving, 3.0),
             KillLoop("joiner", kills, seed + 1, joiner, joining, 2.0),
             KillLoop("trainer", kills, seed + 2, trainer, training, 3.0)]
    for loop in loops:
        loop.start()
    try:
        for loop in loops:
            loop.check()
    finally:
        for client in clients:
            client.stopping.set()
        for client in clients:
            if client.is_alive():
                client.join()
        b.stop()
        feeder.stopping.set()
        feeder.join()
    if feeder.error is not None:
        raise RuntimeError(f"the feeder: {feeder.error}") from feeder.error
    say("serving: a last joiner run, to idle")
    headwater(home, "labels", "run", "--window", "10m", "--quiet", "--idle-timeout",
              "5").finish()
    want, got, late, twice = expected_join(home)
    for row in list((want - got).elements())[:20]:
        say(f"serving: an expected example is missing: {row}")
    for row in list((got - want).elements())[:20]:
        say(f"serving: an example not expected: {row}")
    found, versions = lineage_forks(home)
    return {
        "examples_mismatches": sum((want - got).values()) + sum((got - want).values()),
        "failed_requests": sum(c.failed for c in clients),
        "lineage_forks": found,
        "server_kills": loops[0].done, "joiner_kills": loops[1].done,
        "trainer_kills": loops[2].done, "requests": sum(c.sent for c in clients),
        "requests_retried": clients[0].retried, "requests_abandoned": clients[0].abandoned,
        "request_failures": dict(sum((c.failures for c in clients), Counter())),
        "examples": sum(got.values()), "late_outcomes": dict(late),
        "request_ids_logged_twice": twice, "versions": versions,
    }


# -- stalled health ----------------------------------------------------------------------


def slowloris(port: int, stopping: threading.Event, connections: int = 50) -> None:
    """Hold ``connections`` connections, each sending a header line every second and
    never the end of its headers; one the server closes is opened again."""
    socks: list[socket.socket | None] = [None] * connections
    while not stopping.is_set():
        for i in range(connections):
            try:
                if socks[i] is None:
                    socks[i] = socket.create_connection(("127.0.0.1", port), timeout=5)
                    socks[i].sendall(b"POST /predict HTTP/1.1\r\nhost: x\r\n")  # type: ignore[union-attr]
                else:
                    socks[i].sendall(b"x-drip: 1\r\n")  # type: ignore[union-attr]
            except OSError:
                if socks[i] is not None:
                    socks[i].close()  # type: ignore[union-attr]
                socks[i] = None
        stopping.wait(1.0)
    for sock in socks:
        if sock is not None:
            sock.close()


def health_ms(port: int, samples: int) -> list[float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        status, _ = request(port, "GET", "/health", timeout_s=60)
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"GET /health answered {status}")
        time.sleep(0.02)
    return times


def adversarial(port: int, cap: int, stopping: threading.Event, answered: Counter[int]
                ) -> list[threading.Thread]:
    """Four clients sending batches of ``cap`` requests back to back, and a slowloris
    client, at ``port``; running until ``stopping`` is set."""
    body = json.dumps({"requests": [{"entities": {"user": f"u{i % USERS}"}}
                                    for i in range(cap)]}).encode()

    def batches() -> None:
        while not stopping.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            try:
                connection.request("POST", "/predict", body=body)
                response = connection.getresponse()
                response.read()
                answered[response.status] += 1
            except (OSError, http.client.HTTPException):
                answered[0] += 1
            finally:
                connection.close()

    threads = [threading.Thread(target=batches, daemon=True) for _ in range(4)]
    threads.append(threading.Thread(target=slowloris, args=(port, stopping), daemon=True))
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # the batches and the slow connections are in
    return threads


def health_stage(root: Path, samples: int) -> dict[str, Any]:
    home = root / "data"
    ports = [free_port(), free_port()]
    servers = [headwater(home, "serve", "--model", "m", "--port", str(port),
                         "--no-log-predictions") for port in ports]
    cap = Settings.from_env(environment(home)).serve_max_batch
    figures: dict[str, Any] = {"health_samples": samples, "batch_cap": cap}
    try:
        for port, server in zip(ports, servers, strict=True):
            server.wait_for(partial(ready, port), "the server")
        idle = health_ms(ports[0], samples)
        # The baseline: the same load, on the machine but at the other server.
        for name, target in (("elsewhere", ports[1]), ("stalled", ports[0])):
            stopping = threading.Event()
            answered: Counter[int] = Counter()
            threads = adversarial(target, cap, stopping, answered)
            measured = health_ms(ports[0], samples)
            stopping.set()
            for thread in threads:
                thread.join()
            figures[f"{name}_health_p50_ms"] = round(float(np.percentile(measured, 50)), 2)
            figures[f"{name}_health_p99_ms"] = round(float(np.percentile(measured, 99)), 2)
            figures[f"{name}_batches_answered"] = dict(answered)
    finally:
        for server in servers:
            server.stop()
    figures["health_p99_ms_idle"] = round(float(np.percentile(idle, 99)), 2)
    figures["health_p99_ms_batches_elsewhere"] = figures.pop("elsewhere_health_p99_ms")
    figures["stalled_vs_elsewhere_p99"] = round(
        figures["stalled_health_p99_ms"] / figures["health_p99_ms_batches_elsewhere"], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs of each process")
    parser.add_argument("--quick", action="store_true", help="3 kills each: a smoke run")
    parser.add_argument("--samples", type=int, default=500, help="GET /health samples")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-health", action="store_true",
                        help="Only the kills (the data and serving stages).")
    args = parser.parse_args()
    kills = 3 if args.quick else args.kills
    samples = 100 if args.quick else args.samples
    figures: dict[str, Any] = {"load": load(), "cores": os.cpu_count(), "kills_each": kills}
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="hw-bench-chaos-"))
    try:
        figures.update(data_stage(root, kills, args.seed))
        figures.update(serving_stage(root, kills, args.seed))
        if not args.skip_health:
            say("stalled health: batches at the cap and a slowloris client")
            figures.update(health_stage(root, samples))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures["wall_s"] = round(time.monotonic() - started, 1)
    figures["load_after"] = load()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
