"""A split set again, through any path, keeps every entity on its arm.

A server started with ``headwater serve --policy split --percent 10``, then given the same
90/10 split by ``headwater policy set`` or by ``PUT /admin/policy``, must route each of
10,000 entities exactly as before: an A/B test whose entities change arms mid-way measures
nothing.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from typer.testing import CliRunner

from headwater.cli import app as cli
from headwater.cli.serve import _spec
from headwater.routing import build
from headwater.serving import Deployment, Policy
from headwater.serving.app import ServingApp
from headwater.serving.server import BackgroundServer
from tests.serving.conftest import World, train

KEYS = [f"user-{i}" for i in range(10_000)]


def _arms(policy: Policy) -> list[str]:
    return [policy.choose(key).arm for key in KEYS]


def _app(world: World, policy: Policy) -> ServingApp:
    world.register(train(1), "champion")
    world.register(train(2), "challenger")
    deployment: Deployment = world.deployment(policy)
    return ServingApp(world.predictor(deployment), deployment, registry=world.registry,
                      admin_token="s3cret")


def _put(url: str, spec: dict[str, object]) -> None:
    body = json.dumps({"policy": spec, "reason": "the same split again"}).encode()
    request = urllib.request.Request(f"{url}/admin/policy", data=body, method="PUT",
                                     headers={"authorization": "Bearer s3cret",
                                              "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_resetting_the_same_split_through_every_path_moves_no_entity(
        world: World, tmp_path: Path) -> None:
    # headwater serve --policy split --percent 10
    started = build(_spec("split", "challenger", 10.0))
    before = _arms(started)
    assert 800 < before.count("challenger") < 1200
    app = _app(world, started)
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o600)
    with BackgroundServer(app, "127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.port}"
        result = CliRunner().invoke(cli, [
            "policy", "set", "split", "--arms", "champion,challenger", "--weights", "90,10",
            "--reason", "the same split again", "--url", url, "--token-file", str(token)])
        assert result.exit_code == 0, result.output
        via_cli = app.deployment.snapshot.policy
        assert via_cli is not started
        moved = sum(a != b for a, b in zip(before, _arms(via_cli), strict=True))
        assert moved == 0, f"headwater policy set moved {moved} of {len(KEYS)} entities"

        _put(url, {"kind": "split", "weights": {"champion": 90, "challenger": 10}})
        via_http = app.deployment.snapshot.policy
        assert via_http is not via_cli
        moved = sum(a != b for a, b in zip(before, _arms(via_http), strict=True))
        assert moved == 0, f"PUT /admin/policy moved {moved} of {len(KEYS)} entities"

        # what the server says it routes with, sent back, routes the same
        with urllib.request.urlopen(f"{url}/models", timeout=10) as response:
            described = json.loads(response.read())["policy"]
        _put(url, described)
        assert _arms(app.deployment.snapshot.policy) == before
    assert [change[1] for change in app.policy_changes] == ["the same split again"] * 3


def test_a_canary_set_again_through_every_path_moves_no_entity(world: World) -> None:
    started = build(_spec("canary", "challenger", 5.0))
    before = _arms(started)
    app = _app(world, started)
    with BackgroundServer(app, "127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.port}"
        _put(url, {"kind": "canary", "percent": 5, "canary": "challenger",
                   "stable": "champion"})
        assert _arms(app.deployment.snapshot.policy) == before
