"""A continual trainer's update publisher: updates every N examples or T ms, each naming its
base (the last promoted checkpoint) and the exact slice it learnt; the checkpoint applied
the update is the trainer's live model; a model that cannot be continual is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headwater.errors import NotContinualError, ValidationError
from headwater.labels import TRAINING_EXAMPLES_TOPIC
from headwater.learning import Gate, Trainer, Volume, read_examples
from headwater.learning.updates import UpdatePublisher
from headwater.log import Log
from headwater.log.embedded import EmbeddedBackend
from headwater.models import LogisticRegression
from headwater.models.updates import apply_update
from headwater.registry import ModelRegistry, open_registry
from headwater.registry.updates import MODEL_UPDATES_TOPIC, ModelUpdate, decode
from headwater.testing import ManualClock
from tests.extras import require_extra
from tests.learning.test_trainer import T0, Stream


@pytest.fixture
def world(tmp_path: Path) -> tuple[Log, ModelRegistry, Stream, ManualClock]:
    clock = ManualClock(T0)
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"))
    registry = open_registry(tmp_path / "registry", clock=clock)
    return log, registry, Stream(log), clock


def _first_version(log: Log, registry: ModelRegistry, stream: Stream, clock: ManualClock) -> int:
    stream.add(200)
    published = Trainer(log, registry, "m", LogisticRegression, strategy="stateless",
                        clock=clock, gate=Gate(min_examples=1)).train()
    assert published is not None
    return published.version.version


def _updates(log: Log) -> list[ModelUpdate]:
    return [u for f in log.replay(MODEL_UPDATES_TOPIC) for u in decode(f.batch)]


def test_updates_go_out_every_n_examples_or_t_ms_naming_base_and_slice(
        world: tuple[Log, ModelRegistry, Stream, ManualClock]) -> None:
    log, registry, stream, clock = world
    v1 = _first_version(log, registry, stream, clock)
    publisher = UpdatePublisher(log, "m", every_rows=100, every_ms=1_000, clock=clock)
    trainer = Trainer(log, registry, "m", LogisticRegression, strategy="continual",
                      trigger=Volume(10_000), clock=clock, updates=publisher)
    stream.add(40)
    trainer.step()
    assert _updates(log) == []  # 40 < 100 examples, no time has passed
    clock.advance(1_000_000)
    stream.add(10)
    trainer.step()
    stream.add(150)
    trainer.step()
    updates = _updates(log)
    assert [(u.base, u.training.examples, u.offset) for u in updates] == [
        (v1, 50, 0), (v1, 200, 1)]
    (topic,) = updates[1].training.topics
    assert topic.topic == TRAINING_EXAMPLES_TOPIC
    assert [(r.partition, r.start, r.end) for r in topic.ranges] == [(0, 200, 400)]
    # the checkpoint with the newest update is the trainer's live model, exactly
    served = apply_update(registry.load("m", v1).model, updates[-1].update)
    examples = read_examples(log)
    assert trainer.model is not None
    np.testing.assert_array_equal(served.predict(examples.features),
                                  trainer.model.predict(examples.features))


def test_a_promoted_checkpoint_rebases_the_updates_and_a_rejected_one_does_not(
        world: tuple[Log, ModelRegistry, Stream, ManualClock]) -> None:
    log, registry, stream, clock = world
    v1 = _first_version(log, registry, stream, clock)
    publisher = UpdatePublisher(log, "m", every_rows=1, clock=clock)
    trainer = Trainer(log, registry, "m", LogisticRegression, strategy="continual",
                      trigger=Volume(100), clock=clock, updates=publisher,
                      gate=Gate(min_examples=1, margin=1.0))
    stream.add(100)
    published = trainer.step()
    assert published is not None
    assert published.verdict.promote
    v2 = published.version.version
    stream.add(30)
    trainer.step()
    assert [(u.base, u.training.examples) for u in _updates(log)] == [(v1, 100), (v2, 30)]

    rejecting = Trainer(log, registry, "m", LogisticRegression, strategy="continual",
                        trigger=Volume(50), clock=clock, gate=Gate(min_examples=1_000),
                        updates=UpdatePublisher(log, "m", every_rows=1, clock=clock))
    stream.add(60)
    rejected = rejecting.step()
    assert rejected is not None
    assert not rejected.verdict.promote
    stream.add(5)
    rejecting.step()
    *_, last = _updates(log)
    assert (last.base, last.training.examples) == (v2, 95)  # still from the champion


def test_a_model_without_partial_fit_cannot_train_continually(
        world: tuple[Log, ModelRegistry, Stream, ManualClock]) -> None:
    require_extra("sklearn")
    from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

    from headwater.models.sklearn import SklearnModel

    log, registry, _, clock = world
    with pytest.raises(NotContinualError, match="DecisionTreeClassifier has no partial_fit"):
        Trainer(log, registry, "m", lambda: SklearnModel(DecisionTreeClassifier()),
                strategy="continual", trigger=Volume(10), clock=clock)


def test_a_bad_cadence_is_named(world: tuple[Log, ModelRegistry, Stream, ManualClock]) -> None:
    log = world[0]
    with pytest.raises(ValidationError, match="every_rows"):
        UpdatePublisher(log, "m", every_rows=0)
    with pytest.raises(ValidationError, match="every_ms"):
        UpdatePublisher(log, "m", every_ms=0)


def test_an_update_over_the_size_limit_is_told_and_sending_stops_until_the_checkpoint(
        tmp_path: Path) -> None:
    clock = ManualClock(T0)
    log = Log(EmbeddedBackend(tmp_path / "log", fsync="never"), max_event_bytes=2_000)
    registry = open_registry(tmp_path / "registry", clock=clock)
    stream = Stream(log)
    v1 = _first_version(log, registry, stream, clock)
    told: list[str] = []
    publisher = UpdatePublisher(log, "m", every_rows=1, clock=clock, on_problem=told.append)
    model = LogisticRegression()
    model.learn({"x1": np.arange(4.0), "city": np.array(["a", "b"] * 2)}, np.arange(4) % 2)
    publisher.rebase(model, v1, TRAINING_EXAMPLES_TOPIC, {0: 200})
    model.learn({"x1": np.arange(300.0), "city": np.array([f"c{i}" for i in range(300)])},
                np.arange(300) % 2)  # 300 more hashed coordinates: a delta over 2,000 bytes
    assert publisher.learnt(300, {0: 500}) is None
    assert publisher.refused == 1
    assert "refused by topic 'model_updates'" in told[0]
    assert "checkpoint more often" in told[0]
    assert publisher.learnt(1, {0: 501}) is None  # stalled: not tried again
    assert publisher.refused == 1
    assert log.end_offsets(MODEL_UPDATES_TOPIC) == [0]
