"""Benchmark of the model store's lineage queries, as ratios against naive baselines.

Prints one JSON object to stdout (progress goes to stderr). The store is filled with
``--versions`` small versions of one model (one file each, registered through
:meth:`ModelRegistry.register`, artifacts and all): a main chain of half of them (each
version the parent of the next, as continual learning makes them) and branches of 1 to
8 versions off random earlier versions, some of them off other branches. ``champion``
is moved ``--moves`` times along the way. Then, on SQLite (``fsync="never"``: the
queries, not the disk) and on PostgreSQL when ``--postgres-url`` answers:

- **ancestors** of a random version (the whole parent chain, one recursive CTE) against
  a naive walk issuing one query per hop; and ``ancestors(limit=10)``;
- **descendants** of a random version (one recursive CTE over the parent index) against
  a naive breadth-first search issuing one query per version for its children and one
  for its record;
- **alias lookup** (``get(model, "champion")``) against one raw SQL join on a separate
  connection that decodes nothing (the cost of the registry layer);
- **lineage tree** of the whole model against fetching each version by its own query.

Every contender decodes the same records (msgspec), so the ratios measure round trips
and query plans, not decoding. Times are ``time.perf_counter_ns`` per call after a
warm-up; p50 and p99 over ``--samples`` calls (``--baseline-samples`` for the naive
ones, which are slow); a ratio compares both sides on the same random versions (the
registry's calls are timed again on the baseline's subset). A ``*_speedup`` ratio is
baseline time / registry time: above 1 means faster than the baseline.
``lineage_query_p99_ms`` is the larger p99 of ancestors and descendants.

Usage::

    .venv/bin/python benchmarks/registry.py                  # 10k versions (15-20 min on 2 cores)
    .venv/bin/python benchmarks/registry.py --versions 2000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import msgspec

from headwater.errors import BackendError, MissingExtraError
from headwater.registry import (
    Artifact,
    Lineage,
    LocalArtifacts,
    ModelRegistry,
    ModelVersion,
    SqliteRegistryBackend,
)
from headwater.time import ManualClock

MODEL = "bench"
COLUMNS = "model, version, sha256, files, bytes, status, status_reason, status_at, lineage"
LINEAGE = msgspec.json.Decoder(Lineage)
Row = tuple[Any, ...]
Query = Callable[[str, Sequence[object]], list[Row]]


def shape(versions: int, rng: random.Random) -> list[int | None]:
    """The parent of each version 1..n (index 0 unused): a chain, then branches."""
    parents: list[int | None] = [None, None]
    chain = versions // 2
    parents.extend(range(1, chain))
    while len(parents) <= versions:
        parent: int | None = rng.randrange(1, len(parents))
        for _ in range(rng.randint(1, 8)):
            if len(parents) > versions:
                break
            parents.append(parent)
            parent = len(parents) - 1
    return parents


def fill(registry: ModelRegistry, parents: list[int | None], moves: int, work: Path) -> float:
    """Register every version (and move champion now and then); return versions per second."""
    source = work / "source"
    source.mkdir(parents=True, exist_ok=True)
    every = max(1, (len(parents) - 1) // moves)
    started = time.perf_counter()
    for number in range(1, len(parents)):
        (source / "weights.bin").write_bytes(number.to_bytes(8, "little"))
        registry.register(MODEL, source, lineage=Lineage(
            parent=parents[number], metrics={"logloss": 0.3 + number % 7 / 100, "auc": 0.8},
            hyperparameters={"lr": 0.01, "l2": 1e-4}))
        if number % every == 0:
            registry.promote(MODEL, number, actor="bench", reason=f"step {number}")
        if number % 1000 == 0:
            print(f"  registered {number}", file=sys.stderr)
    return (len(parents) - 1) / (time.perf_counter() - started)


def decode(row: Row) -> ModelVersion:
    model, version, sha256, files, size, status, reason, status_at, lineage = row
    return ModelVersion(model=model, version=int(version),
                        artifact=Artifact(sha256=sha256, files=int(files), bytes=int(size)),
                        lineage=LINEAGE.decode(lineage), status=status, status_reason=reason,
                        status_at=int(status_at))


def naive_ancestors(query: Query, number: int) -> list[ModelVersion]:
    chain: list[ModelVersion] = []
    current = decode(query(f"SELECT {COLUMNS} FROM versions WHERE model = ? AND version = ?",
                           (MODEL, number))[0])
    while current.parent is not None:
        current = decode(query(f"SELECT {COLUMNS} FROM versions WHERE model = ? AND "
                               "version = ?", (MODEL, current.parent))[0])
        chain.append(current)
    return chain


def naive_descendants(query: Query, number: int) -> list[ModelVersion]:
    found: list[ModelVersion] = []
    pending = [number]
    while pending:
        children = query("SELECT version FROM versions WHERE model = ? AND parent = ?",
                         (MODEL, pending.pop()))
        for (child,) in children:
            found.append(decode(query(f"SELECT {COLUMNS} FROM versions WHERE model = ? "
                                      "AND version = ?", (MODEL, child))[0]))
            pending.append(int(child))
    return sorted(found, key=lambda v: v.version)


def naive_tree(query: Query) -> list[ModelVersion]:
    numbers = query("SELECT version FROM versions WHERE model = ?", (MODEL,))
    return [decode(query(f"SELECT {COLUMNS} FROM versions WHERE model = ? AND version = ?",
                         (MODEL, n))[0]) for (n,) in numbers]


def raw_alias(query: Query) -> list[Row]:
    return query("SELECT v.version, v.lineage FROM aliases a JOIN versions v ON "
                 "v.model = a.model AND v.version = a.version WHERE a.model = ? AND "
                 "a.alias = ?", (MODEL, "champion"))


def timed(call: Callable[[int], object], numbers: Sequence[int]) -> tuple[list[int], float]:
    """Nanoseconds per call, and the mean number of records the calls returned."""
    for number in numbers[:5]:
        call(number)  # warm-up: caches, prepared statements
    gc.collect()
    samples, rows = [], 0
    for number in numbers:
        started = time.perf_counter_ns()
        result = call(number)
        samples.append(time.perf_counter_ns() - started)
        rows += len(result) if isinstance(result, list) else 1
    return samples, rows / len(numbers)


def summary(timing: tuple[list[int], float]) -> dict[str, float]:
    samples, rows = timing
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return {"p50_ms": round(pick(0.50), 4), "p99_ms": round(pick(0.99), 4),
            "mean_ms": round(sum(ordered) / len(ordered) / 1e6, 4), "samples": len(ordered),
            "mean_records": round(rows, 1)}


def compare(name: str, ours: Callable[[int], object], naive: Callable[[int], object],
            numbers: list[int], baseline_samples: int) -> dict[str, Any]:
    print(f"  {name}", file=sys.stderr)
    samples, rows = timed(ours, numbers)
    base = summary(timed(naive, numbers[:baseline_samples]))
    # the ratios compare the same versions: the first baseline_samples of ours
    same = summary(timed(ours, numbers[:baseline_samples]))
    return {name: summary((samples, rows)), f"{name}_naive": base,
            f"{name}_speedup_p50": round(base["p50_ms"] / same["p50_ms"], 2),
            f"{name}_speedup_mean": round(base["mean_ms"] / same["mean_ms"], 2)}


def measure(registry: ModelRegistry, query: Query, parents: list[int | None],
            args: argparse.Namespace, moves: int, work: Path) -> dict[str, Any]:
    rate = fill(registry, parents, moves, work)
    rng = random.Random(7)
    numbers = [rng.randrange(1, len(parents)) for _ in range(args.samples)]
    depth = {n: len(naive_ancestors(query, n)) for n in numbers[:20]}
    assert all(len(registry.ancestors(MODEL, n)) == d for n, d in depth.items())
    result: dict[str, Any] = {"register_per_s": round(rate, 1)}
    result |= compare("ancestors", lambda n: registry.ancestors(MODEL, n),
                      lambda n: naive_ancestors(query, n), numbers, args.baseline_samples)
    result |= compare("descendants", lambda n: registry.descendants(MODEL, n),
                      lambda n: naive_descendants(query, n), numbers, args.baseline_samples)
    print("  alias lookup, ancestors(limit=10), lineage tree", file=sys.stderr)
    result["ancestors_limit_10"] = summary(timed(
        lambda n: registry.ancestors(MODEL, n, limit=10), numbers))
    result["alias_lookup"] = summary(timed(lambda n: registry.get(MODEL, "champion"), numbers))
    result["alias_lookup_raw_sql"] = summary(timed(lambda n: raw_alias(query), numbers))
    result["alias_lookup_vs_raw_sql_p50"] = round(
        result["alias_lookup_raw_sql"]["p50_ms"] / result["alias_lookup"]["p50_ms"], 2)
    trees = numbers[:args.tree_samples]
    result["lineage_tree"] = summary(timed(
        lambda n: list(registry.lineage_tree(MODEL).versions.values()), trees))
    result["lineage_tree_naive"] = summary(timed(lambda n: naive_tree(query), trees[:6]))
    result["lineage_tree_speedup_p50"] = round(
        result["lineage_tree_naive"]["p50_ms"] / result["lineage_tree"]["p50_ms"], 2)
    result["lineage_query_p99_ms"] = max(result["ancestors"]["p99_ms"],
                                         result["descendants"]["p99_ms"])
    return result


def sqlite_run(parents: list[int | None], args: argparse.Namespace, work: Path) -> dict[str, Any]:
    print("sqlite", file=sys.stderr)
    backend = SqliteRegistryBackend(work / "registry.db", synchronous="normal")
    registry = ModelRegistry(backend, LocalArtifacts(work / "artifacts", fsync="never"),
                             clock=ManualClock(1_700_000_000_000_000))
    raw = sqlite3.connect(work / "registry.db")
    try:
        return measure(registry, lambda sql, params: raw.execute(sql, params).fetchall(),
                       parents, args, args.moves, work)
    finally:
        raw.close()
        registry.close()


def postgres_run(parents: list[int | None], args: argparse.Namespace,
                 work: Path) -> dict[str, Any]:
    import psycopg

    from headwater.registry.postgres import PostgresRegistryBackend

    print("postgres", file=sys.stderr)
    schema = f"hwbench_{uuid.uuid4().hex[:12]}"
    backend = PostgresRegistryBackend(args.postgres_url, schema=schema, connect_timeout_s=3)
    registry = ModelRegistry(backend, LocalArtifacts(work / "artifacts", fsync="never"),
                             clock=ManualClock(1_700_000_000_000_000))
    raw = psycopg.connect(args.postgres_url, autocommit=True)
    raw.execute(f'SET search_path TO "{schema}"')
    try:
        return measure(registry, lambda sql, params: raw.execute(
            sql.replace("?", "%s"), params).fetchall(), parents, args, args.moves, work)
    finally:
        registry.close()
        raw.execute(f'DROP SCHEMA "{schema}" CASCADE')
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--moves", type=int, default=200, help="champion moves while filling")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--baseline-samples", type=int, default=60)
    parser.add_argument("--tree-samples", type=int, default=20)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    parents = shape(args.versions, random.Random(42))
    depths = [0] * len(parents)
    for number in range(2, len(parents)):
        parent = parents[number]
        depths[number] = 0 if parent is None else depths[parent] + 1
    notes: list[str] = []
    report: dict[str, Any] = {
        "benchmark": "registry",
        "versions": args.versions,
        "shape": {"main_chain": args.versions // 2, "max_depth": max(depths),
                  "mean_depth": round(sum(depths) / len(depths), 1),
                  "leaves": len(set(range(1, len(parents))) - set(parents))},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "sqlite": sqlite3.sqlite_version,
                    "threads": {v: os.environ[v] for v in ("OMP_NUM_THREADS",)}},
        "durability": "sqlite synchronous=normal, artifacts not fsynced (queries, not the disk)",
    }
    with tempfile.TemporaryDirectory() as tmp:
        report["sqlite"] = sqlite_run(parents, args, Path(tmp) / "sqlite")
        report["postgres"] = None
        if not args.no_postgres:
            try:
                report["postgres"] = postgres_run(parents, args, Path(tmp) / "postgres")
            except (BackendError, MissingExtraError, ImportError) as exc:
                notes.append(f"postgres skipped: {exc}")
    report["lineage_query_p99_ms"] = report["sqlite"]["lineage_query_p99_ms"]
    report["notes"] = notes
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
