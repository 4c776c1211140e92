"""Benchmark of scaling out: several processes of one component, nothing lost or twice.

Prints one JSON object to stdout (progress goes to stderr), with the machine's load
(``uptime``) when it ran. Everything runs on this machine, on the embedded log and
model store (loopback only); each figure has its own function and its baseline in the
same run.

- ``joiners2_identical``: predictions and outcomes (future times, so the clock closes no
  window) are appended in chunks over eight co-partitioned partitions, twice, to two
  homes: one ``headwater labels run`` process joins the first; two join the second,
  one of them SIGKILLed half way. True when both give the same training examples
  (every column but the offsets) and the same late outcomes, as multisets.
- ``trainers2_lineage_forks`` (target 0): two ``headwater train --strategy continual``
  processes for one model while examples arrive; the one training is SIGKILLed half
  way and the standby takes over when its lease runs out. A fork is a promotion of the
  champion to a version that does not descend from the one it replaces
  (:func:`headwater.registry.forks`). The baseline,
  ``trainers2_lineage_forks_without_lease``, is two trainers of the same kind over the
  same examples without a lease, stepping in turn.
- ``joiner_step_bytes``: bytes a joiner's step writes (the kernel's count of bytes
  passed to ``write``), median over steps of 50 predictions and 50 outcomes each, with
  few and with many open predictions; ``joiner_step_bytes_ratio`` is many over few
  (the state, which a whole-state checkpoint would rewrite every step, is
  ``joiner_state_bytes``: its snapshot once the open predictions were read).

Usage::

    .venv/bin/python benchmarks/scale.py
    .venv/bin/python benchmarks/scale.py --predictions 20000 --open 200000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from headwater.config import Settings
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
from headwater.testing import ManualClock, MemoryBackend
from headwater.time import SystemClock

SECOND = 1_000_000
PARTITIONS = 8
Event = tuple[int, str, tuple[str, str, int]]


def log_progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def uptime() -> str:
    done = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


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
        "latency_ms": [0.1] * n, "defaulted": [""] * n,
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


def append(log: Log, chunk: list[Event]) -> None:
    ps = [e[2] for e in chunk if e[1] == "p"]
    os_ = [e[2] for e in chunk if e[1] == "o"]
    if ps:
        log.append(PREDICTIONS_TOPIC, predictions_batch(ps))
    if os_:
        log.append(OUTCOMES_TOPIC, outcomes_batch(os_))


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
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    try:
        keys = ("request_id", "entity", "features", "version", "label", "source",
                "prediction_time", "label_time")
        examples = Counter(tuple(r[k] for k in keys) for f in log.replay(TRAINING_EXAMPLES_TOPIC)
                           for r in f.batch.to_pylist())
        late = Counter((r["request_id"], r["reason"], r["ts"])
                       for f in log.replay(f"{OUTCOMES_TOPIC}.late")
                       for r in f.batch.to_pylist())
    finally:
        log.close()
    return examples, late


def run_joiners(home: Path, stream: list[Event], processes: int, kill: bool) -> float:
    """Append ``stream`` in chunks while ``processes`` joiners run; SIGKILL the first
    half way when ``kill``. Returns the wall seconds until the last joiner stopped."""
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    log.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA, partitions=PARTITIONS)
    log.create_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA, partitions=PARTITIONS)
    procs = [joiner_process(home) for _ in range(processes)]
    started = time.perf_counter()
    chunks = [stream[i:i + 500] for i in range(0, len(stream), 500)]
    for k, chunk in enumerate(chunks):
        append(log, chunk)
        time.sleep(0.02)
        if kill and k == len(chunks) // 2:
            os.kill(procs[0].pid, signal.SIGKILL)
            procs[0].wait()
    log.close()
    for proc in procs[1:] if kill else procs:
        _, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"a joiner failed: {err}")
    return time.perf_counter() - started


def joiners2_identical(root: Path, predictions: int) -> dict[str, Any]:
    stream = events(predictions, SystemClock().now_us() + 86_400 * SECOND)
    log_progress(f"joiners: {predictions:,} predictions, one joiner process")
    one_s = run_joiners(root / "one", stream, 1, kill=False)
    log_progress("joiners: two joiner processes, one killed half way")
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

    def __init__(self, log: Log) -> None:
        self.log, self.n = log, 0
        self.rng = np.random.default_rng(3)
        log.ensure_topic(TRAINING_EXAMPLES_TOPIC, TRAINING_EXAMPLES_SCHEMA)

    def add(self, count: int) -> None:
        x = self.rng.normal(size=(count, 2))
        y = (x[:, 0] + x[:, 1] > 0).astype(float)
        times = [946_684_800_000_000 + (self.n + i) * 60 * SECOND for i in range(count)]
        self.log.append(TRAINING_EXAMPLES_TOPIC, pa.record_batch({
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


def trainers2_lineage_forks(root: Path, rounds: int) -> dict[str, Any]:
    home = root / "trainers"
    log = Log(EmbeddedBackend(home / "log", fsync="never"))
    stream = _Stream(log)
    stream.add(100)
    args = [sys.executable, "-m", "headwater", "train", "--model", "m", "--strategy",
            "continual", "--volume", "200", "--margin", "10", "--poll", "0.1", "--lease", "2s"]
    log_progress("trainers: two continual trainer processes for one model")
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
    log.close()
    with_lease, versions = count_forks(home)

    log_progress("trainers: the baseline, two trainers without a lease")
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
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA)
    log.create_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA)
    n = open_predictions
    for lo in range(0, n, 20_000):
        hi = min(lo + 20_000, n)
        log.append(PREDICTIONS_TOPIC, predictions_batch(
            [(f"r{i}", f"u{i % 5000}", t0 + i) for i in range(lo, hi)]))
    state = root / f"state-{n}"
    joiner = LabelJoiner(log, JoinRule(window=3_600 * SECOND), state_dir=state, clock=clock,
                         fsync=False, compact_bytes=1 << 20)  # the state is snapshot once
    while joiner.step().predictions:
        pass
    per_step = []
    for k in range(steps):
        log.append(PREDICTIONS_TOPIC, predictions_batch(
            [(f"r{i}", f"u{i % 5000}", t0 + n + i) for i in range(n + 50 * k, n + 50 * k + 50)]))
        log.append(OUTCOMES_TOPIC, outcomes_batch(
            [(f"r{i}", f"u{i % 5000}", t0 + 2 * n + 50 * k) for i in range(50 * k, 50 * k + 50)]))
        before = written()
        joiner.step()
        per_step.append(written() - before)
    joiner.close()
    snapshot = state / "partition-0" / "snapshot"
    return statistics.median(per_step), snapshot.stat().st_size


def joiner_step_bytes(root: Path, open_many: int) -> dict[str, Any]:
    if not Path("/proc/self/io").exists():
        return {}
    log_progress(f"joiner step bytes: 2,000 and {open_many:,} open predictions")
    few, _ = step_bytes(root, 2_000, steps=100)
    many, state = step_bytes(root, open_many, steps=100)
    return {"joiner_step_bytes": {"open_2000": few, f"open_{open_many}": many},
            "joiner_step_bytes_ratio": round(many / few, 3), "joiner_state_bytes": state}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", type=int, default=50_500)
    parser.add_argument("--rounds", type=int, default=12, help="trainer rounds of 200")
    parser.add_argument("--open", type=int, default=200_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="hw-bench-scale-"))
    figures: dict[str, Any] = {"uptime": uptime()}
    try:
        figures.update(joiners2_identical(root, args.predictions))
        figures.update(trainers2_lineage_forks(root, args.rounds))
        figures.update(joiner_step_bytes(root, args.open))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    figures["uptime_after"] = uptime()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
