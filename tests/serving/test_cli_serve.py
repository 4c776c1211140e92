"""``headwater serve``: options to policies, and the command's help."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import headwater.serving
from headwater.cli.serve import _spec, serve
from headwater.errors import ValidationError
from headwater.routing import DEFAULT_SALT, KINDS, build


def test_policies_from_options() -> None:
    assert build(_spec("champion", "challenger", 5)).describe() == {"kind": "champion",
                                                                     "arm": "champion"}
    assert build(_spec("shadow", "next", 5)).arms == ("champion", "next")
    assert build(_spec("split", "challenger", 25)).describe() == {
        "kind": "split", "weights": {"champion": 0.75, "challenger": 0.25},
        "salt": DEFAULT_SALT}
    assert build(_spec("ucb1", "next", 5)).arms == ("champion", "next")
    with pytest.raises(ValidationError, match="--percent"):
        _spec("split", "challenger", 125)


def test_every_kind_of_policy_is_an_option_and_no_other() -> None:
    app = typer.Typer()
    app.command("serve")(serve)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert ", ".join(KINDS) in " ".join(result.output.split())
    with pytest.raises(ValidationError, match="--policy: expected one of champion, shadow"):
        _spec("coin", "challenger", 5)


def test_the_command_documents_its_options() -> None:
    app = typer.Typer()
    app.command("serve")(serve)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--model", "--feature-set", "--host", "--port", "--policy",
                   "--admin-token-file", "--refresh-ms", "--max-batch", "--read-timeout",
                   "--max-connections"):
        assert option in result.output


def test_the_public_surface_is_pinned() -> None:
    assert sorted(headwater.serving.__all__) == sorted(
        name for name in vars(headwater.serving) if not name.startswith("_")
        and name not in {"actions", "bodies", "client", "deployment", "inputs", "messages",
                         "outcomes", "prediction_log", "updates",
                         "predictor", "app", "metrics", "openapi", "server"})


def test_decide_options_build_a_contextual_bandit_or_name_the_problem() -> None:
    from headwater.cli.serve import _action_service
    from headwater.log import Log
    from headwater.testing import MemoryBackend

    log = Log(MemoryBackend())
    reader = None
    with pytest.raises(ValidationError, match="--decide"):
        _action_service("coin", "x", "10m", log, reader)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="--context"):
        _action_service("linucb", None, "10m", log, reader)  # type: ignore[arg-type]
    service = _action_service("thompson", "x, y", "5m", log, reader)  # type: ignore[arg-type]
    assert service.rule.window == 300_000_000
    assert service.decide(["a", "b"], {"x": 1.0, "y": 2.0})[1].action in ("a", "b")
    assert service.log is not None
    service.log.close()


def test_workers_need_a_count_and_a_port_of_their_own(tmp_path: Path) -> None:
    from tests.cli.helpers import Cli

    cli = Cli(tmp_path)
    none = cli.fails(2, "serve", "--model", "m", "--workers", "0")
    assert "--workers" in none.output
    assert "expected at least 1, got 0" in " ".join(none.output.split())
    ephemeral = cli.fails(2, "serve", "--model", "m", "--workers", "2", "--port", "0")
    assert "--port" in ephemeral.output
    assert "workers share one port" in " ".join(ephemeral.output.split())
