"""Run the ``headwater`` command in-process against an embedded log in a temporary directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec
import pyarrow as pa
from typer.testing import CliRunner, Result

from headwater.cli import app
from headwater.config import Settings
from headwater.log import Log, open_log


class Cli:
    """``headwater --log <tmp>/log …`` with helpers to check its outcome."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log_dir = root / "log"

    def run(self, *args: str, input: str | bytes | None = None,
            env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(app, ["--log", str(self.log_dir), *args], input=input, env=env)

    def ok(self, *args: str, input: str | bytes | None = None) -> Result:
        result = self.run(*args, input=input)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    def fails(self, code: int, *args: str, input: str | bytes | None = None) -> Result:
        """Run, expect exit ``code`` with a one-line error and no traceback."""
        result = self.run(*args, input=input)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        return result

    def open(self) -> Log:
        return open_log(str(self.log_dir), settings=Settings())

    def events(self, topic: str) -> pa.Table:
        """Every event of ``topic``, all partitions, in (partition, offset) order."""
        with self.open() as log:
            batches = [f.batch for f in log.replay(topic)]
            schema = log.topic(topic).schema.stored_schema()
        return pa.Table.from_batches(batches, schema=schema)

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text)
        return path


def json_lines(text: str) -> list[dict[str, object]]:
    return [msgspec.json.decode(line) for line in text.splitlines() if line.strip()]


def lines_of(rows: Sequence[dict[str, object]]) -> str:
    return "".join(msgspec.json.encode(row).decode() + "\n" for row in rows)
