"""Reproducing a version from its lineage: replay the slice, compare with the record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from typer.testing import CliRunner

from headwater.cli import app
from headwater.config import Settings
from headwater.errors import OffsetOutOfRangeError, ValidationError
from headwater.labels import TRAINING_EXAMPLES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.log import Log, Schema, open_log
from headwater.models import LogisticRegression, Model, load_model, train_on
from headwater.registry import (
    Lineage,
    ModelRegistry,
    ModelVersion,
    TrainingSlice,
    flatten_params,
    open_registry,
    reproduce,
    training_metrics,
    training_slice,
)
from headwater.testing import MemoryBackend
from headwater.time import ManualClock
from tests.registry.harness import START_US

TOPIC = TRAINING_EXAMPLES_TOPIC
Ranges = dict[str, dict[int, tuple[int, int]]]


def examples(n: int, seed: int, start_us: int = START_US) -> list[dict[str, Any]]:
    """Training examples as the label joiner writes them: features as served, in JSON."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        x = float(rng.normal())
        city = str(rng.choice(["oslo", "lima", "pune"]))
        label = float(x + (city == "oslo") + rng.normal(scale=0.3) > 0.5)
        rows.append({
            "request_id": f"r{seed}-{i}", "entity": f"u{i % 17}",
            "features": msgspec.json.encode({"x": x, "n": i % 5, "city": city}),
            "model": "churn", "version": 1, "score": 0.5, "arm": "champion",
            "served": i % 10 != 9, "label": label, "source": "outcome",
            "prediction_time": start_us + i * 1_000, "label_time": start_us + i * 1_000 + 500})
    return rows


def fill(log: Log, seed: int) -> None:
    log.create_topic(TOPIC, TRAINING_EXAMPLES_SCHEMA, partitions=2)
    log.append(TOPIC, examples(120, seed))
    log.append(TOPIC, examples(80, seed + 100, START_US + 10_000_000))


def halves(log: Log) -> tuple[Ranges, Ranges]:
    """The first append's offsets of each partition, then the second's."""
    first: dict[int, tuple[int, int]] = {}
    second: dict[int, tuple[int, int]] = {}
    for p in range(2):
        times = [t.as_py() for f in log.replay(TOPIC, [p]) for t in f.batch.column("label_time")]
        cut = sum(1 for t in times if t.timestamp() * 1e6 < START_US + 10_000_000)
        first[p], second[p] = (0, cut), (cut, len(times))
    return {TOPIC: first}, {TOPIC: second}


def train(registry: ModelRegistry, log: Log, model: Model, ranges: Ranges, tmp: Path, *,
          parent: int | None, name: str = "churn",
          metrics: tuple[str, ...] = ("auc", "logloss")) -> ModelVersion:
    """What a trainer does: read the slice, train, record the slice with the version."""
    training, batch = training_slice(log, ranges)
    train_on(model, batch, from_scratch=parent is None)
    directory = tmp / f"{name}-{len(list(tmp.glob(f'{name}-*')))}"
    model.save(directory)
    return registry.register(name, directory, lineage=Lineage(
        parent=parent, training=training, hyperparameters=flatten_params(model.params()),
        metrics=training_metrics(model, batch, metrics)))


@pytest.fixture
def log() -> Log:
    clock = ManualClock(START_US)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    fill(log, seed=1)
    return log


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    with open_registry(tmp_path / "registry", settings=Settings(fsync="never"),
                       clock=ManualClock(START_US)) as registry:
        yield registry


@pytest.fixture
def trained(registry: ModelRegistry, log: Log, tmp_path: Path) -> ModelRegistry:
    """churn v1 from scratch on the first half, v2 from v1 on the second."""
    first, second = halves(log)
    train(registry, log, LogisticRegression(alpha=0.5, block=8), first, tmp_path, parent=None)
    v1 = load_model(registry.checkout("churn", 1))
    train(registry, log, v1, second, tmp_path, parent=1)
    return registry


def test_a_slice_records_where_and_what(log: Log) -> None:
    first, _ = halves(log)
    training, batch = training_slice(log, first)
    assert sorted(batch.features) == ["city", "n", "x"]
    assert batch.features["city"].dtype.kind == "U"
    assert training.examples == batch.rows == 108  # 120 rows, every tenth only shadowed
    assert training.event_time_start == START_US + 500
    assert training.event_time_end == START_US + 119 * 1_000 + 501
    assert [r.partition for r in training.topics[0].ranges] == [0, 1]
    times = np.diff(np.array([e["label_time"] for e in examples(120, 1) if e["served"]]))
    assert (times > 0).all()  # slice order is event-time order across partitions
    assert training.examples_sha256 is not None


def test_versions_trained_on_recorded_slices_reproduce(trained: ModelRegistry,
                                                       log: Log) -> None:
    for version, parent in ((1, None), (2, 1)):
        result = reproduce(trained, log, "churn", version)
        assert result.verdict == "match", result.failed
        assert result.mode == "artifact"
        assert result.parent == parent
        names = {c.name for c in result.checks if c.decisive}
        assert {"examples", "examples_sha256", "event_time", "artifact",
                "hyperparameter alpha"} <= names
        assert all(c.ok for c in result.checks)


def test_different_data_in_the_log_is_a_mismatch(trained: ModelRegistry) -> None:
    other = Log(MemoryBackend())
    fill(other, seed=7)  # same topic, same offsets, other examples
    result = reproduce(trained, other, "churn", 2)
    assert result.verdict == "mismatch"
    assert {c.name for c in result.failed} >= {"examples_sha256", "artifact"}


def test_an_artifact_not_trained_on_its_slice_is_a_mismatch(trained: ModelRegistry, log: Log,
                                                             tmp_path: Path) -> None:
    recorded = trained.get("churn", 2).lineage
    model = load_model(trained.checkout("churn", 1))
    model.learn({"x": np.array([1.0, -1.0]), "n": np.array([0.0, 1.0]),
                 "city": np.array(["oslo", "lima"])}, np.array([1, 0]))  # one step more
    _, second = halves(log)
    _, batch = training_slice(log, second)
    train_on(model, batch, from_scratch=False)
    model.save(tmp_path / "tampered")
    trained.register("churn", tmp_path / "tampered", lineage=recorded)
    result = reproduce(trained, log, "churn", 3)
    assert result.verdict == "mismatch"
    assert [c.name for c in result.failed] == ["artifact"]
    assert not reproduce(trained, log, "churn", 3, mode="metrics",
                         tolerance=1e-12).matches


def test_changed_hyperparameters_are_a_mismatch(registry: ModelRegistry, log: Log,
                                                tmp_path: Path) -> None:
    first, _ = halves(log)
    training, batch = training_slice(log, first)
    model = LogisticRegression(alpha=0.5)
    model.fit(batch.features, batch.y)
    model.save(tmp_path / "m")
    registry.register("churn", tmp_path / "m", lineage=Lineage(
        training=training, hyperparameters={"alpha": 0.25}))
    result = reproduce(registry, log, "churn", 1)
    assert [c.name for c in result.failed] == ["hyperparameter alpha"]


def test_a_model_that_is_not_deterministic_is_judged_by_its_metrics(
        registry: ModelRegistry, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import SGDClassifier  # type: ignore[import-untyped]

    from headwater.models.sklearn import SklearnModel

    # the adapter reads numbers only: here a topic of plain feature columns
    log = Log(MemoryBackend())
    log.create_topic("numbers", Schema.of({"user": "string", "x": "float64", "n": "int64",
                                           "label": "float64", "ts": "timestamp"},
                                          key="user", event_time="ts"))
    rows = []
    for row in examples(120, 3):
        served = msgspec.json.decode(row["features"])
        rows.append({"user": row["entity"], "x": served["x"], "n": served["n"],
                     "label": row["label"], "ts": row["label_time"]})
    log.append("numbers", rows)
    ranges = {"numbers": {0: (0, 120)}}
    model = SklearnModel(SGDClassifier(loss="log_loss", random_state=0))
    version = train(registry, log, model, ranges, tmp_path, parent=None, name="sgd")
    result = reproduce(registry, log, "sgd", version.version)
    assert result.mode == "metrics"
    assert result.verdict == "match", result.checks
    assert {c.name for c in result.checks if c.decisive} >= {"metric auc", "metric logloss"}
    assert not next(c for c in result.checks if c.name == "artifact").decisive
    bare = train(registry, log, model.clone(), ranges, tmp_path, parent=None, name="sgd",
                 metrics=())
    assert reproduce(registry, log, "sgd", bare.version).verdict == "unverifiable"


def test_what_cannot_be_replayed_is_named(trained: ModelRegistry, log: Log,
                                          tmp_path: Path) -> None:
    source = tmp_path / "bare"
    LogisticRegression().save(source)
    trained.register("churn", source)
    with pytest.raises(ValidationError, match="no training slice") as raised:
        reproduce(trained, log, "churn", 3)
    assert raised.value.field == "lineage.training"
    short = Log(MemoryBackend())
    short.create_topic(TOPIC, TRAINING_EXAMPLES_SCHEMA, partitions=2)
    short.append(TOPIC, examples(20, 1))
    with pytest.raises(OffsetOutOfRangeError, match="not all in the log"):
        reproduce(trained, short, "churn", 1)
    with pytest.raises(ValidationError) as raised:
        reproduce(trained, log, "churn", 1, tolerance=-1.0)
    assert raised.value.field == "tolerance"


def test_the_reproduce_command(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"), fsync="never")
    with open_log(str(tmp_path / "log"), settings=settings) as log, open_registry(
            tmp_path / "registry", settings=settings) as registry:
        fill(log, seed=1)
        first, second = halves(log)
        train(registry, log, LogisticRegression(), first, tmp_path, parent=None)
        lineage = registry.get("churn", 1).lineage
        assert lineage.training is not None
        wrong = msgspec.structs.replace(lineage, training=TrainingSlice(
            topics=training_slice(log, second)[0].topics, examples=lineage.training.examples,
            examples_sha256=lineage.training.examples_sha256))
        registry.register("churn", registry.checkout("churn", 1), lineage=wrong)

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, ["--log", str(tmp_path / "log"), "models",
                                        "--registry", str(tmp_path / "registry"),
                                        "reproduce", "churn", *args],
                                  env={"COLUMNS": "200", "HEADWATER_FSYNC": "never"})

    good = run("1")
    assert good.exit_code == 0, good.output
    assert "reproduced: churn v1 comes out the same (artifact)" in good.stdout
    bad = run("v2")
    assert bad.exit_code == 1
    assert "MISMATCH" in bad.stdout
    assert "examples, examples_sha256" in bad.stdout or "examples_sha256" in bad.stdout
    as_json = msgspec.json.decode(run("2", "--json").stdout)
    assert as_json["verdict"] == "mismatch"
    assert {c["name"] for c in as_json["checks"] if not c["ok"]} >= {"examples_sha256"}
    assert run("1", "--mode", "sometimes").exit_code == 2


def test_a_torch_version_from_a_parent_reproduces_by_its_metrics(registry: ModelRegistry,
                                                                 tmp_path: Path) -> None:
    from tests.models.adapters import require

    require("torch")
    from headwater.models.torch import TorchModel

    log = Log(MemoryBackend())
    log.create_topic("numbers", Schema.of({"user": "string", "x": "float64", "n": "int64",
                                           "label": "float64", "ts": "timestamp"},
                                          key="user", event_time="ts"))
    rows = []
    for row in examples(160, 5):
        served = msgspec.json.decode(row["features"])
        rows.append({"user": row["entity"], "x": served["x"], "n": served["n"],
                     "label": row["label"], "ts": row["label_time"]})
    log.append("numbers", rows)
    model = TorchModel(hidden=[4], lr=0.05, batch_size=16)
    train(registry, log, model, {"numbers": {0: (0, 80)}}, tmp_path, parent=None, name="net")
    parent = load_model(registry.checkout("net", 1))
    train(registry, log, parent, {"numbers": {0: (80, 160)}}, tmp_path, parent=1, name="net")
    result = reproduce(registry, log, "net", 2, tolerance=1e-9)
    assert result.mode == "metrics"
    assert result.verdict == "match", result.failed
    assert "hyperparameter hidden" in {c.name for c in result.checks}
