"""Features of two entities from one topic, as a user meets them: ``headwater`` as
separate processes (produce, features apply and run, serve) and HTTP on loopback, on the
embedded default and on Redis + PostgreSQL. Payments are keyed by user in three
partitions; the merchant's features read every partition. One request names a user and
a merchant; each is looked up by its own key, and the values served, logged and scored
are those a plain recount of the payments gives."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from headwater.models import LogisticRegression
from headwater.registry import open_registry
from headwater.time import SystemClock, format_micros
from tests.processes import Backends, Server, headwater

PROJECT = textwrap.dedent(
    """
    import numpy as np
    from headwater.features import DerivedFeature, Entity, Feature, FeatureSet, StreamSource

    user = Entity("user", key="user")
    merchant = Entity("merchant", key="merchant")
    payments = StreamSource.of("payments")
    checkout = FeatureSet("checkout", (
        Feature.of("user_payments", user, payments, "count"),
        Feature.of("user_spend", user, payments, "sum", column="amount"),
        Feature.of("merchant_payments", merchant, payments, "count"),
        Feature.of("merchant_mean", merchant, payments, "mean", column="amount"),
        Feature.of("merchant_last", merchant, payments, "last", column="amount"),
        DerivedFeature("amount_ratio", ("amount", "merchant_mean"),
                       lambda c: c["amount"] / np.fmax(c["merchant_mean"], 1.0)),
    ))
    """
)
INPUTS = ["user_payments", "user_spend", "merchant_payments", "merchant_mean",
          "merchant_last", "amount_ratio", "amount"]
MINUTE = 60_000_000


def payments(now: int) -> list[tuple[int, str, str, float, int]]:
    """(payment id, user, merchant, amount, time): users and merchants cross, so every
    merchant is paid by users of every partition."""
    return [(9000 + i, f"u{i % 5}", f"m{(i * 7) % 3}", float(i % 9 + 1), now - (60 - i) * MINUTE)
            for i in range(60)]


def recount(rows: list[tuple[int, str, str, float, int]], user: str, merchant: str,
            amount: float) -> dict[str, float]:
    """The model's inputs for one request, counted in plain Python."""
    mine = [r for r in rows if r[1] == user]
    theirs = [r for r in rows if r[2] == merchant]
    mean = sum(r[3] for r in theirs) / len(theirs)
    return {"user_payments": float(len(mine)), "user_spend": sum(r[3] for r in mine),
            "merchant_payments": float(len(theirs)), "merchant_mean": mean,
            "merchant_last": max(theirs, key=lambda r: r[4])[3],
            "amount_ratio": amount / max(mean, 1.0), "amount": amount}


def run(backends: Backends, home: Path, *args: str, input: str | None = None) -> str:
    done = headwater(home, *args, input=input, env={
        **backends.environment(home), "HEADWATER_PROJECT": str(home.parent / "features.py")})
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def logged(backends: Backends, home: Path, count: int) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        with backends.open_log(home) as log:
            rows = [r for f in log.replay("predictions") for r in f.batch.to_pylist()]
        if len(rows) >= count or time.monotonic() > deadline:
            return {r["request_id"]: r for r in rows}
        time.sleep(0.1)


def test_one_request_reads_each_entity_by_its_own_key(tmp_path: Path,
                                                      backends: Backends) -> None:
    home = tmp_path / "home"
    (tmp_path / "features.py").write_text(PROJECT)
    rows = payments(SystemClock().now_us())
    csv = "payment_id,user,merchant,amount,ts\n" + "".join(
        f"{p},{u},{m},{a},{format_micros(t)}\n" for p, u, m, a, t in rows)
    run(backends, home, "topics", "create", "payments", "--schema",
        "payment_id:int64,user:string,merchant:string,amount:float64,ts:timestamp",
        "--key", "user", "--event-time", "ts", "--partitions", "3")
    run(backends, home, "produce", "payments", "-", "--format", "csv", input=csv)
    run(backends, home, "features", "apply")
    run(backends, home, "features", "run", "--idle-timeout", "0")
    for at in ((), ("--at", "now")):  # the online store, and recomputed from the log
        got = run(backends, home, "features", "get", "user=u1", "merchant=m2", "--set",
                  "checkout", "--request", '{"amount": 40.0}', *at)
        want = recount(rows, "u1", "m2", 40.0)
        table = {cells[0]: cells[1] for cells in (line.replace("│", " ").split()
                                                  for line in got.splitlines())
                 if len(cells) >= 2 and cells[0] in want}
        for name, value in want.items():
            if name != "amount":  # a request value, not a feature
                assert np.isclose(float(table[name]), value), (at, name, got)

    rng = np.random.default_rng(1)
    model = LogisticRegression()
    train = {name: rng.uniform(0.0, 20.0, 400) for name in INPUTS}
    model.learn(train, (train["amount_ratio"] > 2.0).astype(float))
    model.save(tmp_path / "model")
    with open_registry(backends.registry or home / "registry",
                       artifacts=home / "artifacts" if backends.registry else None) as registry:
        registry.register("fraud", tmp_path / "model")
        registry.promote("fraud", 1, actor="test", reason="first version")

    asked = {"r1": ("u1", "m2", 40.0), "r2": ("u4", "m0", 3.0), "r3": ("u0", "m1", 9.5)}
    env = {**backends.environment(home), "HEADWATER_PROJECT": str(tmp_path / "features.py")}
    with Server(home, "--model", "fraud", "--feature-set", "checkout", env=env) as server:
        answers = {}
        for rid, (user, merchant, amount) in asked.items():
            status, answers[rid] = server.post("/predict", {
                "entities": {"user": user, "merchant": merchant}, "request": {"amount": amount},
                "request_id": rid})
            assert status == 200, answers[rid]
        status, refused = server.post("/predict", {"entities": {"user": "u1"},
                                                   "request": {"amount": 1.0}})
        events = logged(backends, home, len(asked))

    assert status == 422, refused
    assert refused["error"]["field"] == "entities.merchant"
    for rid, (user, merchant, amount) in asked.items():
        want = recount(rows, user, merchant, amount)
        event = events[rid]
        served = msgspec.json.decode(event["features"])
        assert served.keys() == want.keys()
        for name, value in want.items():
            assert np.isclose(served[name], value), (rid, name, served[name], value)
        assert event["entity"] == user  # routed by the set's first entity
        assert msgspec.json.decode(event["entities"]) == {"user": user, "merchant": merchant}
        assert event["defaulted"] == ""
        assert event["missing"] == ""
        assert not answers[rid]["unknown_entity"]
        assert answers[rid]["missing"] == []
        assert answers[rid]["score"] == model.predict_one(served)
