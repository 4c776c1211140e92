"""``headwater eval``: each command on small synthetic traffic in a temporary home."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from headwater.config import Settings
from headwater.evaluation import assign
from headwater.features import Entity, Feature, Lifetime, StreamSource
from headwater.features.timetravel import values_at_times
from headwater.labels import TRAINING_EXAMPLES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.log import Schema, open_log
from headwater.models import LogisticRegression
from headwater.registry import open_registry
from headwater.serving import Split
from headwater.time import ManualClock
from tests.cli.helpers import Cli

HOUR = 3_600_000_000
START = 1_700_000_000_000_000


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _traffic(mode: str, n: int = 3_000, seed: int = 0) -> pa.Table:
    """Training examples: ``shadow`` (every request served by the champion and shadowed
    by the challenger) or ``split`` (a sticky 50/50 split, served rows only)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (x + rng.normal(scale=0.5, size=n) > 0).astype(float)
    t = START + np.sort(rng.integers(0, 48 * HOUR, size=n))
    entities = [f"u{k}" for k in rng.integers(0, 500, size=n)]
    features = [msgspec.json.encode({"x": float(v)}) for v in x]
    champion, challenger = _sigmoid(1.5 * x), _sigmoid(2.5 * x)
    if mode == "shadow":
        arms = ["champion"] * n + ["challenger"] * n
        served = [True] * n + [False] * n
        scores = np.concatenate([champion, challenger])
        index = np.concatenate([np.arange(n), np.arange(n)])
    else:
        arms = assign(entities, Split({"champion": 1, "challenger": 1}, salt="exp"))
        served = [True] * n
        scores = np.where(np.array(arms) == "champion", champion, challenger)
        index = np.arange(n)
    return pa.table({
        "request_id": [f"r{i}" for i in index], "entity": [entities[i] for i in index],
        "features": pa.array([features[i] for i in index], pa.binary()),
        "model": ["fraud"] * len(index),
        "version": [1 if a == "champion" else 2 for a in arms],
        "score": scores, "arm": arms, "served": served, "label": y[index],
        "source": ["outcome"] * len(index),
        "prediction_time": pa.array(t[index], pa.timestamp("us", "UTC")),
        "label_time": pa.array(t[index] + 60_000_000, pa.timestamp("us", "UTC")),
    })


@pytest.fixture
def home(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path)
    with cli.open() as log:
        log.create_topic(TRAINING_EXAMPLES_TOPIC, TRAINING_EXAMPLES_SCHEMA)
    model = LogisticRegression()
    model.learn({"x": np.array([-1.0, 1.0] * 20)}, np.array([0, 1] * 20))
    model.save(tmp_path / "model")
    with open_registry(tmp_path / "registry", settings=Settings()) as registry:
        registry.register("fraud", tmp_path / "model")
        registry.promote("fraud", 1, actor="test", reason="the first")
    return cli


def _append(cli: Cli, table: pa.Table) -> None:
    with cli.open() as log:
        log.append(TRAINING_EXAMPLES_TOPIC, table)


def _html(cli: Cli, name: str) -> str:
    return (cli.root / name).read_text()


def test_prequential(home: Cli) -> None:
    _append(home, _traffic("shadow"))
    result = home.ok("eval", "prequential", "fraud", "--registry", str(home.root / "registry"),
                     "--window", "500", "--html", str(home.root / "preq.html"))
    assert "Prequential evaluation of fraud v1" in result.stdout
    assert "roc_auc" in result.stdout
    assert "fraud v1: roc_auc over time" in _html(home, "preq.html")
    home.ok("eval", "prequential", "fraud", "--registry", str(home.root / "registry"),
            "--learn-every", "1h")


def test_backtest(home: Cli) -> None:
    _append(home, _traffic("shadow"))
    result = home.ok("eval", "backtest", "fraud", "--registry", str(home.root / "registry"),
                     "--train", "12h", "--test", "6h", "--html", str(home.root / "bt.html"))
    assert "Backtest of fraud v1" in result.stdout
    assert "<svg" in _html(home, "bt.html")
    bad = home.fails(2, "eval", "backtest", "fraud", "--registry",
                     str(home.root / "registry"), "--train", "soon", "--test", "6h")
    assert "--train" in bad.stderr


def test_shadow(home: Cli) -> None:
    _append(home, _traffic("shadow"))
    result = home.ok("eval", "shadow", "--resamples", "100", "--html",
                     str(home.root / "shadow.html"))
    assert "challenger v2 against champion v1" in result.stdout
    assert "agreement" in result.stdout
    assert "minus the champion" in _html(home, "shadow.html")
    home.fails(2, "eval", "shadow", "--method", "magic")


def test_ab(home: Cli) -> None:
    _append(home, _traffic("split", n=4_000))
    result = home.ok("eval", "ab", "--outcome", "log_loss", "--html", str(home.root / "ab.html"))
    assert "A/B: challenger against champion" in result.stdout
    assert "Decision:" in result.stdout
    assert _html(home, "ab.html").count("<svg") == 2
    missing = home.fails(1, "eval", "ab", "--treatment", "c9")
    assert "'c9'" in missing.stderr


def test_canary(home: Cli) -> None:
    _append(home, _traffic("split"))
    result = home.ok("eval", "canary", "--window", "6h", "--min-requests", "50",
                     "--min-labels", "50", "--max-psi", "5", "--max-metric-loss", "1",
                     "--html", str(home.root / "canary.html"))
    assert "Canary: challenger against champion" in result.stdout
    assert "promoted" in result.stdout
    assert "score_psi by window" in _html(home, "canary.html")
    home.fails(2, "eval", "canary", "--steps", "5,1")


def test_an_empty_topic_and_an_empty_period(home: Cli) -> None:
    empty = home.fails(1, "eval", "shadow")
    assert "empty" in empty.stderr
    _append(home, _traffic("shadow", n=100))
    late = home.fails(1, "eval", "shadow", "--since", "2100-01-01T00:00:00+00:00")
    assert "period" in late.stderr


PROJECT = '''
from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource

user = Entity("user", key="entity")
payments = StreamSource.of("payments")
spend = Feature.of("spend", user, payments, "sum", column="amount", window=Lifetime())
count = Feature.of("payments", user, payments, "count", window=Lifetime())
checkout = FeatureSet("checkout", (spend, count))
'''


def test_backtest_with_features_recomputed_as_known_at_prediction_time(home: Cli) -> None:
    """Payments appended (known) one to two hours after they happened: the features a
    backtest recomputes are those known at each prediction time."""
    traffic = _traffic("shadow", n=1_000)
    _append(home, traffic)
    (home.root / "features.py").write_text(PROJECT)
    rng = np.random.default_rng(4)
    times = START + np.sort(rng.integers(0, 48 * HOUR, size=2_000))
    users = np.array([f"u{k}" for k in rng.integers(0, 500, size=2_000)])
    appended = (times // HOUR + 2) * HOUR
    clock = ManualClock(START)
    with open_log(str(home.log_dir), settings=Settings(), clock=clock) as log:
        log.create_topic("payments", Schema.of(
            {"entity": "string", "amount": "float64", "ts": "timestamp"}, key="entity",
            event_time="ts"))
        for at in np.unique(appended).tolist():  # each hour's payments, known later
            clock.advance(at - clock.now_us())
            hour = appended == at
            log.append("payments", pa.table({
                "entity": users[hour], "amount": np.ones(hour.sum()),
                "ts": pa.array(times[hour], pa.timestamp("us", "UTC"))}))
    result = home.ok("eval", "backtest", "fraud", "--registry", str(home.root / "registry"),
                     "--train", "12h", "--test", "12h", "--feature-set", "checkout",
                     "--project", str(home.root / "features.py"))
    assert "Backtest of fraud v1" in result.stdout
    # what the backtest reads: each count as known at the prediction time
    rows = traffic.filter(pa.array(np.asarray(traffic.column("served"), bool)))
    predicted = np.asarray(rows.column("prediction_time").cast(pa.int64()))[::37]
    entity = rows.column("entity").to_pylist()[::37]
    with open_log(str(home.log_dir), settings=Settings()) as log:
        frame = values_at_times(log, [COUNT], entity, predicted.tolist())
    got = [v or 0 for v in frame.column("payments").to_pylist()]
    want = [int(((users == u) & (appended <= t)).sum()) for u, t in zip(entity, predicted,
                                                                       strict=True)]
    assert got == want
    assert any(want)


COUNT = Feature.of("payments", Entity("user", key="entity"), StreamSource.of("payments"),
                   "count", window=Lifetime())


def test_the_bandit_command_is_in_the_group(home: Cli) -> None:
    result = home.ok("eval", "bandit", "--steps", "2000", "--drift-at", "1000", "--batch", "50")
    assert "ucb1" in result.stdout
