"""Missing values as a user meets them: ``headwater`` as separate processes (produce,
features apply and run, serve) and HTTP on loopback, on the embedded default and on
Redis + PostgreSQL. A carrier never seen has 0 arrivals — not the model's running mean —
and the prediction log says the value was filled by its default; a helper feature feeds
a derived feature and is no model input."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from headwater.models import LogisticRegression
from headwater.registry import open_registry
from headwater.serving.inputs import neutral_defaults
from headwater.time import SystemClock, format_micros
from tests import processes
from tests.processes import Backends

PROJECT = textwrap.dedent(
    """
    import numpy as np
    from headwater.features import DerivedFeature, Entity, Feature, FeatureSet, Filter
    from headwater.features import Sliding, StreamSource

    carrier = Entity("carrier", key="carrier")
    flights = StreamSource.of("flights")
    day = Sliding.of("1d", hop="1h")
    arrivals = Feature.of("arrivals", carrier, flights, "count", window=day,
                          where=Filter("kind", "==", "arr"))
    departures = Feature.of("departures", carrier, flights, "count", window=day,
                            where=Filter("kind", "==", "dep"))
    delay = Feature.of("delay", carrier, flights, "mean", column="delay", window=day)
    share = DerivedFeature(
        "arrival_share", ("arrivals", "departures"),
        lambda c: c["arrivals"] / np.fmax(c["arrivals"] + c["departures"], 1.0))
    ops = FeatureSet("ops", (arrivals, departures, delay, share), helpers=("departures",))
    """
)


def environment(backends: Backends, home: Path) -> dict[str, str]:
    return processes.environment(home, {**backends.environment(home),
                                        "HEADWATER_PROJECT": str(home.parent / "features.py")})


def headwater(backends: Backends, home: Path, *args: str, input: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "headwater", *args], input=input,
                          env=environment(backends, home), capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: object) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def logged(backends: Backends, home: Path, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        log = backends.open_log(home)
        try:
            rows = [r for f in log.replay("predictions") for r in f.batch.to_pylist()]
        except Exception:
            rows = []
        finally:
            log.close()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_a_carrier_never_seen_has_zero_arrivals_flagged_as_default(
        tmp_path: Path, backends: Backends) -> None:
    home = tmp_path / "home"
    (tmp_path / "features.py").write_text(PROJECT)
    now = SystemClock().now_us()
    hour = 3_600_000_000
    rows = [(7, "arr", 12.0), (7, "dep", 3.0), (7, "arr", 30.0), (8, "dep", 0.0)]
    csv = "carrier,kind,delay,ts\n" + "".join(
        f"{c},{k},{d},{format_micros(now - (4 - i) * hour)}\n"
        for i, (c, k, d) in enumerate(rows))
    headwater(backends, home, "topics", "create", "flights", "--schema",
              "carrier:int64,kind:string,delay:float64,ts:timestamp", "--key", "carrier",
              "--event-time", "ts")
    headwater(backends, home, "produce", "flights", "-", "--format", "csv", input=csv)
    headwater(backends, home, "features", "apply")
    headwater(backends, home, "features", "run", "--idle-timeout", "0")
    got = headwater(backends, home, "features", "get", "99", "--set", "ops")
    assert "default: no value for the entity" in got
    assert "helper: no model input" in got

    # A model that learnt from carriers with about 13 arrivals a day: its neutral
    # default for arrivals is that mean, which a carrier never seen must not get.
    rng = np.random.default_rng(0)
    arrivals = rng.poisson(13.0, 500).astype(float)
    model = LogisticRegression()
    model.learn({"arrivals": arrivals, "delay": rng.normal(10.0, 5.0, 500),
                 "arrival_share": rng.uniform(0.3, 0.7, 500)}, (arrivals > 13).astype(float))
    assert neutral_defaults(model)["arrivals"] > 12.0
    model.save(tmp_path / "model")
    with open_registry(backends.registry or home / "registry",
                       artifacts=home / "artifacts" if backends.registry else None) as registry:
        registry.register("delays", tmp_path / "model")
        registry.promote("delays", 1, actor="test", reason="first version")

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "headwater", "serve", "--model", "delays", "--feature-set", "ops",
         "--port", str(port)], env=environment(backends, home), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not ready(f"{base}/ready"):
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "the server did not get ready"
            time.sleep(0.2)
        seen = post(f"{base}/predict", {"entities": {"carrier": "7"}, "request_id": "seen"})
        unseen = post(f"{base}/predict", {"entities": {"carrier": "99"}, "request_id": "new"})
        events = {e["request_id"]: e for e in logged(backends, home, 2)}
    finally:
        server.terminate()
        server.communicate(timeout=30)

    assert not seen["unknown_entity"]
    assert seen["missing"] == []
    first = events["seen"]
    assert msgspec.json.decode(first["features"]) == {
        "arrivals": 2.0, "delay": 15.0, "arrival_share": 2 / 3}  # no helper in the input
    assert first["defaulted"] == ""

    assert unseen["unknown_entity"]
    assert unseen["missing"] == ["delay"]  # a mean has no default: the model's fills it
    new = events["new"]
    served = msgspec.json.decode(new["features"])
    assert served["arrivals"] == 0.0  # not the model's running mean of 13
    assert served["arrival_share"] == 0.0
    assert served["delay"] == neutral_defaults(model)["delay"]
    assert "departures" not in served
    assert new["defaulted"].split(",") == ["arrivals", "departures"]
    assert new["missing"] == "delay"
    assert unseen["score"] == model.predict_one(served)
