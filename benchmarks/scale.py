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

Usage::

    python benchmarks/scale.py                  # 20 M rows: a few minutes
    python benchmarks/scale.py --rows 2000000   # a quick run
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

from headwater.features.definitions import Entity, Feature, StreamSource
from headwater.features.pointintime import Queries, Sources, point_in_time
from headwater.features.windows import Sliding
from headwater.store.history import FeatureHistory

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


#: Every figure: a function of the arguments returning its figures.
FIGURES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "pit_20m_peak_rss_mb": pit_20m_peak_rss_mb,
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
