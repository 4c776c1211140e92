"""Hot swap: alias moves are loaded in the background and swapped in atomically."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from headwater.models import Model
from headwater.serving import ChampionOnly, Deployment, Shadow
from tests.serving.conftest import World, Wrapped, train


def test_reload_follows_the_alias_and_keeps_the_previous_version(world: World) -> None:
    v1 = world.register(train(1), "champion")
    deployment = world.deployment()
    assert deployment.snapshot.ready
    assert deployment.snapshot.arms["champion"].version == v1
    assert not deployment.reload()  # nothing moved
    v2 = world.register(train(2), "champion")
    assert deployment.reload()
    snapshot = deployment.snapshot
    assert snapshot.arms["champion"].version == v2
    assert snapshot.previous["champion"].version == v1
    assert (deployment.swaps, snapshot.generation) == (2, 2)
    world.registry.rollback("fraud", actor="test", reason="test")
    assert deployment.reload()
    assert deployment.snapshot.arms["champion"].version == v1
    assert deployment.snapshot.describe()["arms"] == {"champion": v1}


def test_a_version_that_fails_to_load_is_not_swapped_in(world: World) -> None:
    v1 = world.register(train(1), "champion")
    told: list[str] = []
    deployment = world.deployment(on_problem=told.append)
    assert deployment.problems == {}

    def failing(model: Model) -> Model:
        raise OSError("unreadable")

    deployment.source = Wrapped(world.registry, failing)
    v2 = world.register(train(2), "champion")
    assert not deployment.reload()
    assert deployment.snapshot.arms["champion"].version == v1
    assert deployment.load_errors == 1
    reason = f"version {v2} of fraud cannot load: OSError: unreadable"
    assert deployment.last_error == reason
    assert deployment.problems == {
        "champion": f"{reason} (arm 'champion' keeps serving version {v1})"}
    assert told == [deployment.problems["champion"]]
    assert not deployment.reload()  # tried again, told again only a minute later
    assert deployment.load_errors == 2
    assert len(told) == 1
    world.clock.advance(60_000_000)
    deployment.reload()
    assert len(told) == 2
    deployment.source = world.registry  # it loads now: swapped in, the problem is gone
    assert deployment.reload()
    assert deployment.snapshot.arms["champion"].version == v2
    assert deployment.problems == {}


def test_an_alias_not_set_is_a_problem_told_once(world: World) -> None:
    told: list[str] = []
    deployment = Deployment(world.registry, "fraud", Shadow(), clock=world.clock,
                            on_problem=told.append)
    deployment.reload()
    assert deployment.problems == {
        "champion": "alias 'champion' of model 'fraud' points at no version yet",
        "challenger": "alias 'challenger' of model 'fraud' points at no version yet"}
    world.clock.advance(600_000_000)
    deployment.reload()
    assert len(told) == 2  # not repeated: nothing failed to load
    world.register(train(1), "champion")
    deployment.reload()
    assert list(deployment.problems) == ["challenger"]


def test_nothing_loaded_is_not_ready(world: World) -> None:
    deployment = world.deployment(Shadow())
    assert not deployment.snapshot.ready
    world.register(train(1), "challenger")
    deployment.reload()
    assert not deployment.snapshot.ready  # the champion is what must be there


def test_the_poller_picks_up_a_move(world: World) -> None:
    world.register(train(1), "champion")
    deployment = world.deployment()
    deployment.start(poll_ms=5)
    try:
        v2 = world.register(train(2), "champion")
        deadline = time.monotonic() + 5
        while deployment.snapshot.arms["champion"].version != v2:
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        deployment.stop()


class Gated:
    """Wraps a model; ``predict_one`` waits for the gate (a request in flight)."""

    format = "gated"

    def __init__(self, inner: Model, gate: threading.Event, entered: threading.Event) -> None:
        self.inner, self.gate, self.entered = inner, gate, entered
        self.feature_names = getattr(inner, "feature_names", None)

    def predict_one(self, x: Mapping[str, Any]) -> float:
        self.entered.set()
        self.gate.wait(5)
        return self.inner.predict_one(x)


def test_a_request_in_flight_finishes_on_the_version_it_started_with(world: World) -> None:
    v1 = world.register(train(1), "champion")
    gate, entered = threading.Event(), threading.Event()
    deployment = world.deployment()
    deployment.source = Wrapped(world.registry, lambda model: Gated(model, gate, entered))
    deployment.snapshot = type(deployment.snapshot)(ChampionOnly(), {})
    deployment.reload()
    predictor = world.predictor(deployment)
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(predictor.predict({"user": "u1"})))
    thread.start()
    assert entered.wait(5)
    v2 = world.register(train(2), "champion")
    assert deployment.reload()  # swaps while the request is in the model
    gate.set()
    thread.join()
    assert result[0].version == v1
    assert not result[0].fallback
    assert predictor.predict({"user": "u1"}).version == v2


def test_fifty_swaps_under_concurrent_load_fail_no_request(world: World) -> None:
    versions = [world.register(train(seed)) for seed in range(3)]
    world.registry.promote("fraud", versions[0], actor="test", reason="test")
    deployment = world.deployment()
    predictor = world.predictor(deployment)
    stop = threading.Event()
    failures: list[BaseException] = []
    answered = [0] * 4
    seen: set[int] = set()

    def load(slot: int) -> None:
        while not stop.is_set():
            try:
                got = predictor.predict({"user": f"u{slot}"}, {"price": 1.0, "device": "ios"})
                seen.add(got.version)
                answered[slot] += 1
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(50):
            world.registry.promote("fraud", versions[(i + 1) % 3], actor="test", reason="swap")
            assert deployment.reload()
            time.sleep(0.001)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert deployment.swaps == 51
    assert sum(answered) > 50
    assert seen == set(versions)
