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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--reads", type=int, default=20_000)
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
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
