"""A continual trainer guards its updates, on the embedded default and on Redis +
PostgreSQL: no revert and no refusal on a stationary stream, a revert to the checkpoint
(recorded in the model store with the reason) when its updates go wrong, and a model
cache that holds the champion and the checkpoint only."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from headwater.learning import Gate, Trainer, Volume, read_examples
from headwater.learning.updates import UpdatePublisher
from headwater.log import Log
from headwater.models import LogisticRegression
from headwater.models.features import Features
from headwater.models.updates import apply_update
from headwater.registry import ModelRegistry, open_registry
from headwater.registry.updates import MODEL_UPDATES_TOPIC, decode
from headwater.testing import ManualClock
from tests.learning.test_trainer import MINUTE, T0, Stream
from tests.processes import Backends, environment

World = tuple[Log, ModelRegistry, Stream, ManualClock]


@pytest.fixture
def world(backends: Backends, tmp_path: Path) -> Iterator[World]:
    clock = ManualClock(T0)
    log = backends.open_log(tmp_path)
    registry = open_registry(settings=backends.settings(tmp_path), clock=clock)
    try:
        yield log, registry, Stream(log), clock
    finally:
        registry.close()
        log.close()


def test_a_stationary_stream_is_neither_reverted_nor_refused(world: World) -> None:
    log, registry, stream, clock = world
    trainer = Trainer(log, registry, "m", LogisticRegression, strategy="continual",
                      trigger=Volume(500), clock=clock)
    for _ in range(60):  # 15,000 examples, a version every 500 (seeded stream)
        stream.add(250)
        clock.advance(MINUTE)
        trainer.step()
    assert trainer.reverts == 0
    assert len(trainer.published) == 30
    refused = [p.verdict.reason for p in trainer.published if not p.verdict.promote]
    assert refused == []
    assert registry.get("m", "champion").version == 30
    assert len(trainer._models) <= 2  # the champion and the checkpoint, not all 30
    last = trainer.published[-1].version.lineage.metrics
    assert last["rows"] == 500
    assert last["wall_s"] > 0
    assert last["wall_s"] == trainer.published[-1].cost.wall_s  # learning and publishing


def _learning_flipped(model: object) -> None:
    """From now on ``model`` learns every label flipped (a broken update path)."""
    assert isinstance(model, LogisticRegression)
    learn, predict_learn = model.learn, model.predict_learn

    def flipped(batch: Features, y: npt.ArrayLike,
                sample_weight: npt.ArrayLike | None = None) -> None:
        learn(batch, 1.0 - np.asarray(y, np.float64), sample_weight)

    def scored_then_flipped(batch: Features, y: npt.ArrayLike,
                            sample_weight: npt.ArrayLike | None = None
                            ) -> npt.NDArray[np.float64]:
        return predict_learn(batch, 1.0 - np.asarray(y, np.float64), sample_weight)

    model.learn = flipped  # type: ignore[method-assign]
    model.predict_learn = scored_then_flipped  # type: ignore[method-assign]


def test_updates_that_go_wrong_are_reverted_to_the_checkpoint(world: World) -> None:
    log, registry, stream, clock = world
    trainer = Trainer(log, registry, "m", LogisticRegression, strategy="continual",
                      trigger=Volume(1000), gate=Gate("log_loss"), clock=clock)
    stream.add(1000)
    first = trainer.step()
    assert first is not None
    assert first.verdict.promote
    assert trainer.model is not None
    trainer.trigger = Volume(10_000)  # the guard, not the gate, is what acts below
    _learning_flipped(trainer.model)
    steps = 0
    while trainer.reverts == 0 and steps < 40:
        stream.add(100)
        clock.advance(MINUTE)
        assert trainer.step() is None
        steps += 1
    assert trainer.reverts == 1
    assert steps < 40
    reverted = registry.get("m", 2)
    assert reverted.status == "rejected"
    assert reverted.status_reason is not None
    assert reverted.status_reason.startswith("gate: reverted to version 1: log_loss ")
    assert "worse than the checkpoint's" in reverted.status_reason
    assert reverted.lineage.parent == 1
    training = reverted.lineage.training
    assert training is not None
    assert training.examples == 100 * steps  # what the dropped state had learnt
    assert registry.get("m", "champion").version == 1
    # the live model is the checkpoint again, learning right: nothing more is reverted,
    # and the next version descends from the checkpoint, its slice after the revert
    for _ in range(100):
        stream.add(100)
        clock.advance(MINUTE)
        trainer.step()
    assert trainer.reverts == 1
    after = [p for p in trainer.published if p.version.version > 2]
    assert after
    assert after[0].verdict.promote, after[0].verdict.reason
    assert after[0].version.lineage.parent == 1
    slice_ = after[0].version.lineage.training
    assert slice_ is not None
    assert slice_.topics[0].ranges[0].start == 1000 + 100 * steps


def test_the_train_command_learns_a_stationary_stream_without_a_revert(
        backends: Backends, tmp_path: Path) -> None:
    """``headwater train`` as a process, fed while it runs: every version promoted, and
    it says how many times it reverted (none)."""
    log = backends.open_log(tmp_path)
    stream = Stream(log)
    trainer = subprocess.Popen(
        [sys.executable, "-m", "headwater", "train", "--model", "m", "--strategy",
         "continual", "--volume", "500", "--poll", "0.1", "--idle-timeout", "3"],
        env=environment(tmp_path, backends.environment(tmp_path)), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(20):
            stream.add(250)
            time.sleep(0.2)
        out, err = trainer.communicate(timeout=120)
    finally:
        if trainer.poll() is None:
            trainer.kill()
        log.close()
    assert trainer.returncode == 0, err
    assert "trainer stopped: 5000 rows learnt" in err
    assert "0 reverts to a checkpoint" in err
    with open_registry(settings=backends.settings(tmp_path)) as registry:
        versions = registry.versions("m")
        assert versions
        assert [v.status for v in versions if v.status == "rejected"] == []
        assert registry.get("m", "champion").version == versions[-1].version
    assert out.count("promoted") == len(versions)


def _scoring_backwards(model: object) -> None:
    """From now on ``model`` scores every row as its opposite (a broken scoring path)."""
    assert isinstance(model, LogisticRegression)
    predict_learn = model.predict_learn

    def backwards(batch: Features, y: npt.ArrayLike,
                  sample_weight: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
        return 1.0 - predict_learn(batch, y, sample_weight)

    model.predict_learn = backwards  # type: ignore[method-assign]


def test_a_continual_version_the_gate_refuses_is_reverted_too(world: World) -> None:
    """Published before the guard has enough examples to decide, a version judged worse
    than the champion is kept as rejected and the live model goes on from the
    checkpoint, not from it."""
    log, registry, stream, clock = world
    trainer = Trainer(log, registry, "m", LogisticRegression, strategy="continual",
                      trigger=Volume(1000), gate=Gate("accuracy", window=100, min_examples=20),
                      clock=clock)
    stream.add(1000)
    assert trainer.step() is not None
    assert trainer.model is not None
    _scoring_backwards(trainer.model)
    trainer.trigger = Volume(25)  # fewer than the guard's 30 examples
    stream.add(25)
    clock.advance(MINUTE)
    refused = trainer.step()
    assert refused is not None
    assert not refused.verdict.promote
    assert refused.verdict.low > 0
    assert trainer.reverts == 1
    assert registry.get("m", 2).status == "rejected"
    assert registry.get("m", "champion").version == 1
    stream.add(25)
    clock.advance(MINUTE)
    after = trainer.step()
    assert after is not None
    assert after.verdict.promote, after.verdict.reason
    assert after.version.lineage.parent == 1
    training = after.version.lineage.training
    assert training is not None
    assert training.topics[0].ranges[0].start == 1025
    assert trainer.reverts == 1


def test_a_revert_sends_servers_back_to_the_checkpoint_at_once(world: World) -> None:
    """Servers applying the live model's updates must not keep serving a dropped state:
    the revert goes out as an update that is the checkpoint itself."""
    log, registry, stream, clock = world
    publisher = UpdatePublisher(log, "m", every_rows=1, clock=clock)
    trainer = Trainer(log, registry, "m", LogisticRegression, strategy="continual",
                      trigger=Volume(1000), gate=Gate("log_loss"), clock=clock,
                      updates=publisher)
    stream.add(1000)
    first = trainer.step()
    assert first is not None
    assert first.verdict.promote
    assert trainer.model is not None
    trainer.trigger = Volume(10_000)
    _learning_flipped(trainer.model)
    steps = 0
    while trainer.reverts == 0 and steps < 40:
        stream.add(100)
        clock.advance(MINUTE)
        trainer.step()
        steps += 1
    assert trainer.reverts == 1
    updates = [u for f in log.replay(MODEL_UPDATES_TOPIC) for u in decode(f.batch)]
    assert len(updates) == steps  # one per learnt batch before the drop, then the revert
    last = updates[-1]
    assert last.base == first.version.version
    assert last.training.examples == 0  # the checkpoint learnt nothing since itself
    checkpoint = registry.load("m", first.version.version).model
    served = apply_update(checkpoint, last.update)
    probe = read_examples(log).features
    np.testing.assert_array_equal(served.predict(probe), checkpoint.predict(probe))
