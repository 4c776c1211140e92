"""``headwater policy``: the routing policy of a running server, seen and changed live."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from headwater.cli import app as cli
from headwater.errors import ValidationError
from headwater.routing import CanarySpec
from headwater.serving.app import ServingApp
from headwater.serving.server import BackgroundServer
from tests.serving.conftest import World, train


def test_set_a_bandit_live_then_show_it(app: ServingApp, world: World, tmp_path: Path) -> None:
    world.register(train(2), "challenger")
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o644)
    with BackgroundServer(app, "127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.port}"
        exposed = CliRunner().invoke(cli, ["policy", "set", "thompson", "--reason", "explore",
                                           "--url", url, "--token-file", str(token)])
        assert exposed.exit_code == 2
        assert f"readable or writable by other users (mode 0644): chmod 600 {token}" in " ".join(
            exposed.output.split())
        token.chmod(0o600)
        result = CliRunner().invoke(cli, ["policy", "set", "thompson", "--reason", "explore",
                                          "--seed", "3", "--url", url, "--token-file",
                                          str(token)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["kind"] == "thompson-beta"
        shown = CliRunner().invoke(cli, ["policy", "show", "--url", url])
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["arms"] == {"champion": 1, "challenger": 2}
        refused = CliRunner().invoke(cli, ["policy", "set", "canary", "--reason", "x",
                                           "--percent", "5", "--url", url])
        assert refused.exit_code == 2  # no token: the server says 401
        assert "401" in refused.output
    assert app.policy_changes[-1][:2] == ("headwater-cli", "explore")


def test_an_arm_that_is_no_alias_is_refused_by_the_command_and_the_server(
        app: ServingApp, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o600)
    before = app.deployment.snapshot.policy
    with BackgroundServer(app, "127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.port}"
        # only a champion: the default arms of a bandit name a challenger that is not there
        result = CliRunner().invoke(cli, ["policy", "set", "thompson", "--reason", "explore",
                                          "--url", url, "--token-file", str(token)])
        assert result.exit_code == 2
        said = " ".join(result.output.split())
        assert ("policy.arms: 'challenger' is not an alias of model 'fraud' (its aliases: "
                "champion)") in said
        # the server refuses too, whoever sends the request
        body = json.dumps({"policy": {"kind": "split", "weights": {"champion": 1,
                                                                   "chalenger": 1}},
                           "reason": "typo"}).encode()
        request = urllib.request.Request(f"{url}/admin/policy", data=body, method="PUT",
                                         headers={"authorization": "Bearer s3cret",
                                                  "content-type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 422
        error = json.loads(refused.value.read())["error"]
        assert error["field"] == "policy.arms"
        assert "'chalenger' is not an alias of model 'fraud'" in error["reason"]
    assert app.deployment.snapshot.policy is before
    assert app.policy_changes == []


def test_bad_options_are_named_before_anything_is_sent() -> None:
    from headwater.cli.policy import spec_of

    with pytest.raises(ValidationError, match="--weights"):
        spec_of("split", arms=["a", "b"], percent=None, weights=[1.0], discount=None, seed=None)
    with pytest.raises(ValidationError, match=r"policy\.kind"):
        spec_of("coin", arms=[], percent=None, weights=[], discount=None, seed=None)
    canary = spec_of("canary", arms=[], percent=None, weights=[], discount=None, seed=None)
    assert isinstance(canary, CanarySpec)
    assert canary.percent == 5.0
