"""Benchmark the prediction service; prints one JSON object.

- ``inproc_predict_p50_us`` / ``_p99_us``: :meth:`Predictor.predict` in this process, one
  entity with 20 online features, 10 request values, the built-in logistic regression,
  prediction logging on.
- ``http_*``: a server in a second process (uvicorn, httptools, uvloop) on 127.0.0.1,
  loaded by an asyncio generator here over 32 keep-alive connections for a fixed time;
  ``server_cpu_us_per_request`` is the server process's CPU time (``/proc``) divided by
  the requests answered (the in-process memory online store, predictions logged; target
  <= 30), ``prediction_log_cpu_us_per_request`` the part of it spent by the prediction
  log's thread.
- ``floor_cpu_us_per_request``: the same server configuration around a trivial ASGI app
  that answers a fixed prediction-shaped body: what uvicorn, the event loop and the
  kernel cost per request whatever the app does; ``app_cpu_us_per_request`` is ours
  minus that floor, and ``server_cpu_vs_floor`` their ratio.
- ``redis_server_cpu_us_per_request``: the same with the Redis online store (its reads
  awaited and batched across requests, predictions logged; target <= 60), with
  ``redis_reads_per_round_trip``, the reads a Redis round trip carried on average, and
  ``redis_process_cpu_us_per_request``, the CPU time of the Redis server process per
  request (when its ``/proc`` entry is readable).
- ``http_vs_fastapi``: our requests per second divided by those of a FastAPI app doing
  the same work (decode, predict, encode) in an ``async def`` endpoint under the same
  server settings (``null`` when FastAPI is not installed).
- ``workers2_vs_1``: requests per second of two server processes sharing a port
  (``SO_REUSEPORT``, as ``headwater serve --workers 2`` runs them) over one, with the
  Redis online store, the load generator in the same run on the same machine (none of
  them pinned: they share the machine's cores, reported as ``cores``).
- ``one_write_vs_two_writes``: our server's CPU per request with its protocol
  (:data:`headwater.serving.server.OneWriteProtocol`, a subclass of uvicorn's httptools
  protocol writing a response's head and body in one system call, and bounding what a
  client can hold) over the same protocol writing them apart (``one_write=False``), same
  app, same run: what the one write saves; ``protocol_vs_plain`` our protocol over
  uvicorn's own httptools protocol: what the whole subclass of a private uvicorn class
  costs or saves (``--only protocol`` runs these alone).
- ``swap_failed_requests`` / ``swap_p99_ms``: 100 promotions through ``/admin/promote``
  while the load runs: predict requests that did not answer 200, and their p99 latency.
- ``console_cpu_vs_without``: the server CPU per request with the console open on its
  Serving page (``console_server_cpu_us_per_request``) over without, the two runs in the
  same rounds: the console's poll reads the server's ``GET /metrics`` and ``GET
  /models`` (what ``headwater ui`` asks a server for), here every ``--console-ms``
  (500 ms, four times as often as the console's default); target <= 1.05. On a loaded
  machine the ratio's noise is larger than the effect, so the cost of one poll is also
  measured alone (``server_cpu_ms_per_console_poll``: 200 polls back to back, nothing
  else) and spread over the requests of one polling interval at the measured rate
  (``console_poll_share_of_request_cpu``).

Fairness: each server configuration runs ``--rounds`` times (3 by default), the order
rotated each round, and every figure is the median over the rounds; the single-server
runs pin the server to one core and the load generator to another
(``os.sched_setaffinity``) on a machine with two or more. The machine's load
(``uptime``) is reported before and after.

Usage: ``python benchmarks/serving.py [--seconds 3] [--rounds 3]
[--redis-url redis://127.0.0.1:6379/15] [--console-ms 500] [--only protocol|console]``
(``--only console`` measures the console's overhead alone).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import asyncio
import importlib
import importlib.metadata
import importlib.util
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from headwater.config import Settings
from headwater.features import Entity, Feature, FeatureSet, StreamSource
from headwater.features.engine import FeatureEngine
from headwater.features.online import FeatureReader
from headwater.log import Log, Schema
from headwater.models import LogisticRegression
from headwater.registry import ModelRegistry, open_registry
from headwater.serving import ChampionOnly, Deployment, PredictionLog, Predictor
from headwater.store.online.memory import MemoryOnlineStore
from headwater.store.online.protocol import OnlineStore
from headwater.testing import ManualClock, MemoryBackend

NOW = 1_700_000_000_000_000
USERS = 1_000
CONNECTIONS = 32
TOKEN = "bench-token"
COLUMNS = tuple(f"c{i}" for i in range(5))
AGGREGATIONS = ("sum", "mean", "max", "min")
REQUEST = tuple(f"r{i}" for i in range(10))
REDIS_URL = "redis://127.0.0.1:6379/15"


def online_store(kind: str, redis_url: str) -> OnlineStore:
    """The in-process memory store, or a Redis store under a key prefix of its own."""
    if kind == "memory":
        return MemoryOnlineStore()
    from headwater.store.online.redis import RedisOnlineStore

    return RedisOnlineStore(redis_url, prefix=f"headwater-bench-{os.getpid()}")


def build(tmp: Path, online: OnlineStore | None = None
          ) -> tuple[Predictor, Deployment, ModelRegistry]:
    """20 online features of one entity, a two-version model, logging on."""
    user = Entity("user", key="user")
    source = StreamSource.of("events")
    features = [Feature.of(f"{agg}_{col}", user, source, agg, column=col)
                for col in COLUMNS for agg in AGGREGATIONS]
    clock = ManualClock(NOW - 60_000_000)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    log.create_topic("events", Schema.of({"user": "string", **dict.fromkeys(COLUMNS, "float64"),
                                          "ts": "timestamp"}, key="user", event_time="ts"))
    rng = np.random.default_rng(0)
    n = 20_000
    log.append("events", pa.table({
        "user": [f"u{i % USERS}" for i in range(n)], **{c: rng.normal(size=n) for c in COLUMNS},
        "ts": pa.array(NOW - 50_000_000 + np.arange(n), pa.timestamp("us", tz="UTC"))}))
    online = online or MemoryOnlineStore()
    with FeatureEngine(log, features, online, state_dir=tmp / "state") as engine:
        engine.run(idle_timeout_s=0)
    clock.set(NOW)
    registry = open_registry("memory://", artifacts=tmp / "artifacts", clock=clock,
                             settings=Settings(home=str(tmp / "home"), fsync="never"))
    names = [f.name for f in features] + list(REQUEST)
    for seed in (1, 2):
        model = LogisticRegression()
        rows = np.random.default_rng(seed).normal(size=(2_000, len(names)))
        model.learn({name: rows[:, i] for i, name in enumerate(names)},
                    (rows[:, 0] + rows[:, -1] > 0).astype(int))
        model.save(tmp / f"model-{seed}")
        registry.register("bench", tmp / f"model-{seed}")
    registry.promote("bench", 1, actor="bench", reason="start")
    deployment = Deployment(registry, "bench", ChampionOnly(), clock=clock)
    deployment.reload()
    plog = PredictionLog(log)  # the defaults `headwater serve` logs with
    predictor = Predictor(FeatureReader(online, FeatureSet("bench", tuple(features))),
                          deployment, log=plog, clock=clock)
    return predictor, deployment, registry


def request_values(i: int) -> dict[str, float]:
    return {name: float((i * 7 + j) % 13) / 13.0 for j, name in enumerate(REQUEST)}


def inproc(predictor: Predictor, count: int = 20_000) -> dict[str, float]:
    requests = [({"user": f"u{i % USERS}"}, request_values(i)) for i in range(1_000)]
    for entities, values in requests[:500]:  # warm up
        predictor.predict(entities, values)
    times = np.empty(count)
    clock = time.perf_counter_ns
    for i in range(count):
        entities, values = requests[i % len(requests)]
        start = clock()
        predictor.predict(entities, values)
        times[i] = clock() - start
    return {"inproc_predict_p50_us": round(float(np.percentile(times, 50)) / 1e3, 2),
            "inproc_predict_p99_us": round(float(np.percentile(times, 99)) / 1e3, 2)}


# -- the server process --------------------------------------------------------------


def fastapi_app(predictor: Predictor) -> Any:
    """The same work behind FastAPI (imported dynamically: it is not a dependency)."""
    fastapi: Any = importlib.import_module("fastapi")
    pydantic: Any = importlib.import_module("pydantic")
    body_model = pydantic.create_model(
        "Body",
        entities=(dict[str, str], ...),
        request=(dict[str, float | int | str | bool | None], {}),
        request_id=(str | None, None),
    )

    async def predict(body: Any) -> dict[str, Any]:
        p = predictor.predict(body.entities, body.request, request_id=body.request_id)
        return {"request_id": p.request_id, "score": p.score, "model": p.model,
                "version": p.version, "arm": p.arm, "unknown_entity": p.unknown_entity,
                "missing": list(p.missing), "fallback": p.fallback}

    predict.__annotations__ = {"body": body_model, "return": dict[str, Any]}
    app = fastapi.FastAPI()
    app.post("/predict")(predict)
    return app


FIXED = (b'{"request_id":"1a2b3c4d-1","score":0.5,"model":"bench","version":1,'
         b'"arm":"champion","unknown_entity":false,"missing":[],"fallback":false}')


async def floor_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an ASGI app can do: read the body, answer a fixed one."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"%d" % len(FIXED))]})
    await send({"type": "http.response.body", "body": FIXED})


def run_server(kind: str, online: str, redis_url: str, port: int, cpu: int | None) -> None:
    import uvicorn

    from headwater.serving.app import ServingApp
    from headwater.serving.server import limited_protocol, listening_socket, server_config

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})  # before any thread starts: they inherit it
    store = online_store(online, redis_url)
    with tempfile.TemporaryDirectory() as tmp:
        predictor, deployment, registry = build(Path(tmp), store)
        ours = ServingApp(predictor, deployment, registry=registry, admin_token=TOKEN)
        app: Any = ({"ours": ours, "plain": ours, "two-writes": ours,
                     "floor": floor_app}.get(kind) or fastapi_app(predictor))
        config = server_config(ours, "127.0.0.1", port)
        config.app = app
        if kind == "plain":  # uvicorn's own httptools protocol
            config.http = "httptools"
        elif kind == "two-writes":  # ours, a response's head and body written apart
            config.http = limited_protocol(10.0, 1_000, one_write=False) or "httptools"
        server = uvicorn.Server(config)
        assert predictor.log is not None
        log_thread = predictor.log._thread.native_id
        sock = listening_socket("127.0.0.1", port, reuse_port=port != 0)
        # uvicorn stops on SIGTERM, then raises it again to the handler it found: this
        # one lets the process go on to report its reads.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)

        async def main() -> None:
            task = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:
                await asyncio.sleep(0.01)
            print(sock.getsockname()[1], log_thread, flush=True)
            await task
            reads = predictor.reads
            if reads is not None:
                print(json.dumps({"round_trips": reads.round_trips, "reads": reads.reads}),
                      flush=True)

        try:
            import uvloop

            uvloop.run(main())
        except ImportError:
            asyncio.run(main())
        finally:
            predictor.log.close()
            if hasattr(store, "destroy"):
                store.destroy()
            store.close()


# -- the load generator ----------------------------------------------------------------


async def _connection(port: int, bodies: list[bytes], until: float, latencies: list[float],
                      failures: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    clock = time.perf_counter
    try:
        while clock() < until:
            body = bodies[i % len(bodies)]
            i += 1
            start = clock()
            writer.write(b"POST /predict HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: "
                         b"application/json\r\ncontent-length: " + str(len(body)).encode()
                         + b"\r\n\r\n" + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(clock() - start)
            if head[9:12] != b"200":
                failures.append(int(head[9:12]))
    finally:
        writer.close()


async def _swaps(port: int, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(count):
        body = json.dumps({"version": 2 - i % 2, "reason": "bench"}).encode()
        writer.write(b"POST /admin/promote HTTP/1.1\r\nhost: x\r\nauthorization: Bearer "
                     + TOKEN.encode() + b"\r\ncontent-length: " + str(len(body)).encode()
                     + b"\r\n\r\n" + body)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line[15:]) for line in head.split(b"\r\n")
                      if line[:15].lower() == b"content-length:")
        await reader.readexactly(length)
        if head[9:12] != b"200":
            raise RuntimeError(f"promote failed: {head!r}")
        await asyncio.sleep(0.01)
    writer.close()


async def _console(port: int, every_s: float, until: float, polls: list[int], *,
                   once: bool = False) -> None:
    """What an open console asks of the server: ``/metrics`` and ``/models`` per poll."""
    while once or time.perf_counter() < until:
        for path in (b"/metrics", b"/models"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET " + path
                         + b" HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            answer = await reader.read()
            writer.close()
            if answer[9:12] != b"200":
                raise RuntimeError(f"GET {path.decode()} failed: {answer[:100]!r}")
        polls.append(1)
        if once:
            return
        await asyncio.sleep(every_s)


def load(port: int, seconds: float, swaps: int = 0, console_ms: float | None = None
         ) -> tuple[list[float], list[int], float]:
    bodies = [json.dumps({"entities": {"user": f"u{i % USERS}"},
                          "request": request_values(i)}).encode() for i in range(500)]
    latencies: list[float] = []
    failures: list[int] = []

    async def main() -> float:
        until = time.perf_counter() + seconds
        started = time.perf_counter()
        jobs = [_connection(port, bodies, until, latencies, failures)
                for _ in range(CONNECTIONS)]
        if swaps:
            jobs.append(_swaps(port, swaps))
        polls: list[int] = []
        if console_ms is not None:
            jobs.append(_console(port, console_ms / 1000, until, polls))
        await asyncio.gather(*jobs)
        if console_ms is not None and not polls:
            raise RuntimeError("the console did not poll")
        return time.perf_counter() - started

    try:
        import uvloop

        elapsed = uvloop.run(main())
    except ImportError:
        elapsed = asyncio.run(main())
    return latencies, failures, elapsed


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    where = f"/proc/{pid}" if thread is None else f"/proc/{pid}/task/{thread}"
    fields = Path(f"{where}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_pid() -> int | None:
    """The Redis server's process, when it runs on this machine and /proc shows it."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().split(" ", 2)[1] == "(redis-server)":
                return int(stat.parent.name)
        except OSError:
            continue
    return None


def measure(kind: str, seconds: float, *, online: str = "memory", redis_url: str = REDIS_URL,
            swaps: int = 0, workers: int = 1, pin: bool = True,
            console_ms: float | None = None) -> dict[str, float]:
    """Start ``workers`` server processes (sharing a port when more than one), load them
    for ``seconds`` (with a console polling every ``console_ms``); requests/s, latencies
    and CPU per request of the servers together."""
    pinned = pin and len(os.sched_getaffinity(0)) >= 2
    cores = sorted(ALL_CORES)
    os.sched_setaffinity(0, {cores[0]} if pinned else set(cores))
    port = 0 if workers == 1 else free_port()
    command = [sys.executable, __file__, "--serve", kind, "--online", online,
               "--redis-url", redis_url, "--port", str(port)]
    if pinned:
        command += ["--cpu", str(cores[1])]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
                 for _ in range(workers)]
    try:
        ports, threads = [], []
        for process in processes:
            assert process.stdout is not None
            bound, log_thread = map(int, process.stdout.readline().split())
            ports.append(bound)
            threads.append(log_thread)
        port = ports[0]
        load(port, 0.5)  # warm up
        redis = redis_pid() if online == "redis" else None
        redis_before = cpu_seconds(redis) if redis else 0.0
        before = [(cpu_seconds(p.pid), cpu_seconds(p.pid, t))
                  for p, t in zip(processes, threads, strict=True)]
        latencies, failures, elapsed = load(port, seconds, console_ms=console_ms)
        cpu = sum(cpu_seconds(p.pid) - b[0] for p, b in zip(processes, before, strict=True))
        log_cpu = sum(cpu_seconds(p.pid, t) - b[1]
                      for p, t, b in zip(processes, threads, before, strict=True))
        redis_cpu = cpu_seconds(redis) - redis_before if redis else None
        ms = np.array(latencies) * 1e3
        result = {"rps": len(latencies) / elapsed, "p50": float(np.percentile(ms, 50)),
                  "p99": float(np.percentile(ms, 99)), "max": float(ms.max()),
                  "cpu_us": cpu / len(latencies) * 1e6, "failed": float(len(failures)),
                  "log_cpu_us": log_cpu / len(latencies) * 1e6}
        if redis_cpu is not None:
            result["redis_cpu_us"] = redis_cpu / len(latencies) * 1e6
        if swaps:
            latencies, failures, _ = load(port, max(seconds, swaps * 0.015), swaps)
            result["swap_failed"] = float(len(failures))
            result["swap_p99"] = float(np.percentile(np.array(latencies) * 1e3, 99))
        for process in processes:
            process.terminate()
        for process in processes:
            out, _ = process.communicate(timeout=30)
            if out.strip():
                counts = json.loads(out.strip().splitlines()[-1])
                result["round_trips"] = result.get("round_trips", 0) + counts["round_trips"]
                result["reads"] = result.get("reads", 0) + counts["reads"]
        return result
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        os.sched_setaffinity(0, ALL_CORES)


ALL_CORES = os.sched_getaffinity(0)


def rounds(configurations: dict[str, Callable[[], dict[str, float]]], count: int
           ) -> dict[str, dict[str, float]]:
    """Run every configuration ``count`` times, the order rotated each round; the median
    of each figure over the rounds."""
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in configurations}
    names = list(configurations)
    for r in range(count):
        for name in names[r % len(names):] + names[:r % len(names)]:
            done = configurations[name]()
            runs[name].append(done)
            print(f"round {r + 1}/{count}: {name}: {done['rps']:.0f} requests/s, "
                  f"{done['cpu_us']:.1f} us CPU per request", file=sys.stderr, flush=True)
    return {name: {key: statistics.median(run[key] for run in done if key in run)
                   for key in done[0]} for name, done in runs.items()}


def uptime_load() -> list[float]:
    """The load averages over 1, 5 and 15 minutes, as ``uptime`` shows them."""
    return [round(x, 2) for x in os.getloadavg()]


def scale_figures(seconds: float, count: int, redis_url: str = REDIS_URL) -> dict[str, Any]:
    """The figures ``benchmarks/scale.py`` reports: the Redis online store's server CPU
    per request and two workers over one."""
    medians = rounds({
        "redis": lambda: measure("ours", seconds, online="redis", redis_url=redis_url),
        "workers1": lambda: measure("ours", seconds, online="redis", redis_url=redis_url,
                                    pin=False),
        "workers2": lambda: measure("ours", seconds, online="redis", redis_url=redis_url,
                                    workers=2, pin=False),
    }, count)
    redis = medians["redis"]
    return {
        "redis_server_cpu_us_per_request": round(redis["cpu_us"], 1),
        "redis_http_rps": round(redis["rps"]),
        "redis_http_p99_ms": round(redis["p99"], 3),
        "redis_prediction_log_cpu_us_per_request": round(redis["log_cpu_us"], 1),
        "redis_reads_per_round_trip": round(redis["reads"] / redis["round_trips"], 1)
        if redis.get("round_trips") else None,
        "redis_process_cpu_us_per_request": round(redis["redis_cpu_us"], 1)
        if "redis_cpu_us" in redis else None,
        "redis_http_failed_requests": int(redis["failed"]),
        "workers1_rps": round(medians["workers1"]["rps"]),
        "workers2_rps": round(medians["workers2"]["rps"]),
        "workers2_vs_1": round(medians["workers2"]["rps"] / medians["workers1"]["rps"], 2),
        "workers2_failed_requests": int(medians["workers2"]["failed"]),
    }


def protocol_figures(medians: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Our protocol against itself writing twice and against uvicorn's own (see the module
    docstring)."""
    ours, two, plain = medians["ours"], medians["two-writes"], medians["plain"]
    return {"protocol_cpu_us_per_request": round(ours["cpu_us"], 1),
            "two_writes_cpu_us_per_request": round(two["cpu_us"], 1),
            "plain_httptools_cpu_us_per_request": round(plain["cpu_us"], 1),
            "one_write_vs_two_writes": round(ours["cpu_us"] / two["cpu_us"], 3),
            "protocol_vs_plain": round(ours["cpu_us"] / plain["cpu_us"], 3),
            "protocol_failed_requests": int(ours["failed"] + two["failed"] + plain["failed"])}


def poll_cpu_ms(polls: int = 200) -> float:
    """The server's CPU time per console poll (``/metrics`` and ``/models``), polled
    back to back after some load, with no other request: what one poll costs."""
    process = subprocess.Popen([sys.executable, __file__, "--serve", "ours"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().split()[0])
        load(port, 0.5)  # the counters and histograms the scrape renders
        before = cpu_seconds(process.pid)
        done: list[int] = []

        async def main() -> None:
            while len(done) < polls:
                await _console(port, 0.0, time.perf_counter(), done, once=True)

        asyncio.run(main())
        return (cpu_seconds(process.pid) - before) / polls * 1e3
    finally:
        process.kill()
        process.wait()


def console_figures(seconds: float, count: int, console_ms: float) -> dict[str, Any]:
    """Server CPU per request with a console polling the server, and without; and what
    one poll costs the server, so the share of a server's CPU it takes at a given load."""
    poll_ms = poll_cpu_ms()
    medians = rounds({
        "without_console": lambda: measure("ours", seconds),
        "with_console": lambda: measure("ours", seconds, console_ms=console_ms),
    }, count)
    without, with_ = medians["without_console"], medians["with_console"]
    requests_per_poll = without["rps"] * console_ms / 1000
    return {
        "console_poll_ms": console_ms,
        "server_cpu_ms_per_console_poll": round(poll_ms, 3),
        # One poll's CPU spread over the requests answered between two polls, over a
        # request's CPU without the console: the overhead the load above implies.
        "console_poll_share_of_request_cpu": round(
            poll_ms * 1e3 / requests_per_poll / without["cpu_us"], 4),
        "no_console_server_cpu_us_per_request": round(without["cpu_us"], 1),
        "console_server_cpu_us_per_request": round(with_["cpu_us"], 1),
        "console_cpu_vs_without": round(with_["cpu_us"] / without["cpu_us"], 3),
        "console_http_rps": round(with_["rps"]),
        "no_console_http_rps": round(without["rps"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--serve", choices=("ours", "plain", "two-writes", "fastapi", "floor"))
    parser.add_argument("--only", choices=("protocol", "console"))
    parser.add_argument("--online", choices=("memory", "redis"), default="memory")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu", type=int)
    parser.add_argument("--console-ms", type=float, default=500.0)
    args = parser.parse_args()
    if args.serve:
        run_server(args.serve, args.online, args.redis_url, args.port, args.cpu)
        return
    result: dict[str, Any] = {"uptime_load": uptime_load(), "cores": len(ALL_CORES)}
    if args.only == "protocol":
        result |= protocol_figures(rounds({
            "ours": lambda: measure("ours", args.seconds),
            "two-writes": lambda: measure("two-writes", args.seconds),
            "plain": lambda: measure("plain", args.seconds)}, args.rounds))
        result["uvicorn"] = importlib.metadata.version("uvicorn")
    if args.only == "console":
        result |= console_figures(args.seconds, args.rounds, args.console_ms)
    if args.only is not None:
        result["uptime_load_after"] = uptime_load()
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        predictor, _, _ = build(Path(tmp))
        result |= inproc(predictor)
        assert predictor.log is not None
        predictor.log.close()
        result["inproc_log_dropped"] = predictor.log.dropped
    has_fastapi = importlib.util.find_spec("fastapi") is not None
    configurations: dict[str, Callable[[], dict[str, float]]] = {
        "floor": lambda: measure("floor", args.seconds),
        "ours": lambda: measure("ours", args.seconds),
        "two-writes": lambda: measure("two-writes", args.seconds),
        "plain": lambda: measure("plain", args.seconds),
    }
    if has_fastapi:
        configurations["fastapi"] = lambda: measure("fastapi", args.seconds)
    medians = rounds(configurations, args.rounds)
    ours, floor = medians["ours"], medians["floor"]
    result |= {"http_rps": round(ours["rps"]), "http_p50_ms": round(ours["p50"], 3),
               "http_p99_ms": round(ours["p99"], 3), "http_max_ms": round(ours["max"], 3),
               "server_cpu_us_per_request": round(ours["cpu_us"], 1),
               "prediction_log_cpu_us_per_request": round(ours["log_cpu_us"], 1),
               "http_failed_requests": int(ours["failed"]),
               "floor_cpu_us_per_request": round(floor["cpu_us"], 1),
               "floor_rps": round(floor["rps"]),
               "app_cpu_us_per_request": round(ours["cpu_us"] - floor["cpu_us"], 1),
               "server_cpu_vs_floor": round(ours["cpu_us"] / floor["cpu_us"], 2)}
    result |= protocol_figures(medians)
    if has_fastapi:
        theirs = medians["fastapi"]
        result["fastapi_rps"] = round(theirs["rps"])
        result["fastapi_cpu_us_per_request"] = round(theirs["cpu_us"], 1)
        result["http_vs_fastapi"] = round(ours["rps"] / theirs["rps"], 2)
    else:
        result["http_vs_fastapi"] = None
        result["http_vs_fastapi_note"] = "fastapi is not installed"
    result |= scale_figures(args.seconds, args.rounds, args.redis_url)
    swapped = measure("ours", args.seconds, swaps=100)
    result["swap_failed_requests"] = int(swapped["swap_failed"])
    result["swap_p99_ms"] = round(swapped["swap_p99"], 3)
    result |= console_figures(args.seconds, args.rounds, args.console_ms)
    result["load_generator"] = (f"python asyncio, {CONNECTIONS} connections, {args.seconds}s, "
                                f"{args.rounds} rounds (medians)")
    result["uptime_load_after"] = uptime_load()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
