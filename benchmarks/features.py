"""Benchmark of streaming features; prints one JSON object.

Measured as ratios against baselines run in the same process, because absolute times
on a shared machine are noise:

- ``engine_vs_polars_1t`` and ``engine_vs_duckdb_1t``: the live engine against the
  batch engines users would compare it with, each on one thread and in CPU seconds. The
  engine is timed from appending the events to the embedded log until the embedded
  online store (no fsync on either) holds every entity's entries, with its default
  micro-batches (``step()`` after each append) and checkpoints. Its peers compute every
  sliding window of the same events (100k keys; count, sum and mean over 1 h sliding by
  5 minutes) in a subprocess of their own, started from the same events as an Arrow
  table: Polars ``group_by_dynamic`` (``POLARS_MAX_THREADS=1``) and DuckDB window
  functions over the 5-minute tiles (``SET threads=1``); each keeps every key's window
  at its latest event: the final online state. Every key's three values from each peer
  are checked equal to the engine's (read from the online store at that key's latest
  event time) before any figure is printed. Rounds alternate the contenders; figures are
  medians.
- ``checkpoint_mb_100k_x20``: the size of one engine checkpoint after the same keys and
  times with 20 amounts each, one feature summing each over 1 h by 5 minutes (12 tiles).
- ``online_read_p50_us``, ``online_read_p99_us``: one entity's 20 features through
  :class:`~headwater.features.online.FeatureReader` on the in-memory store
  (``online_read_vs_dict``: against reading the same blobs from a plain dict).
- ``freshness_p50_ms``, ``freshness_p99_ms``: from appending one event to the embedded
  log until a read-only follower of the embedded online store sees its effect, with the
  engine running continuously in its own process (default fsync policies).

Run: ``python benchmarks/features.py`` (``--events 200000 --rounds 1 --only-engine`` for a
quick run).
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.features import Entity, Feature, FeatureSet, Sliding, StreamSource
from headwater.features.engine import FeatureEngine
from headwater.features.online import FeatureReader, values_at
from headwater.log import Log, Schema
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.store.online import EmbeddedOnlineStore
from headwater.store.online.memory import MemoryOnlineStore

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

HOUR = 3_600_000_000
MINUTE = 60_000_000
HOP = 5 * MINUTE
TILES = 12
START = 1_700_000_000_000_000
SCHEMA = Schema.of({"user": "string", "amount": "float64", "ts": "timestamp"},
                   key="user", event_time="ts")
USER = Entity("user", key="user")
SOURCE = StreamSource.of("tx")
WINDOW = Sliding(TILES * HOP, HOP)
FEATURES = [
    Feature.of("n_1h", USER, SOURCE, "count", window=WINDOW),
    Feature.of("sum_1h", USER, SOURCE, "sum", column="amount", window=WINDOW),
    Feature.of("mean_1h", USER, SOURCE, "mean", column="amount", window=WINDOW),
]


def log_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_events(n: int, keys: int, days: int, seed: int = 0) -> list[pa.RecordBatch]:
    """Batches of 100k events in time order, amounts with two decimals."""
    rng = np.random.default_rng(seed)
    names = pa.array([f"user-{i}" for i in range(keys)])
    span = days * 24 * HOUR
    batches = []
    size = min(n, 100_000)
    count = max(1, n // size)
    for j in range(count):
        lo = START + span * j // count
        hi = START + span * (j + 1) // count
        times = np.sort(rng.integers(lo, hi, size))
        batches.append(pa.RecordBatch.from_arrays(
            [names.take(pa.array(rng.integers(0, keys, size))),
             pa.array(np.round(rng.random(size) * 100, 2)),
             pa.array(times).cast(TIMESTAMP)],
            schema=SCHEMA.arrow_schema()))
    return batches


def run_engine(batches: list[pa.RecordBatch], tmp: str) -> tuple[float, float]:
    """CPU and wall seconds from the first append until the online store is current
    (the store is left in ``tmp/online``)."""
    log = Log(EmbeddedBackend(f"{tmp}/log", fsync="never"))
    log.create_topic("tx", SCHEMA)
    online = EmbeddedOnlineStore(f"{tmp}/online", fsync="never")
    engine = FeatureEngine(log, FEATURES, online, state_dir=f"{tmp}/state")
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:  # live: each append is followed by a micro-batch
        log.append("tx", batch)
        engine.step()
    while engine.step():
        pass
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    engine.consumer.close()
    online.close()
    log.close()
    return cpu, wall


PEER = """
import json, os, sys, time
peer, source, target = sys.argv[1:4]
HOP, TILES = int(sys.argv[4]), int(sys.argv[5])
import pyarrow as pa
table = pa.ipc.open_file(pa.memory_map(source)).read_all()
if peer == "polars":
    os.environ["POLARS_MAX_THREADS"] = "1"
    import polars as pl
    threads = pl.thread_pool_size()
    cpu, wall = time.process_time(), time.perf_counter()
    df = pl.from_arrow(table)
    windows = df.group_by_dynamic("ts", every=f"{HOP}us", period=f"{HOP * TILES}us",
                                  group_by="user", closed="left", label="left",
                                  start_by="window").agg(
        pl.len().alias("n"), pl.col("amount").sum().alias("sum"))
    latest = df.group_by("user").agg(pl.col("ts").max().alias("latest"))
    final = windows.join(latest, on="user").filter(
        pl.col("ts").cast(pl.Int64)
        == (pl.col("latest").cast(pl.Int64) // HOP - (TILES - 1)) * HOP
    ).select("user", pl.col("latest").cast(pl.Int64), pl.col("n").cast(pl.Int64), "sum",
             (pl.col("sum") / pl.col("n")).alias("mean"))
    out = final.to_arrow()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
else:
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads=1")
    con.execute("SET enable_progress_bar=false")
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    query = (
        'WITH tiles AS ('
        '  SELECT "user", epoch_us(ts) // %d AS tile, max(epoch_us(ts)) AS latest,'
        '         count(*) AS n, sum(amount) AS s'
        '  FROM events GROUP BY ALL),'
        ' windows AS ('
        '  SELECT "user", tile, max(latest) OVER w AS latest, sum(n) OVER w AS n,'
        '         sum(s) OVER w AS s'
        '  FROM tiles'
        '  WINDOW w AS (PARTITION BY "user" ORDER BY tile'
        '               RANGE BETWEEN %d PRECEDING AND CURRENT ROW))'
        ' SELECT "user", latest, CAST(n AS BIGINT) AS n, s AS sum, s / n AS mean'
        ' FROM windows'
        ' QUALIFY row_number() OVER (PARTITION BY "user" ORDER BY tile DESC) = 1'
    ) % (HOP, TILES - 1)
    cpu, wall = time.process_time(), time.perf_counter()
    con.register("events", table)
    out = con.execute(query).to_arrow_table()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
with pa.OSFile(target, "wb") as sink, pa.ipc.new_file(sink, out.schema) as writer:
    writer.write_table(out)
print(json.dumps({"cpu": cpu, "wall": wall, "threads": int(threads)}))
"""


def run_peer(peer: str, source: str, tmp: str) -> tuple[float, float, pa.Table]:
    """A batch engine in a subprocess on one thread: CPU and wall seconds, final state."""
    target = f"{tmp}/{peer}.arrow"
    env = {**os.environ, "POLARS_MAX_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", PEER, peer, source, target, str(HOP),
                           str(TILES)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{peer} failed:\n{done.stderr}")
    report = json.loads(done.stdout.splitlines()[-1])
    if report["threads"] != 1:
        raise SystemExit(f"{peer} ran on {report['threads']} threads, not one")
    with pa.memory_map(target) as f:
        final = pa.ipc.open_file(f).read_all()
    return report["cpu"], report["wall"], final


def check_same(online: EmbeddedOnlineStore, final: pa.Table, peer: str, keys: int) -> None:
    """Every key's values in the online store, at its latest event, equal the peer's."""
    rows = final.to_pydict()
    if len(rows["user"]) != keys:
        raise SystemExit(f"{peer} gave {len(rows['user'])} keys, not {keys}")
    for user, latest, n, total, mean in zip(rows["user"], rows["latest"], rows["n"],
                                            rows["sum"], rows["mean"], strict=True):
        got = values_at(FEATURES, online.read("user", user), latest)
        for name, want in (("n_1h", n), ("sum_1h", total), ("mean_1h", mean)):
            value = got[name]
            if value is None or not math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-9):
                raise SystemExit(f"{user} {name}: engine {value} != {peer} {want}")


def checkpoint_mb(batches: list[pa.RecordBatch], tmp: str, features: int = 20) -> float:
    """One engine checkpoint after the same events (their keys and times), each with
    ``features`` amounts, one sum of 12 tiles over each."""
    names = [f"amount_{i}" for i in range(features)]
    schema = Schema.of({"user": "string", "ts": "timestamp", **dict.fromkeys(names, "float64")},
                       key="user", event_time="ts")
    wide = [Feature.of(f"sum_{i}", USER, SOURCE, "sum", column=name, window=WINDOW)
            for i, name in enumerate(names)]
    rng = np.random.default_rng(1)
    batches = [pa.RecordBatch.from_arrays(
        [b.column("user"), b.column("ts"),
         *(pa.array(np.round(rng.random(b.num_rows) * 100, 2)) for _ in names)],
        schema=schema.arrow_schema()) for b in batches]
    log = Log(EmbeddedBackend(f"{tmp}/ckpt-log", fsync="never"))
    log.create_topic("tx", schema)
    for batch in batches:
        log.append("tx", batch)
    engine = FeatureEngine(log, wide, MemoryOnlineStore(), state_dir=f"{tmp}/ckpt-state",
                           checkpoint_events=1 << 62)
    while engine.step(max_events=1_000_000):
        pass
    engine.close()
    log.close()
    current = next(Path(f"{tmp}/ckpt-state").rglob("CURRENT"))
    folder = current.parent / current.read_text().strip()
    return sum(f.stat().st_size for f in folder.iterdir()) / 1e6


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
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--fresh", type=int, default=500, help="freshness samples")
    parser.add_argument("--only-engine", action="store_true",
                        help="only the engine against its peers, and the checkpoint")
    args = parser.parse_args()
    log_progress(f"generating {args.events:,} events")
    batches = make_events(args.events, args.keys, args.days)
    n = sum(b.num_rows for b in batches)
    table = pa.Table.from_batches(batches)
    keys = len(pc.unique(table.column("user")))
    tmp = tempfile.mkdtemp(prefix="hw-bench-features-")
    cpu: dict[str, list[float]] = {"engine": [], "polars": [], "duckdb": []}
    wall: dict[str, list[float]] = {"engine": [], "polars": [], "duckdb": []}
    try:
        source = f"{tmp}/events.arrow"
        with pa.OSFile(source, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        contenders = ["engine", "polars", "duckdb"]
        for r in range(args.rounds):
            for who in contenders[r % 3:] + contenders[:r % 3]:
                log_progress(f"round {r + 1}: {who}")
                if who == "engine":
                    c, w = run_engine(batches, f"{tmp}/engine-{r}")
                    if r:
                        shutil.rmtree(f"{tmp}/engine-{r}", ignore_errors=True)
                else:
                    c, w, final = run_peer(who, source, tmp)
                    if r == 0:
                        log_progress(f"checking {who} against the engine")
                        online = EmbeddedOnlineStore(f"{tmp}/engine-0/online", read_only=True)
                        check_same(online, final, who, keys)
                        online.close()
                log_progress(f"  {c:.2f} CPU s, {w:.2f} s")
                cpu[who].append(c)
                wall[who].append(w)
        log_progress("checkpoint")
        ckpt = checkpoint_mb(batches, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: float(np.median(v)) for k, v in cpu.items()}
    walls = {k: float(np.median(v)) for k, v in wall.items()}
    figures: dict[str, Any] = {
        "events": n,
        "keys": keys,
        "rounds": args.rounds,
        "engine_events_per_cpu_s": round(n / med["engine"]),
        "polars_1t_events_per_cpu_s": round(n / med["polars"]),
        "duckdb_1t_events_per_cpu_s": round(n / med["duckdb"]),
        "engine_vs_polars_1t": round(med["polars"] / med["engine"], 2),
        "engine_vs_duckdb_1t": round(med["duckdb"] / med["engine"], 2),
        "engine_vs_polars_1t_wall": round(walls["polars"] / walls["engine"], 2),
        "engine_vs_duckdb_1t_wall": round(walls["duckdb"] / walls["engine"], 2),
        "checked_equal_keys": keys,
        "checkpoint_mb_100k_x20": round(ckpt, 1),
    }
    if not args.only_engine:
        log_progress("online reads")
        figures.update(online_reads(args.reads))
        log_progress("freshness")
        figures.update(freshness(args.fresh))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
