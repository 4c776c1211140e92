"""Benchmark of the online stores' read latency, against baselines run in the same script.

Prints one JSON object to stdout (progress goes to stderr). The data: ``--entities``
entities (100k) of ``--features`` features (20), each blob 16-64 random bytes, in one
namespace, loaded in batches of 1,000 entities.

- **embedded**: :class:`EmbeddedOnlineStore` (``fsync="never"``: reads do not touch the
  disk). ``read`` of one random entity, and ``read_many`` of 100 random entities;
  against the least a read returning a fresh dict can do in Python: a plain dict
  lookup and ``.copy()`` of the entity's feature dict (``dict_*``), and the same for
  100 in a list comprehension.
- **decoded**: what serving reads: :class:`FeatureReader` of a set of ``--features``
  features of one entity (sums, counts, means, maxima over a 1 h window sliding by
  5 min and over the lifetime, entries as the engine writes them) from the embedded
  store, decoded to numbers at a read time inside the window; against a dict lookup
  and ``.copy()`` of the same numbers as plain floats (``decoded_read_vs_dict``: the
  p50 ratio).
- **redis**: :class:`RedisOnlineStore` on ``--redis-url`` (a fresh key prefix, deleted
  afterwards), ``read`` and ``read_many`` of 100; against redis-py itself on its own
  client: ``HGETALL`` of the same key, and a pipeline of 100 ``HGETALL`` (what our
  layer adds: argument checks, key building, decoding the feature names). A server
  that does not answer gives ``null`` and an entry in ``notes``.

Method. Each call is timed alone with ``time.perf_counter_ns`` (its overhead, tens of
nanoseconds, is in both sides of every ratio). Contender and baseline alternate in
blocks of ``--block`` calls so drift hits both alike; all random keys are drawn before
timing. The process is pinned to one CPU (``--cpu``) and native thread pools to one
thread. After loading, ``gc.freeze()`` moves the loaded objects out of the collector's
reach, as a serving process would; the collector stays on while timing. ``*_vs_*``
ratios are contender / baseline at the same percentile: 1.0 means no overhead.
The headline target: ``online_read_p99_us`` (one entity, 20 features) at most 50 µs.

Usage::

    .venv/bin/python benchmarks/online_store.py                  # about a minute
    .venv/bin/python benchmarks/online_store.py --entities 10000 --samples 20000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

# Pin native thread pools before anything loads them: both sides of a ratio run alike.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np

from headwater.features import Entity, Feature, FeatureSet, Lifetime, Sliding, StreamSource
from headwater.features.online import FeatureReader
from headwater.features.state import entries
from headwater.features.windows import Window
from headwater.store.online import EmbeddedOnlineStore

NS: Final = "user"
LOAD_BATCH: Final = 1000
TARGETS: Final = {"online_read_p99_us": 50.0}
#: The decoded read's p50 over a dict copy of the same floats: at most this.
DECODED_TARGET: Final = 3.0
HOUR_US: Final = 3_600_000_000
#: 2024-01-01T00:00:00Z: the newest events' time in the decoded-read data.
NOW_US: Final = 1_704_067_200_000_000


@dataclass(frozen=True)
class Options:
    entities: int
    features: int
    samples: int
    batch_samples: int
    redis_samples: int
    block: int
    cpu: int
    redis_url: str
    seed: int


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="Measure online store reads against plain baselines; print one JSON object."
    )
    add = parser.add_argument
    add("--entities", type=int, default=100_000, help="entities loaded")
    add("--features", type=int, default=20, help="features per entity")
    add("--samples", type=int, default=100_000, help="timed single reads (embedded)")
    add("--batch-samples", type=int, default=5_000, help="timed reads of 100 (embedded)")
    add("--redis-samples", type=int, default=5_000, help="timed reads of each kind (Redis)")
    add("--block", type=int, default=1000, help="calls per block; blocks alternate")
    add("--cpu", type=int, default=-1, help="CPU to pin to (default: the last allowed)")
    add("--redis-url", default="redis://127.0.0.1:6379/15")
    add("--seed", type=int, default=20240611)
    options = Options(**vars(parser.parse_args(argv)))
    if min(options.entities, options.features, options.samples, options.block) < 1:
        parser.error("counts must be positive")
    return options


def make_rows(options: Options, rng: random.Random) -> list[tuple[str, dict[str, bytes]]]:
    names = [f"feature_{j:02d}" for j in range(options.features)]
    return [(f"user-{i:08d}", {name: rng.randbytes(rng.randint(16, 64)) for name in names})
            for i in range(options.entities)]


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    """p50 and p99 in microseconds."""
    ordered = sorted(samples_ns)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 3)

    return pick(0.50), pick(0.99)


def race(contenders: dict[str, Callable[[Any], object]], args: list[Any],
         block: int) -> dict[str, tuple[float, float]]:
    """Time each call of each contender on ``args``, alternating blocks; percentiles."""
    clock = time.perf_counter_ns
    samples: dict[str, list[int]] = {name: [] for name in contenders}
    for start in range(0, len(args), block):
        chunk = args[start: start + block]
        for name, call in contenders.items():
            out = samples[name]
            for arg in chunk:
                t0 = clock()
                call(arg)
                out.append(clock() - t0)
    return {name: percentiles(values) for name, values in samples.items()}


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


def bench_embedded(options: Options, rows: list[tuple[str, dict[str, bytes]]],
                   rng: random.Random, result: dict[str, Any]) -> None:
    root = tempfile.mkdtemp(prefix="hw-online-bench-")
    try:
        store = EmbeddedOnlineStore(root, fsync="never")
        t0 = time.perf_counter()
        for start in range(0, len(rows), LOAD_BATCH):
            store.write(NS, rows[start: start + LOAD_BATCH])
        result["embedded_load_entities_per_s"] = round(len(rows) / (time.perf_counter() - t0))
        store.compact()
        store.close()
        t0 = time.perf_counter()
        store = EmbeddedOnlineStore(root, fsync="never")
        result["embedded_reopen_s"] = round(time.perf_counter() - t0, 3)
        plain = {entity: dict(features) for entity, features in rows}
        gc.freeze()
        keys = [e for e, _ in rows]
        one = [rng.choice(keys) for _ in range(options.samples)]
        print(f"embedded: {options.samples} single reads", file=sys.stderr)
        singles = race({"online": lambda e: store.read(NS, e),
                        "dict": lambda e: plain[e].copy()}, one, options.block)
        many = [[rng.choice(keys) for _ in range(100)] for _ in range(options.batch_samples)]
        print(f"embedded: {options.batch_samples} reads of 100", file=sys.stderr)
        batches = race({"online": lambda es: store.read_many(NS, es),
                        "dict": lambda es: [plain[e].copy() for e in es]},
                       many, max(1, options.block // 10))
        assert store.read(NS, keys[0]) == rows[0][1]
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result.update({
        "online_read_p50_us": singles["online"][0],
        "online_read_p99_us": singles["online"][1],
        "dict_read_p50_us": singles["dict"][0],
        "dict_read_p99_us": singles["dict"][1],
        "online_read_p99_vs_dict": ratio(singles["online"][1], singles["dict"][1]),
        "online_read_batch100_p50_us": batches["online"][0],
        "online_read_batch100_p99_us": batches["online"][1],
        "dict_read_batch100_p99_us": batches["dict"][1],
        "online_read_batch100_p99_vs_dict": ratio(batches["online"][1], batches["dict"][1]),
    })


def decoded_features(count: int) -> list[Feature]:
    """``count`` features of one entity, as a model's feature set has them."""
    user = Entity("user", key="user")
    source = StreamSource.of("events")
    hour = Sliding.of("1h", hop="5m")
    kinds: list[tuple[str, Window]] = [("sum", hour), ("count", hour), ("mean", hour),
                                       ("max", Lifetime())]
    out = []
    for j in range(count):
        kind, window = kinds[j % len(kinds)]
        out.append(Feature.of(f"f{j:02d}_{kind}", user, source, kind,
                              column=None if kind == "count" else "amount", window=window))
    return out


def bench_decoded(options: Options, rng: random.Random, result: dict[str, Any]) -> None:
    """FeatureReader over the embedded store against a dict copy of the same floats."""
    features = decoded_features(options.features)
    entities = min(options.entities, 10_000)
    gen = np.random.default_rng(options.seed)
    root = tempfile.mkdtemp(prefix="hw-decoded-bench-")
    try:
        store = EmbeddedOnlineStore(root, fsync="never")
        last = NOW_US - gen.integers(0, HOUR_US // 12, entities)  # within the newest tile
        keys = [f"user-{i:08d}" for i in range(entities)]
        encoded: dict[str, list[bytes]] = {}
        for f in features:
            values = gen.uniform(0, 100, (entities, f.window.tiles))
            encoded[f.name] = entries(last, last // f.window.hop_us, values)
        store.write("user", [(k, {f.name: encoded[f.name][i] for f in features})
                             for i, k in enumerate(keys)])
        reader = FeatureReader(store, FeatureSet("bench", tuple(features)))
        now = NOW_US + HOUR_US // 24  # 2.5 min on: the newest tile still current
        plain = {k: reader.read({"user": k}, now) for k in keys}
        assert all(isinstance(v, float) for v in plain[keys[0]].values())
        gc.freeze()
        draws = [{"user": rng.choice(keys)} for _ in range(options.samples)]
        print(f"decoded: {options.samples} reads of {len(features)} features", file=sys.stderr)
        times = race({"decoded": lambda e: reader.read(e, now),
                      "dict": lambda e: plain[e["user"]].copy()}, draws, options.block)
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result.update({
        "decoded_features": len(features),
        "decoded_read_p50_us": times["decoded"][0],
        "decoded_read_p99_us": times["decoded"][1],
        "dict_floats_copy_p50_us": times["dict"][0],
        "decoded_read_vs_dict": ratio(times["decoded"][0], times["dict"][0]),
        "decoded_read_vs_dict_target": DECODED_TARGET,
    })


def bench_redis(options: Options, rows: list[tuple[str, dict[str, bytes]]],
                rng: random.Random, result: dict[str, Any]) -> None:
    try:
        import redis

        from headwater.store.online.redis import RedisOnlineStore

        store = RedisOnlineStore(options.redis_url, prefix=f"hwbench-{uuid.uuid4().hex[:8]}")
        store.ping()
    except Exception as exc:
        result["notes"].append(f"redis: skipped ({type(exc).__name__}: {exc})")
        return
    raw = redis.Redis.from_url(options.redis_url)
    try:
        t0 = time.perf_counter()
        for start in range(0, len(rows), LOAD_BATCH):
            store.write(NS, rows[start: start + LOAD_BATCH])
        result["redis_load_entities_per_s"] = round(len(rows) / (time.perf_counter() - t0))
        keys = [e for e, _ in rows]
        one = [rng.choice(keys) for _ in range(options.redis_samples)]
        key = store._entity  # the same key names, for the baseline

        def pipeline(entities: list[str]) -> list[Any]:
            pipe = raw.pipeline(transaction=False)
            for e in entities:
                pipe.hgetall(key(NS, e))
            return pipe.execute()

        print(f"redis: {options.redis_samples} single reads", file=sys.stderr)
        singles = race({"online": lambda e: store.read(NS, e),
                        "hgetall": lambda e: raw.hgetall(key(NS, e))}, one, options.block)
        many = [[rng.choice(keys) for _ in range(100)]
                for _ in range(max(1, options.redis_samples // 5))]
        print(f"redis: {len(many)} reads of 100", file=sys.stderr)
        batches = race({"online": lambda es: store.read_many(NS, es), "pipeline": pipeline},
                       many, max(1, options.block // 10))
        assert store.read(NS, keys[0]) == rows[0][1]
    finally:
        store.destroy()
        store.close()
        raw.close()
    result.update({
        "redis_read_p50_us": singles["online"][0],
        "redis_read_p99_us": singles["online"][1],
        "redis_hgetall_p99_us": singles["hgetall"][1],
        "redis_read_p99_vs_hgetall": ratio(singles["online"][1], singles["hgetall"][1]),
        "redis_read_batch100_p50_us": batches["online"][0],
        "redis_read_batch100_p99_us": batches["online"][1],
        "redis_pipeline_batch100_p99_us": batches["pipeline"][1],
        "redis_read_batch100_p99_vs_pipeline": ratio(batches["online"][1],
                                                     batches["pipeline"][1]),
    })


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if options.cpu < 0 else options.cpu
    os.sched_setaffinity(0, {cpu})
    rng = random.Random(options.seed)
    started = time.perf_counter()
    result: dict[str, Any] = dict.fromkeys([
        "online_read_p50_us", "online_read_p99_us", "online_read_batch100_p99_us",
        "redis_read_p99_us", "redis_read_batch100_p99_us",
    ])
    result["notes"] = []
    print(f"generating {options.entities} entities x {options.features} features",
          file=sys.stderr)
    rows = make_rows(options, rng)
    bench_embedded(options, rows, rng, result)
    bench_decoded(options, rng, result)
    bench_redis(options, rows, rng, result)
    result["targets"] = TARGETS
    result["meets_targets"] = all(
        result.get(name) is not None and result[name] <= limit for name, limit in TARGETS.items()
    )
    result["setup"] = {
        "entities": options.entities, "features": options.features, "blob_bytes": "16-64",
        "samples": options.samples, "batch_samples": options.batch_samples,
        "redis_samples": options.redis_samples, "pinned_cpu": cpu,
        "python": platform.python_version(), "machine": platform.machine(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(), "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
