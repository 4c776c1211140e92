"""Model updates in a server: followed from the log, applied to their base version with the
deployment's atomic swap, logged with each prediction; an update of another base is
ignored, counted and told, and applied once its base serves."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.learning.updates import UpdatePublisher
from headwater.models.updates import UpdateMaker, apply_update
from headwater.registry import TrainingSlice
from headwater.registry.updates import MODEL_UPDATES_TOPIC, ModelUpdate
from headwater.serving import PredictionLog
from headwater.serving.updates import UpdateFollower
from tests.serving.conftest import World, train, training_batch

ROW = {"spend": 120.0, "txns": 3.0, "biggest": 60.0, "price": 45.0, "device": "ios"}


def _live(world: World, seed: int, alias: str | None = "champion"
          ) -> tuple[int, UpdatePublisher]:
    """A registered version and a publisher whose live model is that version."""
    model = train(seed)
    version = world.register(model, alias)
    publisher = UpdatePublisher(world.log, "fraud", every_rows=1, clock=world.clock)
    publisher.rebase(model, version, "training_examples", {0: 0})
    return version, publisher


def _learn(publisher: UpdatePublisher, seed: int, until: int) -> None:
    assert publisher._maker is not None
    batch = training_batch(seed)
    publisher._maker.model.learn(batch, (batch["price"] > 50).astype(int))
    published = publisher.learnt(len(batch["price"]), {0: until})
    assert published is not None


def test_a_server_serves_each_update_and_logs_it_with_each_prediction(world: World) -> None:
    version, publisher = _live(world, 1)
    deployment = world.deployment()
    follower = UpdateFollower(world.log, deployment)
    plog = PredictionLog(world.log, flush_ms=10_000)
    predictor = world.predictor(deployment, plog)
    before = predictor.predict({"user": "u1"}, {"price": 45.0, "device": "ios"})
    assert (before.version, before.update) == (version, None)

    _learn(publisher, 7, until=400)
    assert follower.step() == 1
    assert publisher.last is not None
    assert publisher.last.offset == 0
    after = predictor.predict({"user": "u1"}, {"price": 45.0, "device": "ios"})
    assert (after.version, after.update) == (version, 0)
    assert publisher._maker is not None
    live = publisher._maker.model
    row = {**dict(zip(("spend", "txns", "biggest"), _features(world, "u1"), strict=True)),
           "price": 45.0, "device": "ios"}
    assert after.score == live.predict_one(row) != before.score

    _learn(publisher, 8, until=800)  # cumulative: the second replaces the first
    assert follower.step() == 1
    assert predictor.predict({"user": "u1"}, {"price": 45.0, "device": "ios"}).score == \
        live.predict_one(row)
    plog.close()
    events = [r for f in world.log.replay("predictions") for r in f.batch.to_pylist()]
    assert [(e["version"], e["update"]) for e in events] == [(version, None), (version, 0),
                                                             (version, 1)]
    assert deployment.updates_applied == 2
    assert deployment.updates_ignored == 0
    assert deployment.snapshot.describe()["updates"] == {"champion": 1}


def _features(world: World, user: str) -> tuple[float, float, float]:
    values, _, _ = world.reader.read_row({"user": user}, world.clock.now_us(), {})
    return float(values["spend"]), float(values["txns"]), float(values["biggest"])


def test_an_update_of_a_version_that_does_not_serve_is_ignored_loudly(world: World) -> None:
    served = world.register(train(1), "champion")
    told: list[str] = []
    deployment = world.deployment(on_problem=told.append)
    follower = UpdateFollower(world.log, deployment)
    other, publisher = _live(world, 2, alias=None)  # registered, not promoted
    _learn(publisher, 7, until=400)
    assert follower.step() == 0
    snap = deployment.snapshot
    assert (snap.arms["champion"].version, snap.arms["champion"].update) == (served, None)
    assert deployment.updates_ignored == 1
    assert told == [f"updates of fraud v{other} ignored (1 so far, the last at offset 0): no "
                    f"arm serves v{other} (serving [{served}])"]
    # the version is promoted: the update waiting for it is applied with the swap
    world.registry.promote("fraud", other, actor="test", reason="test")
    assert deployment.reload()
    arm = deployment.snapshot.arms["champion"]
    assert (arm.version, arm.update) == (other, 0)
    assert publisher._maker is not None
    batch = training_batch(3)
    np.testing.assert_array_equal(arm.model.predict(batch),
                                  publisher._maker.model.predict(batch))


def test_a_server_started_after_updates_serves_the_newest_at_once(world: World) -> None:
    version, publisher = _live(world, 1)
    _learn(publisher, 7, until=400)
    _learn(publisher, 8, until=800)
    deployment = world.deployment()
    follower = UpdateFollower(world.log, deployment)
    follower.step()
    arm = deployment.snapshot.arms["champion"]
    assert (arm.version, arm.update) == (version, 1)
    assert deployment.updates_applied == 1  # the newest alone: the first is not decoded


def test_an_unreadable_update_is_counted_and_passed_over(world: World) -> None:
    world.register(train(1), "champion")
    told: list[str] = []
    deployment = world.deployment(on_problem=told.append)
    follower = UpdateFollower(world.log, deployment)
    world.log.append(MODEL_UPDATES_TOPIC, [{
        "model": "fraud", "base": 1, "kind": "delta", "payload": b"junk",
        "training": "{}", "examples": 1, "ts": world.clock.now_us()}])
    follower.step()
    assert deployment.updates_failed == 1
    assert deployment.snapshot.arms["champion"].update is None
    assert "cannot apply" in told[-1]
    assert "unreadable arrays" in told[-1]
    assert follower.position == 1  # not read again


def test_the_update_maker_checkpoints_what_the_publisher_rebases_on(world: World) -> None:
    model = train(1)
    maker = UpdateMaker(model)
    maker.checkpoint()
    assert maker.update().kind == "delta"  # nothing learnt: an empty delta, still exact


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(4)))
def test_updates_read_in_any_order_serve_the_newest(world: World, order: list[int]) -> None:
    """However updates of one base arrive (retried, reordered), the arm serves the
    newest, never an older one over it."""
    version = world.register(train(1), "champion")
    deployment = world.deployment()
    base = deployment.snapshot.arms["champion"].base
    maker = UpdateMaker(train(1))
    maker.checkpoint()
    made = []
    for step in range(4):
        batch = training_batch(10 + step)
        maker.model.learn(batch, (batch["price"] > 40).astype(int))
        made.append(ModelUpdate("fraud", version, maker.update(), TrainingSlice(), 0, step))
    for i in order:
        deployment.apply(made[i])
    arm = deployment.snapshot.arms["champion"]
    assert arm.update == 3
    batch = training_batch(99)
    np.testing.assert_array_equal(arm.model.predict(batch),
                                  apply_update(base, made[3].update).predict(batch))
    assert deployment.updates_ignored == 0
