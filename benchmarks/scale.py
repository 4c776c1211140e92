"""Scale-out benchmarks: what holds when one process is outgrown.

Prints one JSON object to stdout (progress goes to stderr): the machine's load
(``uptime``) and the figures of every function in :data:`FIGURES` (or those named with
``--only``). Each figure is a function of the parsed arguments returning a dict of
figures, so another one is one more function in the table.

``pit_20m_peak_rss_mb``: the peak resident memory (MiB) of a point-in-time join over a
feature history of ``--rows`` rows (20 M by default), as
:meth:`~headwater.store.history.FeatureHistory.values_at` streams it, one entity bucket
at a time; target <= 1000. Measured in a fresh subprocess (``ru_maxrss``), beside the
same join done in memory (the whole history read, then one ``point_in_time``) in another
subprocess of the same run: ``pit_peak_rss_vs_in_memory`` is the ratio, and
``pit_agrees`` says whether both gave the same values.

Workload: ``--entities`` entities with lognormal activity (the busiest ~10x the median)
over ``--days`` days, written as the feature engine writes (4 tasks, checkpoints in time
order) into a temporary history and compacted; ``--queries`` label rows at uniform times.
Features: ``sum(amount)`` over 1 day sliding by 1 hour, ``last(amount)`` and ``count``
over the lifetime (no TTL, so every row of the history is read), as of event time.

``joiners2_identical``: predictions and outcomes (future times, so the clock closes no
window) are appended in chunks over eight co-partitioned partitions, twice, to two
homes: one ``headwater labels run`` process joins the first; two join the second, one of
them SIGKILLed half way. True when both give the same training examples (every column
but the offsets) and the same late outcomes, as multisets (``--predictions``, 50,500 by
default).

``trainers2_lineage_forks`` (target 0): two ``headwater train --strategy continual``
processes for one model while examples arrive; the one training is SIGKILLed half way
and the standby takes over when its lease runs out. A fork is a promotion of the
champion to a version that does not descend from the one it replaces
(:func:`headwater.registry.forks`). The baseline,
``trainers2_lineage_forks_without_lease``, is two trainers of the same kind over the same
examples without a lease, stepping in turn.

``joiner_step_bytes``: the bytes a joiner's step writes (the kernel's count of bytes
passed to ``write``), median over steps of 50 predictions and 50 outcomes each, with
2,000 and with ``--open`` open predictions; ``joiner_step_bytes_ratio`` is many over few.
``joiner_state_bytes`` is the state a whole-state checkpoint would rewrite every step
(its snapshot once the open predictions were read).

``engines2_vs_1``: the events per second of two ``headwater features run`` processes in
one group over one of them, catching up with a backlog of ``--engine-events`` events in
eight partitions on the Redis log, into the Redis online store: the engines are
started and hold their partitions, then stopped (SIGSTOP) while the backlog is appended
and continued (so start-up and appending are not counted). ``engines2_identical``: both
runs left the same values for every entity.

``failover_s`` (target <= 3): two engines in one group on Redis (the default group
timeout, 2 s), checkpoints in a shared directory; one is SIGKILLed, an event appended
at once to each of its partitions, and the time until the online store serves values
that include those events (each partition's ``applied`` mark, written with the values,
passing them) is measured; median of ``--failover-rounds`` kills.

``redis_server_cpu_us_per_request`` (target <= 60) and ``workers2_vs_1``: the prediction
server over the Redis online store, computed by ``benchmarks/serving.py``
(:func:`scale_figures` there: ``--serving-seconds`` of load per run, ``--serving-rounds``
rounds, medians).

Usage::

    python benchmarks/scale.py                  # 20 M rows: a few minutes
    python benchmarks/scale.py --rows 2000000   # a quick run
    python benchmarks/scale.py --only joiners2_identical --only trainers2_lineage_forks
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import importlib.util
import json
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

from headwater.config import Settings
from headwater.features.definitions import Entity, Feature, StreamSource
from headwater.features.pointintime import Queries, Sources, point_in_time
from headwater.features.windows import Sliding
from headwater.labels import (
    OUTCOMES_SCHEMA,
    OUTCOMES_TOPIC,
    TRAINING_EXAMPLES_SCHEMA,
    TRAINING_EXAMPLES_TOPIC,
)
from headwater.labels.join import JoinRule
from headwater.labels.joiner import LabelJoiner
from headwater.learning import Gate, Trainer, Volume
from headwater.log import Log
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.models import LogisticRegression
from headwater.registry import forks, open_registry
from headwater.serving.prediction_log import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from headwater.store.history import FeatureHistory
from headwater.testing import ManualClock, MemoryBackend
from headwater.time import SystemClock

DAY = 86_400_000_000
START = 1_717_200_000_000_000  # 2024-06-01T00:00Z
TASKS = 4
SOURCE = "payments"
USER = Entity("user", key="user")
PAYMENTS = StreamSource.of(SOURCE)
FEATURES = [
    Feature.of("spend_1d", USER, PAYMENTS, "sum", column="amount",
               window=Sliding.of("1d", hop="1h")),
    Feature.of("last_amount", USER, PAYMENTS, "last", column="amount"),
    Feature.of("payments", USER, PAYMENTS, "count"),
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def uptime_load() -> list[float]:
    """The load averages over 1, 5 and 15 minutes, as ``uptime`` shows them."""
    return [round(x, 2) for x in os.getloadavg()]


# -- pit_20m_peak_rss_mb ----------------------------------------------------------------

def _names(ids: np.ndarray[Any, np.dtype[np.int64]]) -> pa.Array:
    return pa.array(np.char.add("u", ids.astype("U7")).astype(object), pa.string())


def write_history(root: Path, args: argparse.Namespace) -> None:
    """``args.rows`` history rows in checkpoints of about 2 M rows, in time order, as
    ``TASKS`` engine tasks would write them; then compacted."""
    rng = np.random.default_rng(args.seed)
    weight = rng.lognormal(0.0, 1.0, args.entities)
    weight /= weight.sum()
    history = FeatureHistory(root)
    chunk = 2_000_000
    offsets = np.zeros(TASKS, np.int64)
    span = args.days * DAY
    for checkpoint, first in enumerate(range(0, args.rows, chunk)):
        n = min(chunk, args.rows - first)
        entity = rng.choice(args.entities, n, p=weight)
        low, high = span * first // args.rows, span * (first + n) // args.rows
        tau = np.sort(START + rng.integers(low, max(high, low + 1), n))
        alpha = tau + rng.lognormal(13.0, 1.5, n).astype(np.int64)
        task = entity % TASKS
        for t in range(TASKS):
            mine = np.flatnonzero(task == t)
            history.write(SOURCE, pa.table({
                "_entity": _names(entity[mine]), "_event_time": tau[mine],
                "_append_time": alpha[mine], "_partition": np.full(len(mine), t, np.int32),
                "_offset": offsets[t] + np.arange(len(mine)),
                "amount": np.round(rng.lognormal(3.0, 1.0, len(mine)), 2),
            }), checkpoint=checkpoint, task=f"{SOURCE}-{t}")
            offsets[t] += len(mine)
        log(f"  wrote {first + n:,} rows")
    history.compact(SOURCE)
    labels = rng.choice(args.entities, args.queries, p=weight)
    pq.write_table(pa.table({"entity": _names(labels),
                             "t": START + rng.integers(0, span, args.queries)}),
                   root / "queries.parquet")


def join_child(root: str, how: str, out: str) -> None:
    """In a fresh process: the join, streamed or in memory; prints its peak RSS."""
    queries = pq.read_table(Path(root) / "queries.parquet")
    keys = queries.column("entity").combine_chunks()
    times = np.asarray(queries.column("t"), np.int64)
    history = FeatureHistory(root)
    del queries
    begin = time.perf_counter()
    if how == "stream":
        frame = history.values_at(FEATURES, SOURCE, Queries(keys, times))
    else:  # the whole history in memory, then one join
        events = history.scan(SOURCE, columns=["amount"])
        frame = point_in_time(FEATURES, Sources(events, "_entity", "_event_time"),
                              Queries(keys, times))
    seconds = time.perf_counter() - begin
    pq.write_table(frame, out)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"peak_rss_mb": round(peak_mb, 1), "seconds": round(seconds, 2)}))


def measured_join(root: Path, how: str) -> tuple[dict[str, float], pa.Table]:
    out = root / f"frame-{how}.parquet"
    done = subprocess.run([sys.executable, __file__, "--child", how, "--dir", str(root),
                           "--out", str(out)], capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the {how} join failed:\n{done.stderr}")
    return json.loads(done.stdout), pq.read_table(out)


def pit_20m_peak_rss_mb(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="headwater-scale-") as folder:
        root = Path(folder)
        log(f"pit: writing a history of {args.rows:,} rows")
        begin = time.perf_counter()
        write_history(root, args)
        written = time.perf_counter() - begin
        log("pit: the streamed join")
        stream, streamed = measured_join(root, "stream")
        log("pit: the join in memory")
        memory, in_memory = measured_join(root, "memory")
    agrees = all(streamed.column(n).equals(in_memory.column(n)) for n in in_memory.column_names)
    return {
        "pit_20m_peak_rss_mb": stream["peak_rss_mb"],
        "pit_in_memory_peak_rss_mb": memory["peak_rss_mb"],
        "pit_peak_rss_vs_in_memory": round(stream["peak_rss_mb"] / memory["peak_rss_mb"], 3),
        "pit_seconds": stream["seconds"],
        "pit_in_memory_seconds": memory["seconds"],
        "pit_agrees": agrees,
        "pit_rows": args.rows,
        "pit_queries": args.queries,
        "pit_write_and_compact_seconds": round(written, 1),
    }


# -- joiners2_identical, trainers2_lineage_forks, joiner_step_bytes ----------------------

SECOND = 1_000_000
PARTITIONS = 8
Event = tuple[int, str, tuple[str, str, int]]


# -- the data ------------------------------------------------------------------------


def predictions_batch(rows: list[tuple[str, str, int]]) -> pa.RecordBatch:
    n = len(rows)
    rids, users, times = (list(c) for c in zip(*rows, strict=True))
    return pa.record_batch({
        "request_id": rids, "entity": users,
        "features": [msgspec.json.encode({"x": float(i % 7)}) for i in range(n)],
        "model": ["m"] * n, "version": pa.array([1] * n, pa.int64()), "score": [0.5] * n,
        "arm": ["champion"] * n, "served": [True] * n, "missing": [""] * n,
        "ts": pa.array(times, pa.int64()).cast(TIMESTAMP), "propensity": [1.0] * n,
        "latency_ms": [0.1] * n, "defaulted": [""] * n, "update": [None] * n,
        "entities": [None] * n,
    }, schema=PREDICTIONS_SCHEMA.arrow_schema())


def outcomes_batch(rows: list[tuple[str, str, int]]) -> pa.RecordBatch:
    rids, users, times = (list(c) for c in zip(*rows, strict=True))
    return pa.record_batch({
        "request_id": pa.array(rids, pa.string()), "entity": users,
        "label": pa.array([None] * len(rows), pa.float64()),
        "ts": pa.array(times, pa.int64()).cast(TIMESTAMP),
    }, schema=OUTCOMES_SCHEMA.arrow_schema())


def events(n: int, t0: int) -> list[Event]:
    """``n`` predictions of 2,000 users and clicks on 40% of them within a minute (half
    after the 30 s window), in time order, predictions first at equal times."""
    rng = np.random.default_rng(11)
    times = t0 + np.sort(rng.integers(0, n * SECOND // 4, n))
    users = [f"user-{u}" for u in rng.integers(0, 2_000, n)]
    out: list[Event] = []
    for i in range(n):
        out.append((int(times[i]), "p", (f"req-{i}", users[i], int(times[i]))))
        if rng.random() < 0.4:
            at = int(times[i] + rng.integers(0, 60 * SECOND))
            out.append((at, "o", (f"req-{i}", users[i], at)))
    out.sort(key=lambda e: (e[0], e[1] != "p"))
    return out


def append(topics: Log, chunk: list[Event]) -> None:
    ps = [e[2] for e in chunk if e[1] == "p"]
    os_ = [e[2] for e in chunk if e[1] == "o"]
    if ps:
        topics.append(PREDICTIONS_TOPIC, predictions_batch(ps))
    if os_:
        topics.append(OUTCOMES_TOPIC, outcomes_batch(os_))


def env_of(home: Path) -> dict[str, str]:
    return {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_FSYNC": "never"}


# -- joiners ---------------------------------------------------------------------------


def joiner_process(home: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "headwater", "labels", "run", "--window", "30s",
         "--timeout-label", "0", "--idle-timeout", "5", "--quiet"],
        env=env_of(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if not line.startswith("joining"):
        raise RuntimeError(f"the joiner did not start: {line}{proc.stderr.read()}")
    return proc


def joined(home: Path) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    topics = Log(EmbeddedBackend(home / "log", fsync="never"))
    try:
        keys = ("request_id", "entity", "features", "version", "label", "source",
                "prediction_time", "label_time")
        examples = Counter(tuple(r[k] for k in keys) for f in topics.replay(TRAINING_EXAMPLES_TOPIC)
                           for r in f.batch.to_pylist())
        late = Counter((r["request_id"], r["reason"], r["ts"])
                       for f in topics.replay(f"{OUTCOMES_TOPIC}.late")
                       for r in f.batch.to_pylist())
    finally:
        topics.close()
    return examples, late


def run_joiners(home: Path, stream: list[Event], processes: int, kill: bool) -> float:
    """Append ``stream`` in chunks while ``processes`` joiners run; SIGKILL the first
    half way when ``kill``. Returns the wall seconds until the last joiner stopped."""
    topics = Log(EmbeddedBackend(home / "log", fsync="never"))
    topics.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA, partitions=PARTITIONS)
    topics.create_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA, partitions=PARTITIONS)
    procs = [joiner_process(home) for _ in range(processes)]
    started = time.perf_counter()
    chunks = [stream[i:i + 500] for i in range(0, len(stream), 500)]
    for k, chunk in enumerate(chunks):
        append(topics, chunk)
        time.sleep(0.02)
        if kill and k == len(chunks) // 2:
            os.kill(procs[0].pid, signal.SIGKILL)
            procs[0].wait()
    topics.close()
    for proc in procs[1:] if kill else procs:
        _, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"a joiner failed: {err}")
    return time.perf_counter() - started


def joiners2_identical(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="headwater-scale-") as folder:
        return _joiners2_identical(Path(folder), args.predictions)


def _joiners2_identical(root: Path, predictions: int) -> dict[str, Any]:
    stream = events(predictions, SystemClock().now_us() + 86_400 * SECOND)
    log(f"joiners: {predictions:,} predictions, one joiner process")
    one_s = run_joiners(root / "one", stream, 1, kill=False)
    log("joiners: two joiner processes, one killed half way")
    two_s = run_joiners(root / "two", stream, 2, kill=True)
    one, one_late = joined(root / "one")
    two, two_late = joined(root / "two")
    return {"joiners2_identical": one == two and one_late == two_late,
            "joiners2_examples": sum(two.values()), "joiners1_examples": sum(one.values()),
            "joiners2_late": sum(two_late.values()), "joiners2_wall_s": round(two_s, 2),
            "joiners1_wall_s": round(one_s, 2)}


# -- trainers --------------------------------------------------------------------------


class _Stream:
    """Examples of y = [x1 + x2 > 0] served by model ``m``, a minute apart."""

    def __init__(self, topics: Log) -> None:
        self.topics, self.n = topics, 0
        self.rng = np.random.default_rng(3)
        topics.ensure_topic(TRAINING_EXAMPLES_TOPIC, TRAINING_EXAMPLES_SCHEMA)

    def add(self, count: int) -> None:
        x = self.rng.normal(size=(count, 2))
        y = (x[:, 0] + x[:, 1] > 0).astype(float)
        times = [946_684_800_000_000 + (self.n + i) * 60 * SECOND for i in range(count)]
        self.topics.append(TRAINING_EXAMPLES_TOPIC, pa.record_batch({
            "request_id": [f"r{self.n + i}" for i in range(count)], "entity": ["e"] * count,
            "features": [msgspec.json.encode({"x1": a, "x2": b}) for a, b in x.tolist()],
            "model": ["m"] * count, "version": pa.array([1] * count, pa.int64()),
            "score": [0.5] * count, "arm": ["champion"] * count, "served": [True] * count,
            "label": y, "source": ["explicit"] * count,
            "prediction_time": pa.array(times, pa.int64()).cast(TIMESTAMP),
            "label_time": pa.array([t + 60 * SECOND for t in times], pa.int64()).cast(TIMESTAMP),
        }, schema=TRAINING_EXAMPLES_SCHEMA.arrow_schema()))
        self.n += count


class _Collected:
    """A process whose error output is read as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"no {text!r}: {''.join(self.lines)}")
            time.sleep(0.05)


def count_forks(home: Path) -> tuple[int, int]:
    with open_registry(home / "registry", settings=Settings(home=str(home), fsync="never")
                       ) as registry:
        versions = registry.versions("m")
        found = forks(registry.history("m", "champion"), {v.version: v.parent
                                                          for v in versions})
    return len(found), len(versions)


def trainers2_lineage_forks(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="headwater-scale-") as folder:
        return _trainers2_lineage_forks(Path(folder), args.rounds)


def _trainers2_lineage_forks(root: Path, rounds: int) -> dict[str, Any]:
    home = root / "trainers"
    topics = Log(EmbeddedBackend(home / "log", fsync="never"))
    stream = _Stream(topics)
    stream.add(100)
    args = [sys.executable, "-m", "headwater", "train", "--model", "m", "--strategy",
            "continual", "--volume", "200", "--margin", "10", "--poll", "0.1", "--lease", "2s"]
    log("trainers: two continual trainer processes for one model")
    procs = []
    for _ in range(2):
        procs.append(_Collected(subprocess.Popen(args, env=env_of(home), text=True,
                                                 stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.PIPE)))
        time.sleep(1.0)
    procs[0].wait_for("running")
    procs[1].wait_for("standby:")
    for k in range(rounds):
        stream.add(200)
        time.sleep(0.3)
        if k == rounds // 2:
            os.kill(procs[0].proc.pid, signal.SIGKILL)
            procs[0].proc.wait()
            procs[1].wait_for("running")
    time.sleep(1.0)
    procs[1].proc.send_signal(signal.SIGTERM)
    procs[1].proc.wait(timeout=120)
    topics.close()
    with_lease, versions = count_forks(home)

    log("trainers: the baseline, two trainers without a lease")
    base = root / "baseline"
    clock = ManualClock(946_684_800_000_000)
    blog = Log(MemoryBackend(clock=clock), clock=clock)
    bstream = _Stream(blog)
    with open_registry(base / "registry", settings=Settings(home=str(base), fsync="never"),
                       clock=clock) as registry:
        pair = [Trainer(blog, registry, "m", LogisticRegression, strategy="continual",
                        trigger=Volume(200), gate=Gate(margin=10), clock=clock)
                for _ in range(2)]
        bstream.add(100)
        for _ in range(rounds):
            bstream.add(200)
            for trainer in pair:
                trainer.step()
    without, _ = count_forks(base)
    return {"trainers2_lineage_forks": with_lease, "trainers2_versions": versions,
            "trainers2_lineage_forks_without_lease": without}


# -- a joiner step's bytes ----------------------------------------------------------------


def written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def step_bytes(root: Path, open_predictions: int, steps: int) -> tuple[float, int]:
    clock = ManualClock(946_684_800_000_000)
    t0 = clock.now_us()
    topics = Log(MemoryBackend(clock=clock), clock=clock)
    topics.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA)
    topics.create_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA)
    n = open_predictions
    for lo in range(0, n, 20_000):
        hi = min(lo + 20_000, n)
        topics.append(PREDICTIONS_TOPIC, predictions_batch(
            [(f"r{i}", f"u{i % 5000}", t0 + i) for i in range(lo, hi)]))
    state = root / f"state-{n}"
    joiner = LabelJoiner(topics, JoinRule(window=3_600 * SECOND), state_dir=state, clock=clock,
                         fsync="never", compact_bytes=1 << 20)  # the state is snapshot once
    while joiner.step().predictions:
        pass
    per_step = []
    for k in range(steps):
        topics.append(PREDICTIONS_TOPIC, predictions_batch(
            [(f"r{i}", f"u{i % 5000}", t0 + n + i) for i in range(n + 50 * k, n + 50 * k + 50)]))
        topics.append(OUTCOMES_TOPIC, outcomes_batch(
            [(f"r{i}", f"u{i % 5000}", t0 + 2 * n + 50 * k) for i in range(50 * k, 50 * k + 50)]))
        before = written()
        joiner.step()
        per_step.append(written() - before)
    joiner.close()
    snapshot = state / "partition-0" / "snapshot"
    return statistics.median(per_step), snapshot.stat().st_size


def joiner_step_bytes(args: argparse.Namespace) -> dict[str, Any]:
    if not Path("/proc/self/io").exists():
        return {}
    with tempfile.TemporaryDirectory(prefix="headwater-scale-") as folder:
        return _joiner_step_bytes(Path(folder), args.open)


def _joiner_step_bytes(root: Path, open_many: int) -> dict[str, Any]:
    log(f"joiner step bytes: 2,000 and {open_many:,} open predictions")
    few, _ = step_bytes(root, 2_000, steps=100)
    many, state = step_bytes(root, open_many, steps=100)
    return {"joiner_step_bytes": {"open_2000": few, f"open_{open_many}": many},
            "joiner_step_bytes_ratio": round(many / few, 3), "joiner_state_bytes": state}


def serving(args: argparse.Namespace) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location(
        "serving_benchmark", Path(__file__).with_name("serving.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    log("serving: the Redis online store, one and two workers")
    figures: dict[str, Any] = module.scale_figures(args.serving_seconds, args.serving_rounds)
    return figures


# -- engines2_vs_1, failover_s -----------------------------------------------------------

ENGINE_PROJECT = """
from headwater.features import Entity, Feature, Lifetime, Sliding, StreamSource
user = Entity("user", key="user")
events = StreamSource.of("events")
FEATURES = [
    Feature.of("n", user, events, "count", window=Lifetime()),
    Feature.of("spend_1h", user, events, "sum", column="x", window=Sliding.of("1h", hop="5m")),
    Feature.of("last_x", user, events, "last", column="x"),
]
"""
ENGINE_PARTITIONS = 8
ENGINE_USERS = 20_000


class _Engines:
    """``headwater features run`` processes over one Redis log and online store (under
    prefixes of their own), each in its own home, checkpoints in a shared directory."""

    def __init__(self, root: Path, redis_url: str) -> None:
        import uuid

        self.root = root
        self.prefix = f"hwbench-{uuid.uuid4().hex[:10]}"
        (root / "features.py").write_text(ENGINE_PROJECT)
        self.env = {**os.environ, "HEADWATER_FSYNC": "never",
                    "HEADWATER_LOG_URL": f"{redis_url}?prefix={self.prefix}",
                    "HEADWATER_ONLINE_URL": f"{redis_url}?prefix={self.prefix}-online",
                    "HEADWATER_CHECKPOINTS_URL": str(root / "checkpoints"),
                    "HEADWATER_HISTORY_URL": str(root / "history"),
                    "HEADWATER_PROJECT": str(root / "features.py")}
        self.settings = Settings.from_env(self.env)
        from headwater.log import Schema, open_log
        from headwater.store.online import open_online_store

        self.log = open_log(settings=self.settings)
        self.log.create_topic("events", Schema.of(
            {"user": "string", "x": "float64", "ts": "timestamp"}, key="user",
            event_time="ts"), partitions=ENGINE_PARTITIONS)
        self.online = open_online_store(self.settings.online_location, settings=self.settings)
        self.rng = np.random.default_rng(17)
        self.at = 1_717_200_000_000_000
        self.homes = 0

    def append(self, n: int, users: list[str] | None = None) -> None:
        for lo in range(0, n, 50_000):
            m = min(50_000, n - lo)
            names = users or [f"u{i}" for i in self.rng.integers(0, ENGINE_USERS, m)]
            self.log.append("events", pa.record_batch({
                "user": names[:m], "x": np.round(self.rng.lognormal(3, 1, m), 2),
                "ts": pa.array(self.at + np.arange(m) * 1000, pa.int64()).cast(TIMESTAMP)}))
            self.at += m * 1000

    def start(self, *args: str) -> _Collected:
        self.homes += 1
        env = {**self.env, "HEADWATER_HOME": str(self.root / f"home-{self.homes}")}
        return _Collected(subprocess.Popen(
            [sys.executable, "-m", "headwater", "features", "run", *args], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))

    def applied(self) -> dict[int, int]:
        out = {}
        for p in range(ENGINE_PARTITIONS):
            mark = self.online.meta_get("user", f"applied:events:{p}")
            out[p] = -1 if mark is None else int(mark)
        return out

    def caught_up(self, partitions: list[int] | None = None) -> bool:
        ends = self.log.end_offsets("events")
        applied = self.applied()
        return all(applied[p] >= ends[p] for p in partitions or range(ENGINE_PARTITIONS))

    def values(self) -> list[dict[str, bytes]]:
        return self.online.read_many("user", [f"u{i}" for i in range(ENGINE_USERS)])

    def close(self) -> None:
        from headwater.log.redis import RedisBackend

        destroy = getattr(self.online, "destroy", None)
        if destroy is not None:
            destroy()
        self.online.close()
        backend = self.log.backend
        self.log.close()
        if isinstance(backend, RedisBackend):
            redo = RedisBackend(backend.url, prefix=backend.prefix)
            redo.destroy()
            redo.close()


def _owned(proc: _Collected) -> set[int]:
    import re

    return {int(p) for p in re.findall(r"took over events\[(\d+)\]", "".join(proc.lines))}


def _stop(procs: list[_Collected]) -> None:
    for proc in procs:
        if proc.proc.poll() is None:
            proc.proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.proc.kill()
            proc.proc.wait()


def _catch_up(root: Path, redis_url: str, events: int, engines: int
              ) -> tuple[float, list[dict[str, bytes]]]:
    """Seconds for ``engines`` engines, started and holding their partitions, to catch
    up with a backlog appended while they were stopped (SIGSTOP: their start-up and
    the group's first rebalance are not counted)."""
    bench = _Engines(root, redis_url)
    procs = [bench.start("--group-timeout", "10m") for _ in range(engines)]
    try:
        deadline = time.monotonic() + 120
        while sum(len(_owned(p)) for p in procs) < ENGINE_PARTITIONS or not all(
                _owned(p) for p in procs):
            if time.monotonic() > deadline:
                raise RuntimeError("the engines did not split the partitions: "
                                   + "".join(line for p in procs for line in p.lines))
            time.sleep(0.05)
        time.sleep(1.0)  # the one that lost partitions has let them go
        for proc in procs:
            os.kill(proc.proc.pid, signal.SIGSTOP)
        bench.append(events)
        begin = time.perf_counter()
        for proc in procs:
            os.kill(proc.proc.pid, signal.SIGCONT)
        while not bench.caught_up():
            for proc in procs:
                if proc.proc.poll() is not None:
                    raise RuntimeError(f"an engine stopped: {''.join(proc.lines)}")
            time.sleep(0.02)
        seconds = time.perf_counter() - begin
        return seconds, bench.values()
    finally:
        _stop(procs)
        bench.close()


def engines2_vs_1(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="headwater-scale-") as folder:
        root = Path(folder)
        log(f"engines: a backlog of {args.engine_events:,} events, one engine")
        (root / "one").mkdir()
        one_s, one = _catch_up(root / "one", args.redis_url, args.engine_events, 1)
        log("engines: the same backlog, two engines in one group")
        (root / "two").mkdir()
        two_s, two = _catch_up(root / "two", args.redis_url, args.engine_events, 2)
    return {"engines2_vs_1": round(one_s / two_s, 3),
            "engines1_events_per_s": round(args.engine_events / one_s),
            "engines2_events_per_s": round(args.engine_events / two_s),
            "engines2_identical": one == two, "engine_events": args.engine_events}


def failover_s(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="headwater-scale-") as folder:
        bench = _Engines(Path(folder), args.redis_url)
        try:
            return _failover_s(bench, args.failover_rounds)
        finally:
            bench.close()


def _failover_s(bench: _Engines, rounds: int) -> dict[str, Any]:
    times: list[float] = []
    # One user of each partition, found with the log's own partitioner.
    from headwater.log.partitioner import partition_of

    names = [f"u{i}" for i in range(1_000)]
    probes: dict[int, str] = {}
    for name, p in zip(names, partition_of(pa.array(names), ENGINE_PARTITIONS).tolist(),
                       strict=True):
        probes.setdefault(p, name)
    survivor = bench.start("--checkpoint-interval", "1s")
    survivor.wait_for("took over")
    for k in range(rounds):
        victim = bench.start("--checkpoint-interval", "1s")
        deadline = time.monotonic() + 60
        while not _owned(victim) and time.monotonic() < deadline:
            time.sleep(0.05)
        bench.append(20_000)
        while not bench.caught_up():
            time.sleep(0.05)
        time.sleep(1.5)  # a checkpoint of the victim's partitions
        lost = sorted(_owned(victim))
        log(f"failover {k + 1}/{rounds}: SIGKILL of the engine owning partitions {lost}")
        os.kill(victim.proc.pid, signal.SIGKILL)
        killed = time.perf_counter()
        victim.proc.wait()
        bench.append(len(lost), [probes[p] for p in lost])
        while not bench.caught_up(lost):
            if time.perf_counter() - killed > 120:
                raise RuntimeError(f"no failover: {''.join(survivor.lines)}")
            time.sleep(0.01)
        times.append(time.perf_counter() - killed)
    _stop([survivor])
    return {"failover_s": round(statistics.median(times), 2),
            "failover_s_each": [round(t, 2) for t in times],
            "group_timeout": bench.settings.group_timeout}


#: Every figure: a function of the arguments returning its figures.
FIGURES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "pit_20m_peak_rss_mb": pit_20m_peak_rss_mb,
    "joiners2_identical": joiners2_identical,
    "trainers2_lineage_forks": trainers2_lineage_forks,
    "joiner_step_bytes": joiner_step_bytes,
    "serving": serving,
    "engines2_vs_1": engines2_vs_1,
    "failover_s": failover_s,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(FIGURES),
                        help="Run only this figure (repeatable).")
    parser.add_argument("--rows", type=int, default=20_000_000, help="History rows.")
    parser.add_argument("--queries", type=int, default=1_000_000, help="Label rows.")
    parser.add_argument("--entities", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--predictions", type=int, default=50_500,
                        help="Predictions the joiners join.")
    parser.add_argument("--rounds", type=int, default=12,
                        help="Rounds of 200 examples the trainers learn.")
    parser.add_argument("--open", type=int, default=200_000,
                        help="Open predictions for a joiner step's bytes.")
    parser.add_argument("--serving-seconds", type=float, default=3.0,
                        help="Seconds of load per serving run.")
    parser.add_argument("--serving-rounds", type=int, default=3,
                        help="Rounds of the serving runs (medians).")
    parser.add_argument("--engine-events", type=int, default=1_000_000,
                        help="The backlog the engines catch up with.")
    parser.add_argument("--failover-rounds", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--child", choices=["stream", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        join_child(args.dir, args.child, args.out)
        return
    results: dict[str, Any] = {"uptime_load": uptime_load(), "cores": os.cpu_count()}
    for name in args.only or list(FIGURES):
        results.update(FIGURES[name](args))
    results["uptime_load_after"] = uptime_load()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
