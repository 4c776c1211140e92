"""Benchmark of the event log, as ratios against baselines run in the same script.

Prints one JSON object to stdout (progress goes to stderr). Absolute rates on a small
shared machine are noise, so every headline figure is a ratio against plain pyarrow
doing the same work in the same run:

- **append**: batches of ``--batch-size`` events (a string key drawn from ``--keys``
  distinct values, an event time, five float64 fields) appended with ``Log.append`` to
  the embedded backend with ``fsync="never"`` (the log, not the disk), to a
  1-partition and a 4-partition topic; against ``pa.ipc.new_file`` writing the same
  batches to one Arrow IPC file on a ``pa.OSFile``.
- **replay**: ``Log.replay`` from offset 0 by a fresh ``Log`` over the same directory
  (a separate reader; opening it is timed), touching each batch's ``num_rows``;
  against ``pa.ipc.open_file`` on ``pa.memory_map`` and ``get_batch`` for every batch.
- **durable appends**: the latency of single-event appends (a list of one dict) with
  ``fsync="group"`` from ``--durable-threads`` threads sharing a 1-partition topic (the
  fdatasync calls are counted to give the appends sharing each group commit), and with
  ``fsync="always"`` from one thread, interleaved in chunks with the bare baseline of a
  1 KiB ``os.write`` and ``os.fdatasync`` (``..._vs_raw_fdatasync`` is a latency ratio:
  above 1 means slower than the bare disk).
- **servers**: append and consume rates on Redis (``--redis-url``) and on librdkafka's
  mock cluster (``kafka+mock://``), best of ``--server-rounds``; consume is a new
  consumer group polling until it has every event (joining the group included). Redis
  appends have a baseline, alternating with them round by round: redis-py ``XADD`` of
  each batch's Arrow IPC message (``RecordBatch.serialize``, timed too) to a stream on
  its own connection (``redis_append_vs_raw_xadd``: medians of the rounds' wall times).
  A backend that is not importable, a server that does not answer or a consumer that
  stalls gives ``null`` and an entry in ``notes``.

Method. The page-cache writeback of one run slows the writes of the next, so nothing
is measured once. An untimed warm-up round on a few batches first loads code and
caches. Then each of ``--rounds`` rounds writes into fresh directories: the contenders
(raw IPC, 1 partition, 4 partitions) append in an order rotated by the round, so each
takes each position once over three rounds, with ``os.sync()`` before every append;
then each replays ``--replay-repeats`` times (a replay is milliseconds, so one sample
is too few), again in rotated order; the round's files are deleted and synced away.
All batches are generated before any timing. Each contender's best (minimum) wall time
(``time.perf_counter``) and, separately, best CPU time (``time.process_time``) are
kept; ``*_vs_raw_ipc`` ratios are wall-based and ``*_vs_raw_ipc_cpu`` CPU-based;
``*_vs_raw_ipc_median`` compares the medians of the wall times instead. A ratio above
1 means faster than the baseline. The load average before and after is
recorded: other work on the machine shows there first.

Usage::

    .venv/bin/python benchmarks/log.py                 # 10M events (a few minutes)
    .venv/bin/python benchmarks/log.py --events 1000000
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar, cast
from unittest import mock

# Pin the native thread pools to one thread each before numpy and pyarrow load: the
# machine is small and shared, and both sides of every ratio should run alike.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.config import FsyncPolicy
from headwater.log import Log, LogBackend, Schema
from headwater.log.embedded import EmbeddedBackend

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

T = TypeVar("T")

TOPIC: Final = "events"
FLOAT_FIELDS: Final = tuple(f"x{i}" for i in range(5))
SCHEMA: Final = Schema.of(
    {"key": "string", "ts": "timestamp", **dict.fromkeys(FLOAT_FIELDS, "float64")},
    key="key",
    event_time="ts",
)
APPEND_FSYNC: Final[FsyncPolicy] = "never"
#: The write of the durable-append baseline: about one event's frame.
RAW_DURABLE_WRITE_BYTES: Final = 1024
#: 2024-01-01T00:00:00Z in microseconds: where the generated event times start.
START_US: Final = 1_704_067_200_000_000
TARGETS: Final = {
    "append_vs_raw_ipc": 0.7,
    "redis_append_vs_raw_xadd": 0.7,
    "replay_vs_raw_ipc": 0.5,
    "replay_events_per_s": 10_000_000,
}


@dataclass(frozen=True)
class Options:
    events: int
    batch_size: int
    keys: int
    partitions: int
    rounds: int
    replay_repeats: int
    max_seconds: float
    durable_threads: int
    durable_appends: int
    group_commit_ms: float
    server_events: int
    server_rounds: int
    redis_url: str
    kafka_url: str
    workdir: str | None
    seed: int


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description="Measure the event log against plain Arrow IPC; print one JSON object."
    )
    add = parser.add_argument
    add("--events", type=int, default=10_000_000, help="events appended and replayed")
    add("--batch-size", type=int, default=10_000, help="events per append")
    add("--keys", type=int, default=100_000, help="distinct keys")
    add("--partitions", type=int, default=4, help="partitions of the multi-partition topic")
    add("--rounds", type=int, default=6,
        help="interleaved rounds (a multiple of 3 is balanced); the best of each is kept")
    add("--replay-repeats", type=int, default=5,
        help="replays of each contender per round (a replay takes milliseconds)")
    add("--max-seconds", type=float, default=600.0,
        help="start no further round once a round would end past this (one always runs)")
    add("--durable-threads", type=int, default=4, help="threads of the group-commit test")
    add("--durable-appends", type=int, default=2000,
        help="single-event appends per thread in the durable tests")
    add("--group-commit-ms", type=float, default=2.0, help="group commit interval")
    add("--server-events", type=int, default=200_000, help="events for Redis and Kafka")
    add("--server-rounds", type=int, default=3, help="rounds for Redis and Kafka (best kept)")
    add("--redis-url", default="redis://127.0.0.1:6379/15")
    add("--kafka-url", default="kafka+mock://")
    add("--workdir", default=None, help="where temporary data goes (default: the temp dir)")
    add("--seed", type=int, default=20240101)
    args = parser.parse_args(argv)
    options = Options(**vars(args))
    if options.events < options.batch_size or options.batch_size < 1:
        parser.error("--events must be at least --batch-size, which must be positive")
    if min(options.rounds, options.replay_repeats, options.server_rounds) < 1:
        parser.error("--rounds, --replay-repeats and --server-rounds need at least 1")
    if options.partitions < 2:
        parser.error("--partitions needs at least 2")
    return options


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ timing


@dataclass(frozen=True)
class Sample:
    """One timed run: wall and CPU seconds."""

    wall: float
    cpu: float


def timed(run: Callable[[], T]) -> tuple[Sample, T]:
    """Run ``run`` once, after a full collection, and time it."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    out = run()
    return Sample(time.perf_counter() - wall, time.process_time() - cpu), out


def best(samples: Sequence[Sample]) -> Sample:
    """The best wall time and the best CPU time (possibly of different runs)."""
    return Sample(min(s.wall for s in samples), min(s.cpu for s in samples))


def rate(events: int, seconds: float) -> float:
    return events / seconds if seconds > 0 else math.inf


def percentile_us(latencies_ns: npt.NDArray[np.int64], q: float) -> float:
    return round(float(np.percentile(latencies_ns, q)) / 1000, 1)


# ------------------------------------------------------------------ data


def make_batches(options: Options) -> list[pa.RecordBatch]:
    """Every batch of the workload, built before anything is timed."""
    rng = np.random.default_rng(options.seed)
    keys = pa.array([f"user-{i:06d}" for i in range(options.keys)], pa.string())
    schema = SCHEMA.arrow_schema()
    batches = []
    for first in range(0, options.events, options.batch_size):
        n = min(options.batch_size, options.events - first)
        # Event times 100 µs apart with up to 1 ms of disorder, as a real source has.
        times = START_US + 100 * np.arange(first, first + n) - rng.integers(0, 1000, n)
        columns = [
            keys.take(pa.array(rng.integers(0, options.keys, n))),
            pa.array(times).view(schema.field("ts").type),
            *(pa.array(rng.standard_normal(n)) for _ in FLOAT_FIELDS),
        ]
        batches.append(pa.RecordBatch.from_arrays(columns, schema=schema))
    return batches


def single_events(options: Options, count: int, stream: int) -> list[list[dict[str, Any]]]:
    """``count`` one-event appends (lists of one dict), as a producer sends them."""
    rng = np.random.default_rng([options.seed, stream])
    keys = rng.integers(0, options.keys, count).tolist()
    values = rng.standard_normal((count, len(FLOAT_FIELDS))).tolist()
    return [
        [{"key": f"user-{k:06d}", "ts": START_US + i, **dict(zip(FLOAT_FIELDS, row, strict=True))}]
        for i, (k, row) in enumerate(zip(keys, values, strict=True))
    ]


# ------------------------------------------------------------------ contenders


def raw_append(path: Path, batches: Sequence[pa.RecordBatch]) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, batches[0].schema) as writer:
        for batch in batches:
            writer.write_batch(batch)


def raw_replay(path: Path) -> int:
    reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
    rows = 0
    for i in range(reader.num_record_batches):
        rows += reader.get_batch(i).num_rows
    return rows


def log_append(root: Path, batches: Sequence[pa.RecordBatch]) -> None:
    with Log(EmbeddedBackend(root, fsync=APPEND_FSYNC)) as log:
        for batch in batches:
            log.append(TOPIC, batch)


def log_replay(root: Path) -> int:
    with Log(EmbeddedBackend(root, fsync=APPEND_FSYNC)) as log:
        rows = 0
        for fetched in log.replay(TOPIC):
            rows += fetched.batch.num_rows
        return rows


def create_topic(root: Path, partitions: int) -> None:
    with Log(EmbeddedBackend(root, fsync=APPEND_FSYNC)) as log:
        log.create_topic(TOPIC, SCHEMA, partitions=partitions)


# ------------------------------------------------------------------ embedded: append, replay


def rotated(names: Sequence[str], turn: int) -> list[str]:
    k = turn % len(names)
    return [*names[k:], *names[:k]]


def disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*.seg"))


def run_round(turn: int, label: str, options: Options, batches: Sequence[pa.RecordBatch],
              here: Path, appends: dict[str, list[Sample]], replays: dict[str, list[Sample]]
              ) -> dict[str, int]:
    """One round in ``here``: every contender appends, then replays ``--replay-repeats``
    times, in an order rotated by ``turn``. Returns the bytes each one stored."""
    contenders = list(appends)
    paths = {name: here / ("raw.arrow" if name == "raw" else name) for name in contenders}
    create_topic(paths["p1"], 1)
    create_topic(paths[contenders[2]], options.partitions)
    events = sum(b.num_rows for b in batches)
    for name in rotated(contenders, turn):
        os.sync()
        append = raw_append if name == "raw" else log_append
        sample, _ = timed(partial(append, paths[name], batches))
        appends[name].append(sample)
        say(f"{label}: append {name:>4}  {sample.wall:7.3f} s wall "
            f"{sample.cpu:7.3f} s cpu  {rate(events, sample.wall):13,.0f} ev/s")
    os.sync()
    for repeat in range(options.replay_repeats):
        for name in rotated(contenders, turn + repeat):
            replay = raw_replay if name == "raw" else log_replay
            sample, rows = timed(partial(replay, paths[name]))
            if rows != events:
                raise RuntimeError(f"{name} replayed {rows} events, expected {events}")
            replays[name].append(sample)
    for name in contenders:
        fastest = best(replays[name][-options.replay_repeats:])
        say(f"{label}: replay {name:>4}  {fastest.wall:7.3f} s wall "
            f"{fastest.cpu:7.3f} s cpu  {rate(events, fastest.wall):13,.0f} ev/s "
            f"(best of {options.replay_repeats})")
    return {name: disk_bytes(path) for name, path in paths.items()}


def measure_embedded(options: Options, batches: Sequence[pa.RecordBatch], workdir: Path,
                     notes: list[str]) -> dict[str, Any]:
    """Append and replay: raw IPC against 1 and N partitions, interleaved over rounds."""
    contenders = ["raw", "p1", f"p{options.partitions}"]
    appends: dict[str, list[Sample]] = {name: [] for name in contenders}
    replays: dict[str, list[Sample]] = {name: [] for name in contenders}
    # A first, untimed round on a few batches loads code and warms caches.
    here = Path(tempfile.mkdtemp(prefix="warm-up-", dir=workdir))
    try:
        run_round(0, "warm-up", replace(options, replay_repeats=1), batches[:20], here,
                  {name: [] for name in contenders}, {name: [] for name in contenders})
    finally:
        shutil.rmtree(here, ignore_errors=True)
    started = time.perf_counter()
    rounds = 0
    stored: dict[str, int] = {}
    for turn in range(options.rounds):
        round_started = time.perf_counter()
        here = Path(tempfile.mkdtemp(prefix=f"round{turn}-", dir=workdir))
        try:
            stored = run_round(turn, f"round {turn}", options, batches, here, appends, replays)
        finally:
            shutil.rmtree(here, ignore_errors=True)
            os.sync()
        rounds += 1
        now = time.perf_counter()
        if turn + 1 < options.rounds and now - started + now - round_started > options.max_seconds:
            notes.append(f"stopped after {rounds} of {options.rounds} rounds (--max-seconds)")
            break

    figures: dict[str, Any] = {
        "rounds": rounds,
        "replay_repeats_per_round": options.replay_repeats,
        "stored_bytes_per_event_raw_ipc": round(stored["raw"] / options.events, 1),
        "stored_bytes_per_event": round(stored["p1"] / options.events, 1),
    }
    for kind, samples in (("append", appends), ("replay", replays)):
        raw = best(samples["raw"])
        figures[f"raw_ipc_{kind}_events_per_s"] = round(rate(options.events, raw.wall))
        for name, suffix in (("p1", ""), (contenders[2], f"_{options.partitions}_partitions")):
            ours = best(samples[name])
            figures[f"{kind}_events_per_s{suffix}"] = round(rate(options.events, ours.wall))
            figures[f"{kind}_vs_raw_ipc{suffix}"] = round(raw.wall / ours.wall, 3)
            figures[f"{kind}_vs_raw_ipc_cpu{suffix}"] = round(raw.cpu / ours.cpu, 3)
            figures[f"{kind}_vs_raw_ipc_median{suffix}"] = round(
                statistics.median(s.wall for s in samples["raw"])
                / statistics.median(s.wall for s in samples[name]), 3)
    return figures


# ------------------------------------------------------------------ embedded: durable appends


def durable_log(root: Path, fsync: FsyncPolicy, group_commit_ms: float) -> Log:
    log = Log(EmbeddedBackend(root, fsync=fsync, group_commit_ms=group_commit_ms))
    log.create_topic(TOPIC, SCHEMA, partitions=1)
    return log


def append_each(log: Log, appends: Sequence[list[dict[str, Any]]],
                start: threading.Barrier | None = None) -> npt.NDArray[np.int64]:
    """Append one event at a time; the latency of each append in nanoseconds."""
    latencies = np.empty(len(appends), dtype=np.int64)
    if start is not None:
        start.wait()
    for i, events in enumerate(appends):
        t0 = time.perf_counter_ns()
        log.append(TOPIC, events)
        latencies[i] = time.perf_counter_ns() - t0
    return latencies


def write_and_fdatasync_each(path: Path, count: int) -> npt.NDArray[np.int64]:
    """The baseline of a durable append: ``count`` times a 1 KiB write (about the size
    of a one-event frame) and ``fdatasync``; the latency of each in nanoseconds."""
    latencies = np.empty(count, dtype=np.int64)
    payload = bytes(RAW_DURABLE_WRITE_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for i in range(count):
            t0 = time.perf_counter_ns()
            os.write(fd, payload)
            os.fdatasync(fd)
            latencies[i] = time.perf_counter_ns() - t0
    finally:
        os.close(fd)
    return latencies


def group_commit(options: Options, root: Path,
                 work: Sequence[Sequence[list[dict[str, Any]]]]) -> dict[str, Any]:
    """Threads appending single events concurrently to one partition, fsync "group"."""
    threads = len(work)
    with durable_log(root, "group", options.group_commit_ms) as log:
        start = threading.Barrier(threads)
        # Every fdatasync of the test is a group commit (one partition is written).
        with mock.patch.object(os, "fdatasync", wraps=os.fdatasync) as fdatasync, \
                ThreadPoolExecutor(threads) as pool:
            wall = time.perf_counter()
            futures = [pool.submit(append_each, log, w, start) for w in work]
            latencies = np.concatenate([f.result() for f in futures])
            wall = time.perf_counter() - wall
        syncs = fdatasync.call_count
    say(f"durable group: {len(latencies)} appends, {syncs} fdatasync, {wall:.2f} s, "
        f"p50 {percentile_us(latencies, 50)} µs")
    return {
        "durable_append_p50_us": percentile_us(latencies, 50),
        "durable_append_p99_us": percentile_us(latencies, 99),
        "durable_appends_per_s": round(len(latencies) / wall),
        "durable_group_appends_per_fsync": round(len(latencies) / syncs, 2) if syncs else None,
    }


def fsync_always(root: Path, appends: Sequence[list[dict[str, Any]]]) -> dict[str, Any]:
    """One thread appending single events with fsync "always", interleaved in chunks
    with the bare write-and-fdatasync baseline (the disk's latency drifts)."""
    chunks = 10
    ours: list[npt.NDArray[np.int64]] = []
    bare: list[npt.NDArray[np.int64]] = []
    with durable_log(root / "log", "always", 0.0) as log:
        for turn, chunk in enumerate(np.array_split(np.arange(len(appends)), chunks)):
            for which in rotated(["ours", "bare"], turn):
                if which == "ours":
                    ours.append(append_each(log, [appends[i] for i in chunk]))
                else:
                    bare.append(write_and_fdatasync_each(root / "bare.bin", len(chunk)))
    always, raw = np.concatenate(ours), np.concatenate(bare)
    say(f"durable always: {len(always)} appends, p50 {percentile_us(always, 50)} µs; "
        f"bare write+fdatasync p50 {percentile_us(raw, 50)} µs")
    return {
        "durable_append_always_p50_us": percentile_us(always, 50),
        "durable_append_always_p99_us": percentile_us(always, 99),
        "raw_fdatasync_p50_us": percentile_us(raw, 50),
        "raw_fdatasync_p99_us": percentile_us(raw, 99),
        "durable_append_always_p50_vs_raw_fdatasync": round(
            float(np.percentile(always, 50) / np.percentile(raw, 50)), 3),
    }


def measure_durable(options: Options, workdir: Path) -> dict[str, Any]:
    """Single-event append latency under group commit (threads) and fsync always."""
    threads, per_thread = options.durable_threads, options.durable_appends
    work = [single_events(options, per_thread, stream) for stream in range(threads)]
    figures: dict[str, Any] = {
        "durable_threads": threads,
        "durable_appends_per_thread": per_thread,
        "durable_group_commit_ms": options.group_commit_ms,
    }
    here = Path(tempfile.mkdtemp(prefix="durable-", dir=workdir))
    try:
        os.sync()
        figures.update(group_commit(options, here / "group", work))
        os.sync()
        (here / "always").mkdir()
        figures.update(fsync_always(here / "always", work[0]))
    finally:
        shutil.rmtree(here, ignore_errors=True)
    return figures


# ------------------------------------------------------------------ servers (for the record)


def backend_factory(module: str, name: str) -> Callable[..., LogBackend]:
    """A backend class imported by name, so an absent module is a note, not a crash."""
    return cast("Callable[..., LogBackend]", getattr(importlib.import_module(module), name))


def append_all(log: Log, topic: str, batches: Sequence[pa.RecordBatch]) -> None:
    for batch in batches:
        log.append(topic, batch)


def drain(log: Log, topic: str, total: int, group: str, idle_s: float = 10.0) -> int:
    """Poll a new consumer group until ``total`` events have arrived, or until none has
    for ``idle_s``; return the count."""
    got = 0
    with log.consumer(group, topic) as consumer:
        quiet_since = time.monotonic()
        while got < total and time.monotonic() - quiet_since < idle_s:
            for fetched in consumer.poll(max_events=100_000, timeout_s=0.5):
                got += fetched.batch.num_rows
                quiet_since = time.monotonic()
    return got


def raw_xadd(client: Any, key: str, batches: Sequence[pa.RecordBatch]) -> None:
    """The Redis baseline: each batch's IPC message as one stream entry."""
    for batch in batches:
        client.xadd(key, {"d": memoryview(batch.serialize())})


def measure_server(label: str, open_backend: Callable[[], LogBackend], options: Options,
                   batches: Sequence[pa.RecordBatch], notes: list[str]) -> dict[str, Any]:
    """Best-of append and consume rates on one server backend; ``null`` if unavailable.
    On Redis, a raw ``XADD`` baseline alternates with the appends."""
    count = min(len(batches), max(1, options.server_events // options.batch_size))
    chosen, total = batches[:count], sum(b.num_rows for b in batches[:count])
    figures: dict[str, Any] = {f"{label}_events": total,
                               f"{label}_append_events_per_s": None,
                               f"{label}_consume_events_per_s": None}
    try:
        backend = open_backend()
    except Exception as exc:
        notes.append(f"{label}: not measured, opening the backend failed: "
                     f"{type(exc).__name__}: {exc}")
        return figures
    log = Log(backend)
    appends: list[Sample] = []
    consumes: list[Sample] = []
    raws: list[Sample] = []
    raw_client: Any = None
    if label == "redis":
        import redis

        raw_client = redis.Redis.from_url(options.redis_url)
    try:
        for turn in range(options.server_rounds):
            topic = f"bench-{uuid.uuid4().hex[:8]}"
            # librdkafka's mock keeps 5 MiB per partition (about 50k of these events):
            # spread over 8 partitions so nothing is dropped.
            log.create_topic(topic, SCHEMA, partitions=8 if label == "kafka_mock" else 1)
            for which in rotated(["ours", "raw"] if raw_client is not None else ["ours"], turn):
                if which == "raw":
                    key = f"headwater-bench-raw-{uuid.uuid4().hex[:8]}"
                    sample, _ = timed(partial(raw_xadd, raw_client, key, chosen))
                    raw_client.delete(key)
                    raws.append(sample)
                    say(f"{label} round {turn}: raw XADD {rate(total, sample.wall):,.0f} ev/s")
                    continue
                sample, _ = timed(partial(append_all, log, topic, chosen))
                appends.append(sample)
                say(f"{label} round {turn}: append {rate(total, sample.wall):,.0f} ev/s")
            if len(consumes) == turn:  # no consume has failed yet
                sample, got = timed(partial(drain, log, topic, total, f"g-{topic}"))
                if got == total:
                    consumes.append(sample)
                    say(f"{label} round {turn}: consume {rate(total, sample.wall):,.0f} ev/s")
                else:
                    notes.append(f"{label}: consume not measured: the consumer group stalled "
                                 f"after {got} of {total} events")
            log.delete_topic(topic)
    except Exception as exc:
        notes.append(f"{label}: stopped: {type(exc).__name__}: {exc}")
    finally:
        if raw_client is not None:
            raw_client.close()
        destroy = getattr(backend, "destroy", None)
        try:
            if callable(destroy):
                destroy()
            log.close()
        except Exception as exc:
            notes.append(f"{label}: cleaning up failed: {type(exc).__name__}: {exc}")
    if appends:
        figures[f"{label}_append_events_per_s"] = round(rate(total, best(appends).wall))
    if appends and raws:
        figures[f"{label}_raw_xadd_events_per_s"] = round(rate(total, best(raws).wall))
        figures[f"{label}_append_vs_raw_xadd"] = round(
            statistics.median(s.wall for s in raws) / statistics.median(s.wall for s in appends), 3)
    if consumes:
        figures[f"{label}_consume_events_per_s"] = round(rate(total, best(consumes).wall))
    return figures


def measure_servers(options: Options, batches: Sequence[pa.RecordBatch],
                    notes: list[str]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    servers: list[tuple[str, str, str, Callable[[Callable[..., LogBackend]], LogBackend]]] = [
        ("redis", "headwater.log.redis", "RedisBackend",
         lambda cls: cls(options.redis_url, prefix=f"headwater-bench-log-{uuid.uuid4().hex[:8]}")),
        ("kafka_mock", "headwater.log.kafka", "KafkaBackend",
         lambda cls: cls(options.kafka_url)),
    ]
    for label, module, name, make in servers:
        say(f"{label} ...")
        try:
            cls = backend_factory(module, name)
        except Exception as exc:  # ImportError, or a module being written that fails to load
            notes.append(f"{label}: not measured, {module}.{name} is not importable: "
                         f"{type(exc).__name__}: {exc}")
            figures[f"{label}_append_events_per_s"] = None
            figures[f"{label}_consume_events_per_s"] = None
            continue
        figures.update(measure_server(label, partial(make, cls), options, batches, notes))
    return figures


# ------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    notes: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="headwater-bench-log-", dir=options.workdir))
    try:
        say(f"generating {options.events:,} events in batches of {options.batch_size:,} ...")
        batches = make_batches(options)
        figures: dict[str, Any] = {
            "events": options.events,
            "batch_size": options.batch_size,
            "distinct_keys": options.keys,
            "append_fsync": APPEND_FSYNC,
            "python": platform.python_version(),
            "pyarrow": pa.__version__,
            "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        }
        figures.update(measure_embedded(options, batches, workdir, notes))
        figures.update(measure_durable(options, workdir))
        figures.update(measure_servers(options, batches, notes))
        figures["targets"] = TARGETS
        figures["meets_targets"] = {name: figures.get(name) is not None
                                    and figures[name] >= target
                                    for name, target in TARGETS.items()}
        figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        figures["notes"] = notes
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
