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

import pytest
from typer.testing import CliRunner

from headwater.cli import app as cli
from headwater.cli.serve import _spec
from headwater.routing import build
from headwater.serving import Deployment, Policy
from headwater.serving.app import ServingApp
from headwater.serving.server import BackgroundServer
from headwater.store.online import EmbeddedOnlineStore
from tests.processes import Server, headwater
from tests.registry.artifacts import linear
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


PROJECT = """
from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
user = Entity("user", key="user")
payments = StreamSource.of("payments")
spent = Feature.of("spent", user, payments, "sum", column="amount", window=Lifetime())
fs = FeatureSet("fs", (spent,))
"""


def _served_arms(server: Server, users: list[str]) -> list[str]:
    arms: list[str] = []
    for start in range(0, len(users), 1_000):
        status, answer = server.post("/predict", {"requests": [
            {"entities": {"user": user}, "request": {"amount": 10.0, "age": 40.0}}
            for user in users[start:start + 1_000]]})
        assert status == 200, answer
        arms += [p["arm"] for p in answer["predictions"]]
    return arms


@pytest.mark.slow
def test_a_server_started_with_a_split_keeps_each_entity_on_its_arm_when_the_cli_sets_it_again(
        tmp_path: Path) -> None:
    """``headwater serve --policy split --percent 10``, then ``headwater policy set split
    --weights 90,10``, each a process of its own: 10,000 users answered by the same arm."""
    home = tmp_path / "home"
    EmbeddedOnlineStore(home / "online").close()
    (tmp_path / "features.py").write_text(PROJECT)
    for alias, seed in (("champion", 0), ("challenger", 1)):
        source = linear(tmp_path / f"model-{seed}", seed=seed)
        done = headwater(home, "models", "register", "churn", str(source), "--promote",
                         "--alias", alias, "--reason", "an A/B test")
        assert done.returncode == 0, done.stderr
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o600)
    users = [f"user-{i}" for i in range(10_000)]
    with Server(home, "--model", "churn", "--project", str(tmp_path / "features.py"),
                "--policy", "split", "--percent", "10", "--admin-token-file", str(token),
                "--no-log-predictions") as server:
        before = _served_arms(server, users)
        assert 800 < before.count("challenger") < 1_200, server.printed()
        done = headwater(home, "policy", "set", "split", "--arms", "champion,challenger",
                         "--weights", "90,10", "--reason", "the same split again",
                         "--url", server.url, "--token-file", str(token))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["weights"] == {"champion": 0.9, "challenger": 0.1}
        after = _served_arms(server, users)
    moved = sum(a != b for a, b in zip(before, after, strict=True))
    assert moved == 0, f"{moved} of {len(users)} users changed arm"
