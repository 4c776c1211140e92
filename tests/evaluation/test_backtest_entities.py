"""``headwater eval backtest --feature-set`` over features of two entities, run as a
separate process: each example's user and merchant are looked up by their own keys (as
the prediction log recorded them), as known at the prediction time, the request values
are kept as served, and the metrics are those of the same backtest over features counted
in plain Python. Predictions that did not record their entities' keys are refused."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa

from headwater.evaluation import Examples, backtest, walk_forward
from headwater.labels import TRAINING_EXAMPLES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.labels.schema import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from headwater.log import Schema, open_log
from headwater.models import LogisticRegression
from headwater.registry import open_registry
from headwater.reports.document import format_cell
from headwater.time import ManualClock
from tests.processes import Backends, headwater

HOUR = 3_600_000_000
START = 1_700_000_000_000_000
PROJECT = """
import numpy as np
from headwater.features import DerivedFeature, Entity, Feature, FeatureSet, StreamSource

user = Entity("user", key="user")
merchant = Entity("merchant", key="merchant")
payments = StreamSource.of("payments")
checkout = FeatureSet("checkout", (
    Feature.of("user_payments", user, payments, "count"),
    Feature.of("merchant_payments", merchant, payments, "count"),
    DerivedFeature("share", ("user_payments", "merchant_payments"),
                   lambda c: c["user_payments"] / np.fmax(c["merchant_payments"], 1.0)),
))
"""


def test_each_entity_is_looked_up_by_its_own_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "features.py").write_text(PROJECT)
    settings = Backends().settings(home)
    rng = np.random.default_rng(7)
    # Payments keyed by user in two partitions, known (appended) one to two hours after
    # they happened; some merchants are far busier than others.
    n = 1_500
    times = START + np.sort(rng.integers(0, 48 * HOUR, size=n))
    users = np.array([f"u{k}" for k in rng.integers(0, 40, size=n)])
    merchants = np.array([f"m{k}" for k in rng.choice(8, size=n, p=[.4, .2, .1, .1, .1, .05,
                                                                   .03, .02])])
    appended = (times // HOUR + 2) * HOUR
    clock = ManualClock(START)
    with open_log(settings.log_location, settings=settings, clock=clock) as log:
        log.create_topic("payments", Schema.of(
            {"user": "string", "merchant": "string", "ts": "timestamp"}, key="user",
            event_time="ts"), partitions=2)
        for at in np.unique(appended).tolist():
            clock.advance(at - clock.now_us())
            hour = appended == at
            log.append("payments", pa.table({
                "user": users[hour], "merchant": merchants[hour],
                "ts": pa.array(times[hour], pa.timestamp("us", "UTC"))}))

        # Requests of a user at a merchant; the label follows the merchant's payments
        # known then. What was served is stale (zeros): the backtest must recompute.
        m = 800
        predicted = START + np.sort(rng.integers(4 * HOUR, 48 * HOUR, size=m))
        who = [f"u{k}" for k in rng.integers(0, 40, size=m)]
        where = [f"m{k}" for k in rng.integers(0, 8, size=m)]
        amount = rng.uniform(1.0, 100.0, size=m).round(2)
        rids = [f"r{i}" for i in range(m)]
        mine = [int(((users == u) & (appended <= t)).sum()) for u, t in zip(who, predicted,
                                                                          strict=True)]
        theirs = [int(((merchants == w) & (appended <= t)).sum())
                  for w, t in zip(where, predicted, strict=True)]
        y = (np.array(theirs) > np.median(theirs)).astype(float)
        served = [msgspec.json.encode({"user_payments": 0.0, "merchant_payments": 0.0,
                                       "share": 0.0, "amount": float(a)}) for a in amount]
        stamp = pa.array(predicted, pa.int64()).cast(pa.timestamp("us", "UTC"))
        log.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA)
        log.append(PREDICTIONS_TOPIC, pa.table({
            "request_id": rids, "entity": who, "features": pa.array(served, pa.binary()),
            "model": ["fraud"] * m, "version": pa.array([1] * m, pa.int64()),
            "score": [0.5] * m, "arm": ["champion"] * m, "served": [True] * m,
            "missing": [""] * m, "ts": stamp, "propensity": [1.0] * m,
            "latency_ms": [0.1] * m, "defaulted": [""] * m, "update": [None] * m,
            "entities": [msgspec.json.encode({"user": u, "merchant": w}).decode()
                         for u, w in zip(who, where, strict=True)],
        }, schema=PREDICTIONS_SCHEMA.arrow_schema()))
        log.create_topic(TRAINING_EXAMPLES_TOPIC, TRAINING_EXAMPLES_SCHEMA)
        log.append(TRAINING_EXAMPLES_TOPIC, pa.table({
            "request_id": rids, "entity": who, "features": pa.array(served, pa.binary()),
            "model": ["fraud"] * m, "version": pa.array([1] * m, pa.int64()),
            "score": [0.5] * m, "arm": ["champion"] * m, "served": [True] * m,
            "label": y, "source": ["outcome"] * m, "prediction_time": stamp,
            "label_time": pa.array(predicted + 60_000_000, pa.int64()).cast(
                pa.timestamp("us", "UTC")),
        }, schema=TRAINING_EXAMPLES_SCHEMA.arrow_schema()))

    model = LogisticRegression()
    model.learn({"user_payments": np.array([1.0, 2.0] * 10),
                 "merchant_payments": np.array([5.0, 50.0] * 10),
                 "share": np.array([0.2, 0.04] * 10), "amount": np.array([10.0, 20.0] * 10)},
                np.array([0, 1] * 10))
    model.save(tmp_path / "model")
    with open_registry(settings.registry_location, settings=settings) as registry:
        registry.register("fraud", tmp_path / "model")
        registry.promote("fraud", 1, actor="test", reason="the first")

    env = {"HEADWATER_PROJECT": str(tmp_path / "features.py")}
    args = ("eval", "backtest", "fraud", "--train", "12h", "--test", "12h", "--feature-set",
            "checkout", "--metrics", "log_loss,roc_auc")
    done = headwater(home, *args, env=env)
    assert done.returncode == 0, done.stderr

    # The same backtest over the features counted here, the request's amount as served.
    share = np.array(mine, float) / np.fmax(np.array(theirs, float), 1.0)
    examples = Examples({"user_payments": np.array(mine, float),
                         "merchant_payments": np.array(theirs, float), "share": share,
                         "amount": amount}, y, prediction_time=predicted,
                        label_time=predicted + 60_000_000)
    folds = walk_forward(int(predicted.min()), int(predicted.max()) + 1, train=12 * HOUR,
                         test=12 * HOUR)
    want = backtest(LogisticRegression().clone, examples, folds,
                    metrics=("log_loss", "roc_auc")).pooled
    rows = [[c.strip() for c in line.split("│") if c.strip()]
            for line in done.stdout.splitlines()]
    pooled = {r[0]: r[1] for r in rows if len(r) == 2 and r[0] in want}
    assert pooled == {name: format_cell(value) for name, value in want.items()}, done.stdout
    assert want["roc_auc"] > 0.9  # the merchant's count, looked up by its own key, tells

    # Predictions that did not record their entities' keys cannot be looked up.
    refused = headwater(home, *args, "--predictions", "elsewhere", env=env)
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert "does not record its entities' keys" in refused.stderr
    assert "user, merchant" in refused.stderr
