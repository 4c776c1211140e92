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
