"""Benchmark of point-in-time joins against DuckDB's ASOF JOIN, in the same run.

Prints one JSON object to stdout (progress goes to stderr).

Workload: ``--labels`` label rows (entity, time) joined to ``--events`` history rows of
``--entities`` entities over ``--days`` days. Entity activity is skewed (lognormal
weights, sigma 1: the busiest entities have ~10x the median's events), event times
follow a daily cycle (busier in the afternoon), append times lag event times by a
lognormal delay (~0.4 s typical, minutes in the tail), and label rows pick entities with
the same weights at uniform times. Entity keys are strings (``u123``).

Contenders, each run ``--repeats`` times in rotated order, best (minimum) wall time kept:

- ``pit_seconds``: ``point_in_time`` of ``last(amount)`` over a lifetime window, as of
  event time: the latest event at or before each label's time, the closest like-for-like
  to an ASOF join;
- ``pit_sliding_seconds``: ``point_in_time`` of ``sum(amount)`` over a 1-day window
  sliding by 1 hour (24 tiles);
- ``duckdb_asof_seconds``: ``labels ASOF LEFT JOIN events ON entity = entity AND
  t >= event_time``, with the output in label order (``ORDER BY`` the label's row
  number), as ``point_in_time`` returns it, fetched as an Arrow table; DuckDB
  with ``threads=1`` (fair: the join here is single-threaded NumPy) and with its default
  thread count. ``duckdb_asof_unordered_seconds``: the same without the ``ORDER BY``.

``pit_vs_duckdb = pit_seconds / duckdb_asof_seconds`` (threads=1): below 1 is faster than
DuckDB. ``asof_agreement`` is the fraction of label rows where both give the same value
(ties in event time may be broken differently: DuckDB has no offset order).

With ``--history`` (the default) the same events also go through
:class:`~headwater.store.history.FeatureHistory` in a temporary directory: written as
the feature engine would (16 tasks, checkpoints of ``--checkpoint-rows`` rows), scanned
whole, compacted, scanned again, and ``values_at`` end to end for the lifetime ``last``.

Threads are pinned to one (``OMP_NUM_THREADS`` and friends, Arrow's CPU pool) before
NumPy and Arrow are imported.

Needs ``duckdb`` (the baseline) besides Headwater. Usage::

    .venv/bin/python benchmarks/features_pit.py                  # 10M x 1M (minutes)
    .venv/bin/python benchmarks/features_pit.py --events 1000000 --labels 100000
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

from headwater.features.definitions import Entity, Feature, StreamSource
from headwater.features.pointintime import Queries, Sources, point_in_time
from headwater.features.windows import Sliding
from headwater.store.history import FeatureHistory

DAY = 86_400_000_000
START = 1_717_200_000_000_000  # 2024-06-01T00:00Z
PARTITIONS = 16


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def generate(args: argparse.Namespace) -> tuple[pa.Table, pa.Table]:
    """History rows in log order (by append time) and label rows (entity, t, rid)."""
    rng = np.random.default_rng(args.seed)
    weight = rng.lognormal(0.0, 1.0, args.entities)
    weight /= weight.sum()
    entity = rng.choice(args.entities, args.events, p=weight)
    day = rng.integers(0, args.days, args.events)
    time_of_day = (rng.beta(2.5, 2.0, args.events) * DAY).astype(np.int64)
    tau = START + day * DAY + time_of_day
    alpha = tau + rng.lognormal(13.0, 1.5, args.events).astype(np.int64)
    order = np.argsort(alpha, kind="stable")
    entity, tau, alpha = entity[order], tau[order], alpha[order]
    partition = (entity % PARTITIONS).astype(np.int32)
    offset = np.empty(args.events, np.int64)  # per partition, in append order
    for p in range(PARTITIONS):
        mine = partition == p
        offset[mine] = np.arange(int(mine.sum()))
    events = pa.table({
        "_entity": pa.array(np.char.add("u", entity.astype("U7")).astype(object), pa.string()),
        "_event_time": tau, "_append_time": alpha, "_partition": partition, "_offset": offset,
        "amount": np.round(rng.lognormal(3.0, 1.0, args.events), 2),
    })
    label_entity = rng.choice(args.entities, args.labels, p=weight)
    labels = pa.table({
        "_entity": pa.array(np.char.add("u", label_entity.astype("U7")).astype(object),
                            pa.string()),
        "t": START + rng.integers(0, args.days * DAY, args.labels),
        "rid": np.arange(args.labels),
    })
    return events, labels


def best_of(repeats: int, contenders: dict[str, Callable[[], Any]]) -> dict[str, float]:
    """Minimum wall time of each contender over ``repeats`` rotated rounds."""
    best = {name: float("inf") for name in contenders}
    names = list(contenders)
    for round_ in range(repeats):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            begin = time.perf_counter()
            contenders[name]()
            seconds = time.perf_counter() - begin
            best[name] = min(best[name], seconds)
            log(f"  round {round_}: {name} {seconds:.2f}s")
    return best


def duckdb_asof(events: pa.Table, labels: pa.Table, threads: int | None,
                ordered: bool) -> Callable[[], pa.Table]:
    import duckdb

    con = duckdb.connect(config={} if threads is None else {"threads": threads})
    con.register("events", events)
    con.register("labels", labels)
    sql = ("SELECT h.amount FROM labels l ASOF LEFT JOIN events h "
           "ON l._entity = h._entity AND l.t >= h._event_time"
           + (" ORDER BY l.rid" if ordered else ""))

    def run() -> pa.Table:
        return con.sql(sql).to_arrow_table()

    return run


def history_figures(events: pa.Table, labels: pa.Table, feature: Feature,
                    args: argparse.Namespace) -> dict[str, float]:
    """Write, scan, compact and time-travel through a FeatureHistory."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as root:
        history = FeatureHistory(root)
        begin = time.perf_counter()
        partition = np.asarray(events.column("_partition"))
        for p in range(PARTITIONS):
            mine = events.filter(pa.array(partition == p))
            for checkpoint, first in enumerate(range(0, mine.num_rows, args.checkpoint_rows)):
                history.write("payments", mine.slice(first, args.checkpoint_rows),
                              checkpoint=checkpoint, task=f"payments-{p}")
        out["history_write_seconds"] = time.perf_counter() - begin
        files = len(list(Path(root).rglob("*.parquet")))
        out["history_files_before_compaction"] = files
        log(f"history: written in {out['history_write_seconds']:.1f}s, {files} files")
        scan = {"scan": lambda: history.scan("payments", columns=["amount"])}
        out["history_scan_seconds"] = best_of(args.repeats, scan)["scan"]
        begin = time.perf_counter()
        history.compact("payments")
        out["history_compact_seconds"] = time.perf_counter() - begin
        out["history_scan_compacted_seconds"] = best_of(args.repeats, scan)["scan"]
        queries = Queries(labels.column("_entity").combine_chunks(),
                          np.asarray(labels.column("t")))
        begin = time.perf_counter()
        history.values_at([feature], "payments", queries)
        out["history_values_at_seconds"] = time.perf_counter() - begin
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-rows", type=int, default=200_000)
    parser.add_argument("--history", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    log(f"generating {args.events:,} events and {args.labels:,} labels")
    events, labels = generate(args)
    user, payments = Entity("user", key="user"), StreamSource.of("payments")
    last = Feature.of("last_amount", user, payments, "last", column="amount")
    sliding = Feature.of("amount_1d", user, payments, "sum", column="amount",
                         window=Sliding.of("1d", hop="1h"))
    source = Sources(events, "_entity", "_event_time")
    queries = Queries(labels.column("_entity").combine_chunks(), np.asarray(labels.column("t")))

    results: dict[str, Any] = {}
    asof = duckdb_asof(events, labels, 1, ordered=True)
    log("ASOF JOIN (DuckDB) and point_in_time(last, lifetime)")
    best = best_of(args.repeats, {
        "duckdb_asof_seconds": asof,
        "duckdb_asof_default_threads_seconds": duckdb_asof(events, labels, None, ordered=True),
        "duckdb_asof_unordered_seconds": duckdb_asof(events, labels, 1, ordered=False),
        "pit_seconds": lambda: point_in_time([last], source, queries),
    })
    results.update(best)
    got = point_in_time([last], source, queries).column("last_amount").to_numpy()
    want = asof().column("amount").to_numpy()  # nulls become NaN in both
    results["asof_agreement"] = float(np.mean((got == want) | (np.isnan(got) & np.isnan(want))))

    log("point_in_time(sum, 1d sliding by 1h)")
    results["pit_sliding_seconds"] = best_of(args.repeats, {
        "pit_sliding_seconds": lambda: point_in_time([sliding], source, queries),
    })["pit_sliding_seconds"]

    results["pit_vs_duckdb"] = results["pit_seconds"] / results["duckdb_asof_seconds"]
    results["pit_vs_duckdb_default_threads"] = (
        results["pit_seconds"] / results["duckdb_asof_default_threads_seconds"])
    results["pit_sliding_vs_duckdb"] = (
        results["pit_sliding_seconds"] / results["duckdb_asof_seconds"])
    if args.history:
        results.update(history_figures(events, labels, last, args))

    import duckdb

    print(json.dumps({
        "workload": {"events": args.events, "labels": args.labels, "entities": args.entities,
                     "days": args.days, "repeats": args.repeats, "seed": args.seed},
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()},
        "target": {"pit_vs_duckdb": 1.2},
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "pyarrow": pa.__version__, "duckdb": duckdb.__version__,
                    "cpus": os.cpu_count(), "platform": platform.platform()},
    }, indent=2))


if __name__ == "__main__":
    main()
