"""Reproducing a version from its lineage: replay the slice as the trainer learnt it, then
judge the result."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from headwater.cli import app
from headwater.config import Settings
from headwater.errors import ValidationError
from headwater.labels import TRAINING_EXAMPLES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.learning import Gate, Trainer, reproduce
from headwater.log import Log, open_log
from headwater.log.schema import TIMESTAMP
from headwater.models import LogisticRegression, Model, load_model
from headwater.registry import ModelRegistry, open_registry
from headwater.testing import ManualClock, MemoryBackend
from tests.models.adapters import require

T0 = 946_684_800_000_000
MINUTE = 60_000_000
TOPIC = TRAINING_EXAMPLES_TOPIC


def add_examples(log: Log, count: int, seed: int, *, first: int = 0,
                 categorical: bool = True) -> None:
    """Training examples as the label joiner writes them: the features as served, in
    JSON; every tenth row only shadowed (not an example)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 2))
    cities = rng.choice(np.array(["oslo", "lima", "pune"]), count).tolist()
    y = (x[:, 0] + x[:, 1] + rng.normal(scale=0.3, size=count) > 0).astype(float)
    ids = [f"r{first + i}" for i in range(count)]
    times = [T0 + (first + i) * MINUTE for i in range(count)]
    served = [{"x1": a, "x2": b, **({"city": c} if categorical else {})}
              for (a, b), c in zip(x.tolist(), cities, strict=True)]
    rows = {
        "request_id": ids, "entity": [f"u{i % 7}" for i in range(count)],
        "features": [msgspec.json.encode(f) for f in served],
        "model": ["m"] * count, "version": pa.array([1] * count, pa.int64()),
        "score": [0.5] * count, "arm": ["champion"] * count,
        "served": [(first + i) % 10 != 9 for i in range(count)], "label": y,
        "source": ["explicit"] * count,
        "prediction_time": pa.array(times, pa.int64()).cast(TIMESTAMP),
        "label_time": pa.array([t + MINUTE for t in times], pa.int64()).cast(TIMESTAMP),
    }
    log.append(TOPIC, pa.record_batch(rows, schema=TRAINING_EXAMPLES_SCHEMA.arrow_schema()))


def new_log(seed: int = 1, *, categorical: bool = True) -> Log:
    log = Log(MemoryBackend())
    log.create_topic(TOPIC, TRAINING_EXAMPLES_SCHEMA, partitions=2)
    add_examples(log, 300, seed, categorical=categorical)
    return log


def two_versions(log: Log, registry: ModelRegistry, make: Callable[[], Model], *,
                 name: str = "churn", seed: int = 2, categorical: bool = True) -> None:
    """v1 from scratch (a stateless run), then more examples and v2 from v1 (stateful),
    both on the examples model ``m`` served (the replay reads the same)."""
    clock = ManualClock(T0)
    Trainer(log, registry, name, make, strategy="stateless", clock=clock,
            batch_rows=64, examples_of="m").train()
    add_examples(log, 200, seed, first=300, categorical=categorical)
    Trainer(log, registry, name, make, strategy="stateful", clock=clock, batch_rows=64,
            gate=Gate("accuracy", margin=1.0), examples_of="m").train()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ModelRegistry]:
    with open_registry(tmp_path / "registry", settings=Settings(fsync="never"),
                       clock=ManualClock(T0)) as registry:
        yield registry


@pytest.fixture
def log() -> Log:
    return new_log()


@pytest.fixture
def trained(registry: ModelRegistry, log: Log) -> ModelRegistry:
    two_versions(log, registry, lambda: LogisticRegression(alpha=0.5, block=8))
    return registry


def test_versions_a_trainer_made_reproduce(trained: ModelRegistry, log: Log) -> None:
    for version, parent in ((1, None), (2, 1)):
        result = reproduce(trained, log, "churn", version, batch_rows=64)
        assert result.verdict == "match", result.failed
        assert result.mode == "artifact"
        assert result.parent == parent
        names = {c.name for c in result.checks if c.decisive}
        assert {"examples", "examples_sha256", "event_time", "artifact",
                "hyperparameter alpha"} <= names
        assert all(c.ok for c in result.checks if c.decisive)
        metrics = {c.name: c for c in result.checks if c.name.startswith("metric ")}
        assert metrics["metric rows"].ok  # recomputed
        assert metrics["metric cpu_s"].found == "not recomputed"


def test_another_step_size_is_another_model(trained: ModelRegistry, log: Log) -> None:
    result = reproduce(trained, log, "churn", 2, batch_rows=7)
    assert [c.name for c in result.failed] == ["artifact"]


def test_different_data_in_the_log_is_a_mismatch(trained: ModelRegistry) -> None:
    other = new_log(seed=7)  # same topic, same offsets, other examples
    add_examples(other, 200, 8, first=300)
    result = reproduce(trained, other, "churn", 2, batch_rows=64)
    assert result.verdict == "mismatch"
    assert {c.name for c in result.failed} >= {"examples_sha256", "artifact"}


def test_a_log_that_lost_the_slice_is_a_mismatch(trained: ModelRegistry) -> None:
    short = Log(MemoryBackend())
    short.create_topic(TOPIC, TRAINING_EXAMPLES_SCHEMA, partitions=2)
    add_examples(short, 300, 1)  # v2's examples were never appended here
    result = reproduce(trained, short, "churn", 2, batch_rows=64)
    assert {"examples", "examples_sha256"} <= {c.name for c in result.failed}


def test_an_artifact_not_trained_on_its_slice_is_a_mismatch(trained: ModelRegistry, log: Log,
                                                             tmp_path: Path) -> None:
    recorded = trained.get("churn", 2).lineage
    model = load_model(trained.checkout("churn", 2))
    model.learn({"x1": np.array([1.0, -1.0]), "x2": np.array([0.0, 1.0]),
                 "city": np.array(["oslo", "lima"])}, np.array([1, 0]))  # one step more
    model.save(tmp_path / "tampered")
    trained.register("churn", tmp_path / "tampered", lineage=recorded)
    result = reproduce(trained, log, "churn", 3, batch_rows=64)
    assert result.verdict == "mismatch"
    assert [c.name for c in result.failed] == ["artifact"]
    by_metrics = reproduce(trained, log, "churn", 3, mode="metrics", batch_rows=64)
    assert [c.name for c in by_metrics.failed] == ["stored scores"]


def test_changed_hyperparameters_are_a_mismatch(trained: ModelRegistry, log: Log) -> None:
    recorded = trained.get("churn", 1).lineage
    changed = msgspec.structs.replace(
        recorded, hyperparameters=recorded.hyperparameters | {"alpha": 0.25})
    trained.register("churn", trained.checkout("churn", 1), lineage=changed)
    result = reproduce(trained, log, "churn", 3, batch_rows=64)
    assert [c.name for c in result.failed] == ["hyperparameter alpha"]


def test_models_that_are_not_deterministic_are_judged_by_their_metrics(
        registry: ModelRegistry) -> None:
    require("sklearn")
    from sklearn.linear_model import SGDClassifier  # type: ignore[import-untyped]

    from headwater.models.sklearn import SklearnModel

    log = new_log(categorical=False)  # the adapter reads numbers only
    two_versions(log, registry,
                 lambda: SklearnModel(SGDClassifier(loss="log_loss", random_state=0)),
                 name="sgd", categorical=False)
    result = reproduce(registry, log, "sgd", 2, batch_rows=64)
    assert result.mode == "metrics"
    assert result.verdict == "match", result.failed
    decisive = {c.name for c in result.checks if c.decisive}
    assert {"metric rows", "metric prequential_accuracy", "stored scores"} <= decisive
    assert not next(c for c in result.checks if c.name == "artifact").decisive
    version = registry.get("sgd", 2)
    bare = msgspec.structs.replace(version.lineage, metrics={"cpu_s": 0.1})
    registry.register("sgd", registry.checkout("sgd", 2), lineage=bare)
    assert reproduce(registry, log, "sgd", 3, batch_rows=64).verdict == "unverifiable"


def test_a_torch_version_from_a_parent_reproduces(registry: ModelRegistry) -> None:
    require("torch")
    from headwater.models.torch import TorchModel

    log = new_log(categorical=False)
    two_versions(log, registry, lambda: TorchModel(hidden=[4], lr=0.05, batch_size=16),
                 name="net", categorical=False)
    result = reproduce(registry, log, "net", 2, batch_rows=64, tolerance=1e-9)
    assert result.mode == "metrics"
    assert result.verdict == "match", result.failed
    assert "hyperparameter hidden" in {c.name for c in result.checks}


def test_what_cannot_be_replayed_is_named(trained: ModelRegistry, log: Log,
                                          tmp_path: Path) -> None:
    LogisticRegression().save(tmp_path / "bare")
    trained.register("churn", tmp_path / "bare")
    with pytest.raises(ValidationError, match="no training slice") as raised:
        reproduce(trained, log, "churn", 3)
    assert raised.value.field == "lineage.training"
    for bad, field in (({"tolerance": -1.0}, "tolerance"), ({"batch_rows": 0}, "batch_rows"),
                       ({"mode": "sometimes"}, "mode")):
        with pytest.raises(ValidationError) as raised:
            reproduce(trained, log, "churn", 1, **bad)
        assert raised.value.field == field


def test_the_reproduce_command(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"), fsync="never")
    with open_log(str(tmp_path / "log"), settings=settings) as log, open_registry(
            tmp_path / "registry", settings=settings) as registry:
        log.create_topic(TOPIC, TRAINING_EXAMPLES_SCHEMA, partitions=2)
        add_examples(log, 300, 1)
        two_versions(log, registry, LogisticRegression)
        v2 = registry.get("churn", 2)
        registry.register("churn", registry.checkout("churn", 1), lineage=v2.lineage)

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, ["--log", str(tmp_path / "log"), "models",
                                        "--registry", str(tmp_path / "registry"),
                                        "reproduce", "churn", *args, "--batch-rows", "64"],
                                  env={"COLUMNS": "200", "HEADWATER_FSYNC": "never"})

    good = run("2")
    assert good.exit_code == 0, good.output
    assert "reproduced: churn v2 comes out the same (artifact)" in good.stdout
    assert "into v1" in good.stdout
    bad = run("v3")  # v1's artifact under v2's lineage
    assert bad.exit_code == 1
    assert "MISMATCH: artifact" in bad.stdout
    as_json = msgspec.json.decode(run("3", "--json").stdout)
    assert as_json["verdict"] == "mismatch"
    assert [c["name"] for c in as_json["checks"] if c["decisive"] and not c["ok"]] == [
        "artifact"]
    assert run("1", "--mode", "sometimes").exit_code == 2
