"""A canary watched live from the log: a healthy version is ramped up and promoted, a
version that fails is rolled back by the errors its requests show."""

from __future__ import annotations

from typing import Any

import pytest

from headwater.evaluation.canary import CanaryController, CanaryRamp
from headwater.evaluation.canary_watch import CanaryWatch
from headwater.evaluation.guardrails import Guardrails
from headwater.serving import PredictionLog
from tests.serving.conftest import World, Wrapped, train, world  # noqa: F401

GUARDS = Guardrails(min_requests=20, metric=None, max_psi=float("inf"), max_p99_ratio=float("inf"))


class Broken:
    feature_names = None

    def predict_one(self, row: Any) -> float:
        raise RuntimeError("boom")


class Slow:
    """The champion's model, three milliseconds slower per prediction."""

    def __init__(self) -> None:
        self.model = train(2)
        self.feature_names = self.model.feature_names

    def predict_one(self, row: Any) -> float:
        import time

        time.sleep(0.003)
        return self.model.predict_one(row)


def drive(world: World, broken: bool, *, canary: Any = None,  # noqa: F811
          guards: Guardrails = GUARDS) -> tuple[CanaryWatch, CanaryController]:
    world.register(train(1), "champion")
    v2 = world.register(train(2))
    deployment = world.deployment()
    plog = PredictionLog(world.log, flush_ms=60_000)
    predictor = world.predictor(deployment, plog)
    if broken or canary is not None:
        made = canary if canary is not None else Broken()
        deployment.source = Wrapped(world.registry, lambda model: made)
    controller = CanaryController(world.registry, "fraud", v2, apply=deployment.reload,
                                  ramp=CanaryRamp((10.0, 50.0, 100.0), guards), salt="t")
    watch = CanaryWatch(world.log, controller, window=20)
    controller.start()
    for round_ in range(40):
        for i in range(100):
            predictor.predict({"user": f"user-{round_}-{i}"}, {"price": 1.0, "device": "web"})
        plog.flush()
        watch.step()
        if watch.done:
            break
    plog.close()
    return watch, controller


def test_a_healthy_canary_is_ramped_up_and_promoted(world: World) -> None:  # noqa: F811
    watch, controller = drive(world, broken=False)
    assert [s.action for s in watch.steps] == ["advance", "advance", "promote"]
    assert controller.ramp.status == "promoted"
    assert world.registry.aliases("fraud")["champion"] == controller.version


def test_a_failing_canary_is_rolled_back_from_its_errors(world: World) -> None:  # noqa: F811
    watch, controller = drive(world, broken=True)
    assert watch.steps[-1].action == "rollback"
    assert "error_rate" in watch.steps[-1].reason
    assert controller.breach_to_rollback_us is not None
    assert "challenger" not in world.registry.aliases("fraud")
    assert world.registry.aliases("fraud")["champion"] == 1


def test_a_slow_canary_breaches_the_latency_guardrail(world: World) -> None:  # noqa: F811
    guards = Guardrails(min_requests=20, metric=None, max_psi=float("inf"), max_p99_ms=2.0,
                        max_p99_ratio=float("inf"))
    watch, _ = drive(world, False, canary=Slow(), guards=guards)
    assert watch.steps[-1].action == "rollback"
    assert "p99_latency" in watch.steps[-1].reason
    assert world.registry.aliases("fraud")["champion"] == 1


def test_a_window_must_hold_a_request(world: World) -> None:  # noqa: F811
    from headwater.errors import ValidationError

    controller = CanaryController(world.registry, "fraud", 1, apply=lambda policy: None)
    with pytest.raises(ValidationError, match="window"):
        CanaryWatch(world.log, controller, window=0)


def test_a_rollout_drives_a_running_server_through_its_admin_api(world: World) -> None:  # noqa: F811
    import json
    import urllib.request

    from headwater.evaluation.canary_watch import apply_over_http
    from headwater.serving.app import ServingApp
    from headwater.serving.server import BackgroundServer

    world.register(train(1), "champion")
    v2 = world.register(train(2))
    deployment = world.deployment()
    plog = PredictionLog(world.log, flush_ms=60_000)
    app = ServingApp(world.predictor(deployment, plog), deployment, registry=world.registry,
                     admin_token="s3cret")
    with BackgroundServer(app, "127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.port}"
        controller = CanaryController(world.registry, "fraud", v2,
                                      apply=apply_over_http(url, "s3cret"),
                                      ramp=CanaryRamp((10.0, 100.0), GUARDS), salt="t")
        watch = CanaryWatch(world.log, controller, window=20)
        controller.start()
        for round_ in range(30):
            for i in range(50):
                body = json.dumps({"entities": {"user": f"user-{round_}-{i}"},
                                   "request": {"price": 1.0, "device": "web"}}).encode()
                request = urllib.request.Request(f"{url}/predict", data=body, method="POST")
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200
            plog.flush()
            watch.step()
            if watch.done:
                break
    plog.close()
    assert controller.ramp.status == "promoted"
    assert app.policy_changes[0][0] == "canary"
    assert world.registry.aliases("fraud")["champion"] == v2


def test_rollout_names_a_server_it_cannot_reach(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from headwater.cli import app as cli
    from headwater.registry import open_registry

    train(1).save(tmp_path / "m1")
    with open_registry(tmp_path / "registry") as registry:
        registry.register("m", tmp_path / "m1")
    result = CliRunner().invoke(cli, ["--log", str(tmp_path / "log"), "eval", "rollout", "m",
                                      "1", "--url", "http://127.0.0.1:9"],
                                env={"HEADWATER_HOME": str(tmp_path)})
    assert result.exit_code == 2, result.output
    assert "cannot reach the server" in result.output
    assert "Traceback" not in result.output
