"""The ``headwater`` root command: public surface, help, error lines."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import headwater.cli
from headwater.cli import app


def test_public_surface() -> None:
    assert headwater.cli.__all__ == ["app", "main"]
    assert callable(headwater.cli.main)


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("topics", "produce", "consume", "tail", "replay", "demo"):
        assert command in result.stdout


def test_a_file_error_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(app, ["--log", str(blocker / "log"), "topics", "list"])
    assert result.exit_code in (1, 2)
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_in_process_store_is_refused_across_processes(tmp_path: Path) -> None:
    """kafka+mock:// and memory:// live inside one process: each command (and each
    component of headwater run) would get its own empty cluster. Refused, with why."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HEADWATER_HOME": str(tmp_path)}
    for argv in (["--log", "kafka+mock://", "topics", "create", "payments", "--schema",
                  "user:string,ts:timestamp", "--key", "user", "--event-time", "ts"],
                 ["--log", "memory://", "topics", "list"],
                 ["--log", "kafka+mock://", "run", "--model", "churn"]):
        done = subprocess.run([sys.executable, "-m", "headwater", *argv], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2, (argv, done.stderr)
        assert "--log" in done.stderr
        assert "lives inside one process" in done.stderr
        assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "headwater", "run", "--model", "churn"],
                          env={**env, "HEADWATER_ONLINE_URL": "memory://"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "HEADWATER_ONLINE_URL 'memory://' lives inside one process" in done.stderr
    assert not (tmp_path / "run").exists()  # nothing was started


def test_version_is_the_package_version_everywhere(tmp_path: Path) -> None:
    """One version string: ``headwater --version``, the installed metadata and the
    OpenAPI document all say ``headwater.__version__``; the flag creates nothing."""
    import importlib.metadata
    import subprocess
    import sys

    import headwater
    from headwater.serving.openapi import openapi

    done = subprocess.run([sys.executable, "-m", "headwater", "--version"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"headwater {headwater.__version__}"
    assert importlib.metadata.version("headwater") == headwater.__version__
    assert openapi()["info"]["version"] == headwater.__version__
    assert list(tmp_path.iterdir()) == []


def test_the_package_docstring_names_every_command() -> None:
    """The module list in ``headwater.cli``'s docstring is whole: each command of the
    root names its module there."""
    import typer.main

    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    doc = headwater.cli.__doc__ or ""
    modules = {"demo": "demos", "eval": "eval"}
    for name in group.list_commands(typer.Context(group)):
        assert f"headwater.cli.{modules.get(name, name)}`" in doc, name
