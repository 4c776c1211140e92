"""The journey: a user's own export, through every seam, with ``headwater`` as separate
processes and HTTP on loopback, on the embedded default and on Redis + PostgreSQL.

The data is a shop's order export that was not made for Headwater: naive wall times of
the shop (``Asia/Kolkata``), integer customer and shop ids, a free-text column with a
gap, and one amount written with a decimal comma. The customer's features come from the
``orders`` topic; the shop's from ``shop_orders``, the same export keyed by shop (a
second entity). The path:

``produce`` (exit 3 on the bad row, the dead letter, then the fixed row) ->
``features apply`` / ``features run`` -> ``serve`` -> ``/predict`` -> ``POST /outcomes``
with explicit labels three hours after their predictions (in event time) ->
``labels run`` -> ``train --strategy continual`` -> the server hot-swaps -> ``/predict``
answers with the new version on the new feature values.

Every check is on values: the features served equal a recount of the CSV in plain
Python, each training example's label equals the outcome sent for it, and the version
answering is the one the trainer promoted, scoring as that version does in-process.
"""

from __future__ import annotations

import csv
import io
import re
import signal
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from headwater.errors import UnknownTopicError
from headwater.registry import open_registry
from headwater.time import format_micros, to_micros
from tests.orchestrator.test_supervisor import alive
from tests.processes import Backends, Server, environment, free_port, headwater, http, wait_for

SHOP_ZONE = ZoneInfo("Asia/Kolkata")  # the export's wall times: +05:30, no offset written
HOUR = timedelta(hours=1)
DAY_WINDOW = timedelta(days=1)

PROJECT = """
from headwater.features import Entity, Feature, FeatureSet, Sliding, StreamSource

customer = Entity("customer", key="customer_id")
shop = Entity("shop", key="shop_id")
# The export reaches the log up to a day late (a fixed row is appended after the rest).
orders = StreamSource.of("orders", allowed_lateness="1d")
shop_orders = StreamSource.of("shop_orders", allowed_lateness="1d")
day = Sliding.of("1d", hop="1h")
checkout = FeatureSet("checkout", (
    Feature.of("orders_1d", customer, orders, "count", window=day),
    Feature.of("spend_1d", customer, orders, "sum", column="amount", window=day),
    Feature.of("shop_orders_1d", shop, shop_orders, "count", window=day),
))
"""

# (order id, customer, shop, amount as the export writes it, payment, hours ago)
ORDERS = [
    (5001, 101, 7, "19.90", "card", 50.0),   # two days ago: out of every 1d window
    (5002, 102, 8, "5.00", "cash", 40.0),
    (5003, 103, 7, "42.00", "card", 28.0),   # 28 h ago; read as UTC it would be 22.5 h
    (5004, 101, 9, "7.25", "", 21.0),        # no payment method written
    (5005, 104, 8, "88.10", "upi", 20.0),
    (5006, 101, 7, "12.00", "card", 16.5),
    (5007, 102, 7, "3.40", "upi", 12.0),
    (5008, 105, 9, "61.00", "card", 9.0),
    (5009, 103, 8, "12,50", "cash", 5.0),    # the bad row: a decimal comma (line 10)
    (5010, 104, 9, "15.75", "card", 3.0),
    (5011, 101, 8, "30.00", "upi", 2.0),
    (5012, 105, 7, "8.80", "cash", 0.5),
]
BAD_LINE = 10  # the header is line 1
FIXED = (5009, 103, 8, "12.50", "cash", 5.0)
# Orders that come in while everything runs (a second export, minutes old).
LATER = [(5013, 101, 8, "45.00", "card", 0.2), (5014, 101, 8, "4.50", "upi", 0.1),
         (5015, 104, 9, "9.99", "card", 0.1)]
CUSTOMERS = (101, 102, 103, 104, 105)
SHOPS = (7, 8, 9)
LABEL_DELAY = timedelta(hours=3)  # a verdict comes three hours after the checkout


def export(rows: list[tuple[int, int, int, str, str, float]], now: datetime) -> str:
    """The rows as the shop's system writes them: naive local times, the amount as
    typed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["order_id", "customer_id", "shop_id", "amount", "payment", "created"])
    for order, customer, shop, amount, payment, hours_ago in rows:
        local = (now - hours_ago * HOUR).astimezone(SHOP_ZONE)
        writer.writerow([order, customer, shop, amount, payment,
                         local.strftime("%Y-%m-%d %H:%M:%S")])
    return out.getvalue()


def recount(files: list[Path], at: datetime) -> dict[str, dict[int, float]]:
    """The features at ``at`` counted again from the CSV files, in plain Python: rows
    whose amount does not parse are not orders; times are the shop's wall times."""
    orders: dict[int, float] = dict.fromkeys(CUSTOMERS, 0.0)
    spend: dict[int, float] = dict.fromkeys(CUSTOMERS, 0.0)
    per_shop: dict[int, float] = dict.fromkeys(SHOPS, 0.0)
    for path in files:
        for row in csv.DictReader(path.read_text().splitlines()):
            try:
                amount = float(row["amount"])
            except ValueError:
                continue
            age = at - datetime.fromisoformat(row["created"]).replace(tzinfo=SHOP_ZONE)
            # The window's start is aligned to its hop: keep clear of its last hour.
            assert not DAY_WINDOW - HOUR <= age <= DAY_WINDOW + HOUR, row
            if age < DAY_WINDOW:
                customer, shop = int(row["customer_id"]), int(row["shop_id"])
                orders[customer] += 1
                spend[customer] += amount
                per_shop[shop] += 1
    return {"orders_1d": orders, "spend_1d": spend, "shop_orders_1d": per_shop}


def features_of(counted: dict[str, dict[int, float]], customer: int,
                shop: int) -> dict[str, float]:
    return {"orders_1d": counted["orders_1d"][customer],
            "spend_1d": counted["spend_1d"][customer],
            "shop_orders_1d": counted["shop_orders_1d"][shop]}


class User:
    """One user's home, on one set of backends: runs ``headwater`` commands and reads
    the topics back."""

    def __init__(self, root: Path, backends: Backends) -> None:
        self.root = root
        self.home = root / "home"
        self.backends = backends
        self.env = {**backends.environment(self.home),
                    "HEADWATER_PROJECT": str(root / "features.py")}

    def run(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = headwater(self.home, *args, env=self.env)
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        return path

    def rows(self, topic: str) -> list[dict[str, Any]]:
        """Every event of ``topic`` (none while no command has created it yet)."""
        with self.backends.open_log(self.home) as log:
            try:
                return [row for fetched in log.replay(topic)
                        for row in fetched.batch.to_pylist()]
            except UnknownTopicError:
                return []

    def predictions(self, ids: set[str], topic: str = "predictions") -> dict[str, Any]:
        """The logged predictions of ``ids`` (polled: the server logs in the background)."""
        found: dict[str, Any] = {}

        def logged() -> bool:
            found.update({r["request_id"]: r for r in self.rows(topic)
                          if r["request_id"] in ids})
            return set(found) == ids

        wait_for(logged, 30, f"the predictions {sorted(ids - set(found))} in {topic}")
        return found


@pytest.fixture
def user(tmp_path: Path, backends: Backends) -> User:
    you = User(tmp_path, backends)
    you.write("features.py", PROJECT)
    return you


def produce_the_export(user: User, now: datetime) -> list[Path]:
    """The export, into both topics: the bad row refused loudly, then fixed."""
    orders = user.write("orders.csv", export(ORDERS, now))
    refused = user.run("produce", "orders", str(orders), "--create", "--key", "customer_id",
                       "--event-time", "created", "--timezone", "Asia/Kolkata", code=3)
    assert f"1 of {len(ORDERS)} rows rejected, kept in orders.dlq" in refused.stderr
    dead = user.rows("orders.dlq")
    assert [(d["index"], d["field"], d["reason"]) for d in dead] == [
        (BAD_LINE, "amount", "expected float64, got '12,50'")]
    assert msgspec.json.decode(dead[0]["payload"])["customer_id"] == "103"
    assert len(user.rows("orders")) == len(ORDERS) - 1  # the others are in
    fixed = user.write("orders-fixed.csv", export([FIXED], now))
    user.run("produce", "orders", str(fixed), "--timezone", "Asia/Kolkata")
    # The same export keyed by shop: this time the bad row is let through knowingly.
    allowed = user.run("produce", "shop_orders", str(orders), "--create", "--key", "shop_id",
                       "--event-time", "created", "--timezone", "Asia/Kolkata",
                       "--allow-rejects")
    assert "warning: 1 of" in allowed.stderr
    user.run("produce", "shop_orders", str(fixed), "--timezone", "Asia/Kolkata")
    # Integer keys, times read in the shop's zone.
    stored = {r["order_id"]: r for r in user.rows("orders")}
    assert sorted(stored) == sorted(o[0] for o in ORDERS)
    assert stored[5003]["customer_id"] == 103
    assert to_micros(stored[5003]["created"]) == to_micros(  # 28 hours ago, to the second
        (now - 28 * HOUR).replace(microsecond=0))
    return [orders, fixed]


@pytest.mark.slow
def test_a_users_export_goes_the_whole_way(user: User) -> None:
    now = datetime.now(tz=SHOP_ZONE)
    files = produce_the_export(user, now)
    user.run("features", "apply")
    user.run("features", "run", "--idle-timeout", "0.5")
    user.run("models", "register", "returns", "--builtin", "logistic", "--promote",
             "--reason", "start the loop")

    with Server(user.home, "--model", "returns", "--feature-set", "checkout",
                "--poll-ms", "200", env=user.env) as server:
        # -- predictions on the features the engine computed ---------------------------
        requests = [{"entities": {"customer": c, "shop": s}, "request_id": f"c{c}-s{s}"}
                    for c in CUSTOMERS for s in SHOPS]
        requests.append({"entities": {"customer": "999", "shop": 7}, "request_id": "new"})
        status, answer = server.post("/predict", {"requests": requests})
        assert status == 200, answer
        first = {p["request_id"]: p for p in answer["predictions"]}
        assert {p["version"] for p in first.values()} == {1}
        assert first["new"]["unknown_entity"] is True
        assert not any(first[r["request_id"]]["unknown_entity"] for r in requests[:-1])
        counted = recount(files, datetime.now(tz=SHOP_ZONE))
        logged = user.predictions(set(first))
        for c in CUSTOMERS:
            for s in SHOPS:
                row = logged[f"c{c}-s{s}"]
                assert row["entity"] == str(c)  # an integer key is its decimal text
                assert msgspec.json.decode(row["features"]) == pytest.approx(
                    features_of(counted, c, s), rel=1e-12), (c, s)
        assert msgspec.json.decode(logged["new"]["features"]) == {
            "orders_1d": 0.0, "spend_1d": 0.0, "shop_orders_1d": counted["shop_orders_1d"][7]}

        # -- the verdicts, three hours later in event time -----------------------------
        sent: dict[str, tuple[float, int]] = {}
        outcomes = []
        for c in CUSTOMERS:
            for s in SHOPS:
                rid = f"c{c}-s{s}"
                label = 1.0 if counted["spend_1d"][c] > 40 else 0.0
                at = to_micros(logged[rid]["ts"]) + int(LABEL_DELAY.total_seconds() * 1e6)
                sent[rid] = (label, at)
                outcomes.append({"request_id": rid, "entity": c, "label": label,
                                 "ts": format_micros(at)})
        assert server.post("/outcomes", {"outcomes": outcomes}) == (
            200, {"appended": len(outcomes), "duplicates": 0})

        # With the default 10m window the verdicts are too late: said, and no example
        # (a trial joiner of its own, so the real one below starts afresh).
        trial = user.run("labels", "run", "--state-dir", str(user.root / "trial"), "--group",
                         "trial", "--examples", "trial_examples", "--idle-timeout", "0.5")
        assert (f"{len(sent)} labels arrived after their prediction's 10m window had closed"
                in " ".join(trial.stderr.split())), trial.stderr
        assert user.rows("trial_examples") == []
        joined = user.run("labels", "run", "--window", "6h", "--idle-timeout", "0.5")
        assert (f"{len(sent)} examples ({len(sent)} joined, 0 timed out); 0 late"
                in " ".join(joined.stderr.split())), joined.stderr
        examples = {e["request_id"]: e for e in user.rows("training_examples")}
        assert set(examples) == set(sent)
        for rid, (label, at) in sent.items():
            example = examples[rid]
            assert (example["label"], example["source"]) == (label, "explicit"), rid
            assert to_micros(example["label_time"]) == at
            assert example["features"] == logged[rid]["features"]  # as served
            assert (example["model"], example["version"]) == ("returns", 1)

        # -- continual training, and the server swaps ----------------------------------
        trained = user.run("train", "--model", "returns", "--strategy", "continual",
                           "--volume", str(len(sent)), "--gate-min-examples", str(len(sent)),
                           "--idle-timeout", "0.5")
        promoted = re.search(r"returns v(\d+) \(parent: 1\) on (\d+) examples .*: promoted",
                             " ".join(trained.stdout.split()))
        assert promoted is not None, (trained.stdout, trained.stderr)
        assert int(promoted.group(2)) == len(sent)
        version = int(promoted.group(1))
        with open_registry(settings=user.backends.settings(user.home)) as registry:
            assert registry.get("returns", "champion").version == version
            model = registry.load("returns", version).model

        # -- new orders while it all runs: the engine writes, the server follows -------
        later = user.write("orders-later.csv", export(LATER, now))
        for topic in ("orders", "shop_orders"):
            user.run("produce", topic, str(later), "--timezone", "Asia/Kolkata")
        user.run("features", "run", "--idle-timeout", "0.5")
        files.append(later)
        counted = recount(files, datetime.now(tz=SHOP_ZONE))
        expected = features_of(counted, 101, 8)
        assert expected["orders_1d"] == 5.0  # 3 in the day before, and 2 new
        tries = iter(range(10_000))
        answered: dict[str, Any] = {}

        def swapped_and_fresh() -> bool:
            body = {"entities": {"customer": 101, "shop": 8}, "request_id": f"again-{next(tries)}"}
            status, got = server.post("/predict", body)
            assert status == 200, got
            answered.update(got)
            return bool(got["version"] == version and
                        got["score"] == pytest.approx(model.predict_one(expected), rel=1e-12))

        wait_for(swapped_and_fresh, 30, "the new version on the new values")
        again = user.predictions({answered["request_id"]})[answered["request_id"]]
        assert msgspec.json.decode(again["features"]) == pytest.approx(expected, rel=1e-12)
        assert again["version"] == version
        assert model.predict_one(expected) != 0.5  # it learnt something
    assert "Traceback" not in server.printed()


def _supervised(user: User, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    """``headwater run`` in its own process, its standard error read as it comes."""
    process = subprocess.Popen(
        [sys.executable, "-m", "headwater", "run", "--model", "returns", "--feature-set",
         "checkout", "--port", str(port), "--predictions-topic", "checkout_predictions",
         "--window", "6h", "--every", "1h"],
        env=environment(user.home, user.env), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    stream = process.stderr
    assert stream is not None
    threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")),
                     daemon=True).start()
    return process, lines


def _pids(lines: list[str]) -> dict[str, int]:
    return {name: int(pid) for name, pid in re.findall(r"(\w+): started \(pid (\d+)\)",
                                                       "".join(lines))}


def _wait_until_serving(process: subprocess.Popen[str], lines: list[str], base: str) -> None:
    wait_for(lambda: http("GET", f"{base}/ready")[0] == 200 or process.poll() is not None,
             120, "the server")
    assert process.poll() is None, "".join(lines)
    wait_for(lambda: len(_pids(lines)) == 4, 30, "four components")


def _wait_until_running(logs: Path, starts: int) -> None:
    """Wait until each component has said, for the ``starts``-th time (the logs are
    appended to), that it runs: stopped before, it would be stopped while starting."""
    for name, running in (("features", "engine running"), ("labels", "joining"),
                          ("trainer", "trainer of returns running")):
        def said(log: Path = logs / f"{name}.log", running: str = running) -> bool:
            return log.exists() and log.read_text().count(running) >= starts

        wait_for(said, 60, f"{name} running")


def _ask_until_served(user: User, base: str, prefix: str) -> str:
    """Predict for customer 102 until the value the engine (started with the server)
    computes is the one served and logged; the request id of that prediction."""
    asked: list[str] = []

    def served() -> bool:
        asked.append(f"{prefix}-{len(asked)}")
        status, answer = http("POST", f"{base}/predict", {
            "entities": {"customer": 102, "shop": 7}, "request_id": asked[-1]})
        assert status == 200, answer
        logged = user.predictions({asked[-1]}, topic="checkout_predictions")[asked[-1]]
        return bool(msgspec.json.decode(logged["features"])["orders_1d"] == 1.0)

    wait_for(served, 60, "the engine's value served")
    return asked[-1]


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.mark.slow
def test_the_supervised_loop_stops_on_sigterm_and_starts_again(user: User) -> None:
    now = datetime.now(tz=SHOP_ZONE)
    orders = user.write("orders.csv", export(ORDERS, now))
    for topic, key in (("orders", "customer_id"), ("shop_orders", "shop_id")):
        user.run("produce", topic, str(orders), "--create", "--key", key, "--event-time",
                 "created", "--timezone", "Asia/Kolkata", "--allow-rejects")
    user.run("models", "register", "returns", "--builtin", "logistic", "--promote",
             "--reason", "start the loop")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    for starts, attempt in enumerate(("first", "second"), start=1):
        process, lines = _supervised(user, port)
        try:
            _wait_until_serving(process, lines, base)
            pids = _pids(lines)
            _wait_until_running(user.home / "run", starts)
            # The server logs where it was told, and the joiner reads it from there.
            rid = _ask_until_served(user, base, attempt)
            assert http("POST", f"{base}/outcomes", {"request_id": rid, "entity": 102,
                                                      "label": 1.0})[0] == 200

            def joined(rid: str = rid) -> bool:
                return any(e["request_id"] == rid for e in user.rows("training_examples"))

            wait_for(joined, 60, "the joiner to join the outcome")
            assert _stop(process) == 0, "".join(lines)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        said = "".join(lines)
        assert all(not alive(pid) for pid in pids.values()), said
        for name in ("features", "server", "labels", "trainer"):
            assert f"{name}: stopped (exit 0)" in said, said
        assert "Traceback" not in said
