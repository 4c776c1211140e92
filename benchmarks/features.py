"""Benchmark of streaming features; prints one JSON object.

Measured as ratios against baselines run in the same process, because absolute times
on a shared machine are noise:

- ``stream_events_per_cpu_s`` and ``stream_vs_python_loop``: events (100k keys, three
  features: count over 1 h sliding, mean over 1 h sliding, both with 5-minute hops, and
  sum over 24 h sliding with a 1-hour hop) from the embedded log through the feature
  engine into the in-memory online store, against a pure-Python per-event loop (a dict of
  deques of tiles per key) computing the same values; both in CPU seconds. The final
  values of a sample of keys are checked equal before any figure is printed.
- ``online_read_p50_us``, ``online_read_p99_us``: one entity's 20 features through
  :class:`~headwater.features.online.FeatureReader` on the in-memory store
  (``online_read_vs_dict``: against reading the same blobs from a plain dict).
- ``freshness_p50_ms``, ``freshness_p99_ms``: from appending one event to the embedded
  log until a read-only follower of the embedded online store sees its effect, with the
  engine running continuously in its own process (default fsync policies).

Run: ``python benchmarks/features.py`` (``--events 1000000`` for a quick run).
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import collections
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import pyarrow as pa

from headwater.features import Entity, Feature, FeatureSet, Sliding, StreamSource
from headwater.features.engine import FeatureEngine
from headwater.features.online import FeatureReader, values_at
from headwater.log import Log, Schema
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.store.online.memory import MemoryOnlineStore

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

HOUR = 3_600_000_000
MINUTE = 60_000_000
START = 1_700_000_000_000_000
SCHEMA = Schema.of({"user": "string", "amount": "float64", "ts": "timestamp"},
                   key="user", event_time="ts")
USER = Entity("user", key="user")
SOURCE = StreamSource.of("tx")
FEATURES = [
    Feature.of("n_1h", USER, SOURCE, "count", window=Sliding(HOUR, 5 * MINUTE)),
    Feature.of("mean_1h", USER, SOURCE, "mean", column="amount", window=Sliding(HOUR, 5 * MINUTE)),
    Feature.of("sum_24h", USER, SOURCE, "sum", column="amount", window=Sliding(24 * HOUR, HOUR)),
]


def log_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_events(n: int, keys: int, days: int, seed: int = 0) -> list[pa.RecordBatch]:
    """Batches of 100k events in time order, amounts with two decimals (exact sums)."""
    rng = np.random.default_rng(seed)
    names = pa.array([f"user-{i}" for i in range(keys)])
    span = days * 24 * HOUR
    batches = []
    size = 100_000
    for j in range(max(1, n // size)):
        lo = START + span * j // max(1, n // size)
        hi = START + span * (j + 1) // max(1, n // size)
        times = np.sort(rng.integers(lo, hi, size))
        batches.append(pa.RecordBatch.from_arrays(
            [names.take(pa.array(rng.integers(0, keys, size))),
             pa.array(np.round(rng.random(size) * 100, 2)),
             pa.array(times).cast(TIMESTAMP)],
            schema=SCHEMA.arrow_schema()))
    return batches


def python_loop(batches: list[pa.RecordBatch]) -> dict[str, tuple[int, Any, Any, Any]]:
    """The same three features, one event at a time, in plain Python.

    Per key: a deque of (tile, count, sum) per window; the value is read after the last
    event, at ``end``.
    """
    short: dict[str, collections.deque[list[float]]] = {}
    long: dict[str, collections.deque[list[float]]] = {}
    last: dict[str, int] = {}
    for batch in batches:
        users = batch.column("user").to_pylist()
        amounts = batch.column("amount").to_pylist()
        times = batch.column("ts").cast(pa.int64()).to_pylist()
        for user, amount, t in zip(users, amounts, times, strict=True):
            last[user] = t if user not in last else max(last[user], t)
            for table, hop, n in ((short, 5 * MINUTE, 12), (long, HOUR, 24)):
                tiles = table.get(user)
                if tiles is None:
                    tiles = table[user] = collections.deque()
                tile = t // hop
                if tiles and tiles[-1][0] == tile:
                    tiles[-1][1] += 1
                    tiles[-1][2] += amount
                else:
                    tiles.append([tile, 1, amount])
                while tiles[0][0] <= tile - n:
                    tiles.popleft()
    end = max(last.values())
    out: dict[str, tuple[int, Any, Any, Any]] = {}
    def window(tiles: collections.deque[list[float]], hop: int, n: int) -> tuple[float, float]:
        now = end // hop
        kept = [(c, s) for tile, c, s in tiles if now - n < tile <= now]
        return sum(c for c, _ in kept), sum(s for _, s in kept)

    for user in last:
        count, total = window(short[user], 5 * MINUTE, 12)
        _, day = window(long[user], HOUR, 24)
        out[user] = (end, count, total / count if count else None, day)
    return out


def run_engine(batches: list[pa.RecordBatch], tmp: str) -> tuple[float, MemoryOnlineStore]:
    log = Log(EmbeddedBackend(f"{tmp}/log", fsync="never"))
    log.create_topic("tx", SCHEMA)
    for batch in batches:
        log.append("tx", batch)
    online = MemoryOnlineStore()
    engine = FeatureEngine(log, FEATURES, online, state_dir=f"{tmp}/state",
                           checkpoint_events=1 << 62)
    start = time.process_time()
    while engine.step(max_events=1_000_000):
        pass
    cpu = time.process_time() - start
    engine.consumer.close()
    return cpu, online


def check_same(online: MemoryOnlineStore, expected: dict[str, tuple[int, Any, Any, Any]]
               ) -> None:
    for user in list(expected)[:2000]:
        end, count, mean, day = expected[user]
        got = values_at(FEATURES, online.read("user", user), end)
        for name, want in (("n_1h", count), ("mean_1h", mean), ("sum_24h", day)):
            value = got[name]
            if want is None or value is None:
                ok = want is None and value is None
            else:
                ok = math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-6)
            if not ok:
                raise SystemExit(f"{user} {name}: engine {value} != loop {want}")


def online_reads(samples: int) -> dict[str, float]:
    names = [f"f{i}" for i in range(20)]
    feats = [Feature.of(name, USER, SOURCE, "sum", column="amount",
                        window=Sliding(HOUR, 5 * MINUTE)) for name in names]
    online = MemoryOnlineStore()
    blob = bytes(16 + 8 * 12)
    plain: dict[str, dict[str, bytes]] = {}
    for i in range(100_000):
        row = dict.fromkeys(names, blob)
        plain[f"user-{i}"] = row
    online.write("user", list(plain.items()))
    reader = FeatureReader(online, FeatureSet("wide", tuple(feats)))
    rng = np.random.default_rng(1)
    keys = [f"user-{i}" for i in rng.integers(0, 100_000, samples)]
    ours, base = [], []
    for key in keys:
        t0 = time.perf_counter_ns()
        reader.read({"user": key}, START)
        t1 = time.perf_counter_ns()
        dict(plain[key])
        t2 = time.perf_counter_ns()
        ours.append(t1 - t0)
        base.append(t2 - t1)
    p50, p99 = np.percentile(ours, [50, 99]) / 1000
    return {"online_read_p50_us": round(float(p50), 2), "online_read_p99_us": round(float(p99), 2),
            "online_read_vs_dict": round(float(np.median(ours) / np.median(base)), 1)}


ENGINE = """
import sys
from headwater.features import Entity, Feature, Lifetime, StreamSource
from headwater.features.engine import FeatureEngine
from headwater.log import open_log
from headwater.store.online import EmbeddedOnlineStore

root = sys.argv[1]
user = Entity("user", key="user")
last = Feature.of("last_amount", user, StreamSource.of("tx"), "last", column="amount",
                  window=Lifetime())
log = open_log(root + "/log")
online = EmbeddedOnlineStore(root + "/online")
with FeatureEngine(log, [last], online, state_dir=root + "/state") as engine:
    print("ready", flush=True)
    engine.run(idle_timeout_s=float(sys.argv[2]), poll_timeout_s=0.05)
online.close()
"""


def freshness(samples: int) -> dict[str, float]:
    """Append one event at a time; time until the online store reflects it."""
    from headwater.features.online import value_at
    from headwater.log import open_log
    from headwater.store.online import EmbeddedOnlineStore

    last = Feature.of("last_amount", USER, SOURCE, "last", column="amount")
    tmp = tempfile.mkdtemp(prefix="hw-bench-fresh-")
    log = open_log(f"{tmp}/log")
    log.create_topic("tx", SCHEMA)
    engine = subprocess.Popen([sys.executable, "-c", ENGINE, tmp, "5"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert engine.stdout is not None
        if engine.stdout.readline().strip() != "ready":
            raise SystemExit("the engine process did not start")
        reader = EmbeddedOnlineStore(f"{tmp}/online", read_only=True)
        latencies = []
        for i in range(samples):
            amount = float(i + 1)
            start = time.perf_counter()
            log.append("tx", [{"user": "fresh", "amount": amount, "ts": START + i}])
            while True:
                reader.refresh()
                entry = reader.read("user", "fresh").get("last_amount")
                if entry is not None and value_at(last, entry, START + i) == amount:
                    break
                if time.perf_counter() - start > 5:
                    raise SystemExit(f"event {i} not visible after 5 s")
                time.sleep(0.0002)
            latencies.append(time.perf_counter() - start)
            time.sleep(0.005)
        reader.close()
    finally:
        engine.terminate()
        engine.wait(timeout=30)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    return {"freshness_p50_ms": round(float(p50), 2), "freshness_p99_ms": round(float(p99), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--fresh", type=int, default=500, help="freshness samples")
    args = parser.parse_args()
    log_progress(f"generating {args.events:,} events")
    batches = make_events(args.events, args.keys, args.days)
    n = sum(b.num_rows for b in batches)
    tmp = tempfile.mkdtemp(prefix="hw-bench-features-")
    try:
        log_progress("engine")
        engine_cpu, online = run_engine(batches, tmp)
        log_progress("python loop")
        start = time.process_time()
        expected = python_loop(batches)
        loop_cpu = time.process_time() - start
        check_same(online, expected)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log_progress("online reads")
    figures: dict[str, Any] = {
        "events": n,
        "keys": args.keys,
        "stream_events_per_cpu_s": round(n / engine_cpu),
        "python_loop_events_per_cpu_s": round(n / loop_cpu),
        "stream_vs_python_loop": round(loop_cpu / engine_cpu, 2),
    }
    figures.update(online_reads(args.reads))
    log_progress("freshness")
    figures.update(freshness(args.fresh))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
