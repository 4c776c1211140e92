"""Benchmark the prediction service; prints one JSON object.

- ``inproc_predict_p50_us`` / ``_p99_us``: :meth:`Predictor.predict` in this process, one
  entity with 20 online features, 10 request values, the built-in logistic regression,
  prediction logging on.
- ``http_*``: a server in a second process (uvicorn, httptools, uvloop) on 127.0.0.1,
  loaded by an asyncio generator here over 32 keep-alive connections for a fixed time;
  ``server_cpu_us_per_request`` is the server process's CPU time (``/proc``) divided by
  the requests answered, ``prediction_log_cpu_us_per_request`` the part of it spent by
  the prediction log's thread.
- ``floor_cpu_us_per_request``: the same server configuration around a trivial ASGI app
  that answers a fixed prediction-shaped body: what uvicorn, the event loop and the
  kernel cost per request whatever the app does; ``app_cpu_us_per_request`` is ours
  minus that floor, and ``server_cpu_vs_floor`` their ratio.
- ``http_vs_fastapi``: our requests per second divided by those of a FastAPI app doing
  the same work (decode, predict, encode) under the same server settings (``null``
  when FastAPI is not installed).
- ``swap_failed_requests`` / ``swap_p99_ms``: 100 promotions through ``/admin/promote``
  while the load runs: predict requests that did not answer 200, and their p99 latency.

Usage: ``python benchmarks/serving.py [--seconds 3]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import asyncio
import importlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
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
from headwater.testing import ManualClock, MemoryBackend

NOW = 1_700_000_000_000_000
USERS = 1_000
CONNECTIONS = 32
TOKEN = "bench-token"
COLUMNS = tuple(f"c{i}" for i in range(5))
AGGREGATIONS = ("sum", "mean", "max", "min")
REQUEST = tuple(f"r{i}" for i in range(10))


def build(tmp: Path) -> tuple[Predictor, Deployment, ModelRegistry]:
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
    online = MemoryOnlineStore()
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
    plog = PredictionLog(log, capacity=1_000_000, flush_ms=20)
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

    def predict(body: Any) -> dict[str, Any]:
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


def run_server(kind: str) -> None:
    import uvicorn

    from headwater.serving.app import ServingApp
    from headwater.serving.server import server_config

    with tempfile.TemporaryDirectory() as tmp:
        predictor, deployment, registry = build(Path(tmp))
        ours = ServingApp(predictor, deployment, registry=registry, admin_token=TOKEN)
        app: Any = {"ours": ours, "floor": floor_app}.get(kind) or fastapi_app(predictor)
        config = server_config(ours, "127.0.0.1", 0)
        config.app = app
        server = uvicorn.Server(config)
        assert predictor.log is not None
        log_thread = predictor.log._thread.native_id

        async def main() -> None:
            task = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            print(port, log_thread, flush=True)
            await task

        try:
            import uvloop

            uvloop.run(main())
        except ImportError:
            asyncio.run(main())


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


def load(port: int, seconds: float, swaps: int = 0) -> tuple[list[float], list[int], float]:
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
        await asyncio.gather(*jobs)
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


def measure(kind: str, seconds: float, swaps: int = 0) -> dict[str, float]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", kind],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port, log_thread = map(int, process.stdout.readline().split())
        load(port, 0.5)  # warm up
        before = cpu_seconds(process.pid), cpu_seconds(process.pid, log_thread)
        latencies, failures, elapsed = load(port, seconds)
        cpu = cpu_seconds(process.pid) - before[0]
        log_cpu = cpu_seconds(process.pid, log_thread) - before[1]
        ms = np.array(latencies) * 1e3
        result = {"rps": len(latencies) / elapsed, "p50": float(np.percentile(ms, 50)),
                  "p99": float(np.percentile(ms, 99)), "max": float(ms.max()),
                  "cpu_us": cpu / len(latencies) * 1e6, "failed": float(len(failures)),
                  "log_cpu_us": log_cpu / len(latencies) * 1e6}
        if swaps:
            latencies, failures, _ = load(port, max(seconds, swaps * 0.015), swaps)
            result["swap_failed"] = float(len(failures))
            result["swap_p99"] = float(np.percentile(np.array(latencies) * 1e3, 99))
        return result
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--serve", choices=("ours", "fastapi", "floor"))
    args = parser.parse_args()
    if args.serve:
        run_server(args.serve)
        return
    with tempfile.TemporaryDirectory() as tmp:
        predictor, _, _ = build(Path(tmp))
        result: dict[str, Any] = inproc(predictor)
        assert predictor.log is not None
        predictor.log.close()
        result["inproc_log_dropped"] = predictor.log.dropped
    ours = measure("ours", args.seconds, swaps=100)
    result |= {"http_rps": round(ours["rps"]), "http_p50_ms": round(ours["p50"], 3),
               "http_p99_ms": round(ours["p99"], 3), "http_max_ms": round(ours["max"], 3),
               "server_cpu_us_per_request": round(ours["cpu_us"], 1),
               "prediction_log_cpu_us_per_request": round(ours["log_cpu_us"], 1),
               "http_failed_requests": int(ours["failed"])}
    floor = measure("floor", args.seconds)
    result["floor_cpu_us_per_request"] = round(floor["cpu_us"], 1)
    result["app_cpu_us_per_request"] = round(ours["cpu_us"] - floor["cpu_us"], 1)
    result["server_cpu_vs_floor"] = round(ours["cpu_us"] / floor["cpu_us"], 2)
    try:
        if importlib.util.find_spec("fastapi") is None:
            raise ImportError("fastapi")
        theirs = measure("fastapi", args.seconds)
        result["fastapi_rps"] = round(theirs["rps"])
        result["fastapi_cpu_us_per_request"] = round(theirs["cpu_us"], 1)
        result["http_vs_fastapi"] = round(ours["rps"] / theirs["rps"], 2)
    except ImportError:
        result["http_vs_fastapi"] = None
        result["http_vs_fastapi_note"] = "fastapi is not installed"
    result["swap_failed_requests"] = int(ours["swap_failed"])
    result["swap_p99_ms"] = round(ours["swap_p99"], 3)
    result["load_generator"] = f"python asyncio, {CONNECTIONS} connections, {args.seconds}s"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
