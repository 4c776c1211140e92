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


@pytest.mark.parametrize("leave", [False, True])
def test_a_rollout_that_times_out_rolls_the_canary_back_unless_told_to_leave_it(
        world: World, tmp_path: Any, leave: bool) -> None:  # noqa: F811
    import dataclasses
    import os
    import subprocess
    import sys

    from headwater.registry import open_registry
    from headwater.routing.policies import Canary
    from headwater.serving.app import ServingApp
    from headwater.serving.server import BackgroundServer

    home = tmp_path / "home"
    registry = open_registry(home / "registry")
    shared = dataclasses.replace(world, registry=registry)
    shared.register(train(1), "champion")
    old = shared.register(train(3), "challenger")
    v3 = shared.register(train(2))
    deployment = shared.deployment()
    app = ServingApp(shared.predictor(deployment), deployment, registry=registry,
                     admin_token="s3cret")
    token = tmp_path / "token"
    token.write_text("s3cret")
    token.chmod(0o600)
    with BackgroundServer(app, "127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.port}"
        done = subprocess.run(
            [sys.executable, "-m", "headwater", "eval", "rollout", "fraud", str(v3), "--url",
             url, "--token-file", str(token), "--timeout", "1", "--poll", "0.1",
             *(["--leave-on-timeout"] if leave else [])],
            env={**os.environ, "HEADWATER_HOME": str(home)}, capture_output=True, text=True,
            timeout=120)
        policy = deployment.snapshot.policy
    said = " ".join(done.stderr.split())
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "the canary of fraud v3 did not finish in 1 s (at 1%)" in said
    moves = [(m.kind, m.from_version, m.to_version, m.actor)
             for m in registry.history("fraud", "challenger")]
    assert moves[1] == ("promote", old, v3, "rollout")
    assert isinstance(policy, Canary)
    if leave:
        assert "the canary was left live (--leave-on-timeout)" in said
        assert f"headwater policy set champion --reason 'undo the canary of v3' --url {url}" in said
        assert (f"headwater models rollback fraud --alias challenger --reason 'undo the canary "
                f"of v3' # challenger back to v{old}") in said
        assert policy.percent == 1.0
        assert registry.aliases("fraud")["challenger"] == v3
        assert len(moves) == 2
    else:
        assert f"rolled back: traffic at 0%, challenger back to v{old}" in said
        assert policy.percent == 0.0
        assert registry.aliases("fraud")["challenger"] == old
        assert moves[2][1:] == (v3, old, "rollout")
        assert "rollout timed out after 1 s" in registry.history("fraud", "challenger")[2].reason
    registry.close()
