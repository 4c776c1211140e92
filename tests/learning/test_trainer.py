"""Trainers over a real log and model store: the four stages, lineage, gate and resume."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from headwater.errors import ValidationError
from headwater.labels import TRAINING_EXAMPLES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.learning import Gate, Trainer, Volume, read_examples
from headwater.log import Log
from headwater.log.embedded import EmbeddedBackend
from headwater.log.schema import TIMESTAMP
from headwater.models import LogisticRegression
from headwater.registry import ModelRegistry, open_registry
from headwater.testing import ManualClock

T0 = 946_684_800_000_000
MINUTE = 60_000_000


class Stream:
    """Examples of y = [x1 + x2 > 0] appended to the training-examples topic."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.rng = np.random.default_rng(1)
        self.n = 0
        log.create_topic(TRAINING_EXAMPLES_TOPIC, TRAINING_EXAMPLES_SCHEMA)

    def add(self, count: int, *, flip: bool = False) -> None:
        x = self.rng.normal(size=(count, 2))
        noise = self.rng.random(count) < 0.1
        y = ((x[:, 0] + x[:, 1] > 0) != (flip ^ noise)).astype(float)
        ids = [f"r{self.n + i}" for i in range(count)]
        times = [T0 + (self.n + i) * MINUTE for i in range(count)]
        self.n += count
        rows = {
            "request_id": ids, "entity": ["e"] * count,
            "features": [msgspec.json.encode({"x1": a, "x2": b}) for a, b in x.tolist()],
            "model": ["m"] * count, "version": pa.array([1] * count, pa.int64()),
            "score": [0.5] * count, "arm": ["champion"] * count, "served": [True] * count,
            "label": y, "source": ["explicit"] * count,
            "prediction_time": pa.array(times, pa.int64()).cast(TIMESTAMP),
            "label_time": pa.array([t + MINUTE for t in times], pa.int64()).cast(TIMESTAMP),
        }
        self.log.append(TRAINING_EXAMPLES_TOPIC,
                        pa.record_batch(rows, schema=TRAINING_EXAMPLES_SCHEMA.arrow_schema()))


@pytest.fixture
def world(tmp_path: Path) -> tuple[Log, ModelRegistry, Stream, ManualClock]:
    clock = ManualClock(T0)
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    registry = open_registry(tmp_path / "registry", clock=clock)
    return log, registry, Stream(log), clock


def test_stateless_then_stateful_runs_record_their_slices_and_parents(world) -> None:  # type: ignore[no-untyped-def]
    log, registry, stream, clock = world
    stream.add(300)
    stateless = Trainer(log, registry, "m", LogisticRegression, strategy="stateless",
                        trainer="manual", clock=clock)
    first = stateless.train()
    assert first is not None
    assert first.verdict.promote
    v1 = registry.get("m", "champion")
    assert v1.version == first.version.version == 1
    assert v1.lineage.parent is None
    training = v1.lineage.training
    assert training is not None
    assert training.examples == 300
    assert training.examples_sha256 == read_examples(log).slice.examples_sha256
    assert training.topics[0].ranges[0].end == 300
    assert {"rows", "cpu_s", "wall_s"} <= set(v1.lineage.metrics)
    assert v1.lineage.metrics["rows"] == 300
    assert v1.lineage.hyperparameters == LogisticRegression().params() | {}

    stream.add(200)
    stateful = Trainer(log, registry, "m", LogisticRegression, strategy="stateful",
                       gate=Gate("accuracy", margin=0.5), clock=clock)
    second = stateful.train()
    assert second is not None
    v2 = second.version
    assert v2.lineage.parent == 1
    assert v2.lineage.training is not None
    assert v2.lineage.training.topics[0].ranges[0].start == 300
    assert v2.lineage.training.examples == 200
    assert stateful.train() is None  # nothing new since v2's slice


def test_a_run_by_event_time_reads_exactly_that_window(world) -> None:  # type: ignore[no-untyped-def]
    log, registry, stream, clock = world
    stream.add(100)
    trainer = Trainer(log, registry, "m", LogisticRegression, strategy="stateless", clock=clock)
    done = trainer.train(event_time=(T0 + 11 * MINUTE, T0 + 31 * MINUTE))  # label times
    assert done is not None
    assert done.version.lineage.training is not None
    assert done.version.lineage.training.examples == 20


def test_continual_trainer_publishes_on_its_trigger_and_resumes_from_the_store(world) -> None:  # type: ignore[no-untyped-def]
    log, registry, stream, clock = world
    trainer = Trainer(log, registry, "m", LogisticRegression, strategy="continual",
                      trigger=Volume(1000), gate=Gate("accuracy", margin=0.05, window=500),
                      clock=clock)
    published = []
    for _ in range(5):
        stream.add(500)
        clock.advance(MINUTE)
        done = trainer.step()
        if done is not None:
            published.append(done)
    assert [p.version.version for p in published] == [1, 2], [p.verdict for p in published]
    assert [p.verdict.promote for p in published] == [True, True], [p.verdict for p in published]
    assert [p.version.lineage.parent for p in published] == [None, 1]
    assert [p.fire.kind for p in published] == ["volume", "volume"]
    v2 = published[1].version.lineage.training
    assert v2 is not None
    assert (v2.topics[0].ranges[0].start, v2.topics[0].ranges[0].end) == (1000, 2000)
    assert trainer.cost.rows == 2500
    # a new trainer (a restart) starts from the champion and re-learns what followed it
    again = Trainer(log, registry, "m", LogisticRegression, strategy="continual",
                    trigger=Volume(50), clock=clock)
    assert again.parent is not None
    assert again.parent.version == 2
    assert again.position == {0: 2000}
    stream.add(10)
    done = again.step()
    assert done is not None
    assert done.version.lineage.parent == 2
    assert done.version.lineage.training is not None
    assert done.version.lineage.training.examples == 510


def test_the_gate_promotes_nothing_on_a_handful_of_examples(world) -> None:  # type: ignore[no-untyped-def]
    log, registry, stream, clock = world
    stream.add(2)
    done = Trainer(log, registry, "m", LogisticRegression, strategy="stateless",
                   clock=clock).train()
    assert done is not None
    assert not done.verdict.promote
    assert done.version.status == "rejected"
    assert done.version.status_reason == ("gate: only 2 examples to judge on; promoting "
                                          "needs at least 200 (min_examples)")
    assert registry.aliases("m") == {}
    stream.add(300)
    done = Trainer(log, registry, "m", LogisticRegression, strategy="stateless",
                   clock=clock).train()
    assert done is not None
    assert done.verdict.promote
    assert done.verdict.examples == 302
    assert registry.get("m", "champion").version == 2


def test_a_trainer_refuses_a_step_it_cannot_learn_in(world) -> None:  # type: ignore[no-untyped-def]
    log, registry, _, clock = world
    for bad in (0, -1, True):
        with pytest.raises(ValidationError) as caught:
            Trainer(log, registry, "m", LogisticRegression, strategy="stateless", clock=clock,
                    batch_rows=bad)
        assert caught.value.field == "batch_rows"


def test_the_gate_refuses_a_minimum_its_window_cannot_hold() -> None:
    with pytest.raises(ValidationError, match="min_examples"):
        Gate("log_loss", window=100, min_examples=101)
    assert Gate("log_loss", window=50).min_examples == 50
    assert Gate("log_loss").min_examples == 200


def test_the_gate_rejects_a_worse_candidate_and_keeps_it(world) -> None:  # type: ignore[no-untyped-def]
    log, registry, stream, clock = world
    stream.add(2000)
    assert Trainer(log, registry, "m", LogisticRegression, strategy="stateless",
                   clock=clock).train() is not None
    clock.advance(30 * MINUTE)
    stream.add(40)
    clock.set(T0 + 2041 * MINUTE)
    sluggish = Trainer(log, registry, "m", lambda: LogisticRegression(alpha=1e-4),
                       strategy="stateless", history=40 * MINUTE,
                       gate=Gate("log_loss", window=100, min_examples=10), clock=clock)
    done = sluggish.train()  # a model that barely learns: no better than a coin
    assert done is not None
    assert done.verdict.examples == 40
    assert not done.verdict.promote
    assert done.verdict.low > 0  # significantly worse, not merely worse
    assert done.version.status == "rejected"
    assert done.version.status_reason is not None
    assert "worse than the champion" in done.version.status_reason
    assert registry.get("m", "champion").version == 1
    assert [m.reason for m in registry.history("m", "champion")][-1].startswith("manual")
