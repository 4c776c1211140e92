"""``headwater models list | show | lineage | promote | rollback | history``."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner, Result

from headwater.cli import app
from headwater.config import Settings
from headwater.registry import (
    Creator,
    Lineage,
    ModelRegistry,
    OffsetRange,
    TopicSlice,
    TrainingSlice,
    open_registry,
)
from headwater.time import ManualClock
from tests.registry.harness import START_US


class Models:
    """``headwater models --registry <tmp>/registry …`` over a small store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = root / "registry"

    def open(self) -> ModelRegistry:
        return open_registry(self.location, settings=Settings(fsync="never"),
                             clock=ManualClock(START_US))

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["models", "--registry", str(self.location), *args],
                                  env={"COLUMNS": "200"})

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result.stdout

    def fails(self, code: int, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        return result.stderr


@pytest.fixture
def models(tmp_path: Path) -> Models:
    """churn: 1 → 2 → 3, 2 → 4 (rejected), 5 from scratch; champion v3."""
    cli = Models(tmp_path)
    source = tmp_path / "model"
    source.mkdir()
    parents = {1: None, 2: 1, 3: 2, 4: 2, 5: None}
    with cli.open() as registry:
        for number, parent in parents.items():
            (source / "weights.txt").write_text(str(number))
            registry.register("churn", source, lineage=Lineage(
                parent=parent, metrics={"logloss": 0.5 - number / 100, "auc": 0.7},
                created_by=Creator(trainer="continual", trigger="volume", reason="500 labels"),
                training=TrainingSlice(topics=(TopicSlice(topic="labels", ranges=(
                    OffsetRange(partition=0, start=0, end=500),)),), examples=500)))
        registry.promote("churn", 3, actor="ada", reason="first champion")
        registry.reject("churn", 4, reason="AUC 0.69 < 0.70")
    return cli


def test_list(models: Models, tmp_path: Path) -> None:
    listed = models.ok("list")
    assert "churn" in listed
    assert "v5" in listed
    assert "champion→v3" in listed
    assert "no models" in Models(tmp_path / "empty").ok("list")


def test_show(models: Models) -> None:
    shown = models.ok("show", "churn", "champion")
    for word in ("version v3", "champion", "candidate", "parent", "v2", "continual (volume)",
                 "500 labels", "labels [p0:0..500]", "logloss=0.47", "headwater"):
        assert word in shown, word
    assert "rejected: AUC 0.69 < 0.70" in models.ok("show", "churn", "v4")
    assert "version v5" in models.ok("show", "churn")  # the latest
    record = msgspec.json.decode(models.ok("show", "churn", "2", "--json"))
    assert record["version"] == 2
    assert record["lineage"]["parent"] == 1
    result = models.run("show", "churn", "3", "--verify")
    assert result.exit_code == 0
    assert "verified" in result.stderr


def test_lineage_draws_the_tree(models: Models) -> None:
    drawn = models.ok("lineage", "churn")
    lines = drawn.splitlines()
    assert lines[0] == "churn"
    row = {n: next(i for i, line in enumerate(lines) if f"v{n} " in line) for n in range(1, 6)}
    # the main line 1, 2, 3 at one indentation; 4 branches off 2, drawn under it; 5 apart
    assert [row[n] for n in (1, 2, 4, 3, 5)] == [1, 2, 3, 4, 5]
    v4 = lines[row[4]]
    assert "(from v2)" in v4
    assert "rejected" in v4
    assert v4.index("v4") > lines[row[3]].index("v3") == lines[row[1]].index("v1")
    assert "[champion]" in lines[row[3]]
    assert "(from scratch)" in lines[row[5]]
    part = models.ok("lineage", "churn", "4")
    assert "v4" in part
    assert "v1" in part
    assert "v3" not in part
    assert "v5" not in part


def test_promote_rollback_and_history(models: Models) -> None:
    assert "churn champion → v5 (was v3)" in models.ok(
        "promote", "churn", "5", "--reason", "better logloss", "--actor", "ci")
    assert "churn challenger → v2" in models.ok(
        "promote", "churn", "2", "--alias", "challenger", "--reason", "A/B")
    assert "rolled back to v3 (was v5)" in models.ok("rollback", "churn", "--reason", "alerts")
    history = models.ok("history", "churn")
    for word in ("first champion", "better logloss", "rollback", "alerts", "ci", "challenger"):
        assert word in history, word
    moves = [msgspec.json.decode(line) for line in
             models.ok("history", "churn", "--alias", "champion", "--json").splitlines()]
    assert [(m["from_version"], m["to_version"], m["kind"]) for m in moves] == [
        (None, 3, "promote"), (3, 5, "promote"), (5, 3, "rollback")]
    with models.open() as registry:
        assert registry.get("churn", "champion").version == 3


def test_errors_are_one_line(models: Models) -> None:
    assert "unknown model 'fraud'" in models.fails(1, "show", "fraud")
    assert "no alias 'gold'" in models.fails(1, "show", "churn", "gold")
    assert "has no version 9" in models.fails(1, "lineage", "churn", "9")
    assert "is rejected" in models.fails(1, "promote", "churn", "4", "--reason", "r")
    assert "NAME" in models.fails(2, "history", "no/slash")
    assert "VERSION" in models.fails(2, "promote", "churn", "Best!", "--reason", "r")
    assert "reason" in models.fails(2, "promote", "churn", "5", "--reason", " ")
    models.fails(2, "promote", "churn", "5")  # --reason is required


def test_the_default_store_is_under_home(tmp_path: Path) -> None:
    source = tmp_path / "model"
    source.mkdir()
    (source / "w").write_text("w")
    home = tmp_path / "home"
    with open_registry(settings=Settings(home=str(home), fsync="never")) as registry:
        registry.register("churn", source)
    result = CliRunner().invoke(app, ["models", "list"], env={"HEADWATER_HOME": str(home)})
    assert result.exit_code == 0
    assert "churn" in result.stdout


def test_the_store_and_artifacts_come_from_the_settings(tmp_path: Path) -> None:
    source = tmp_path / "model"
    source.mkdir()
    (source / "w").write_text("w")
    where = tmp_path / "elsewhere"
    artifacts = tmp_path / "blobs"
    settings = Settings(home=str(tmp_path / "home"), fsync="never", registry_url=str(where),
                        artifacts_url=str(artifacts))
    with open_registry(settings=settings) as registry:
        registry.register("churn", source)
    assert (where / "registry.db").exists()
    assert any(artifacts.iterdir())
    env = {"HEADWATER_HOME": str(tmp_path / "home"), "HEADWATER_REGISTRY_URL": str(where),
           "HEADWATER_ARTIFACTS_URL": str(artifacts)}
    result = CliRunner().invoke(app, ["models", "show", "churn", "1", "--verify"], env=env)
    assert result.exit_code == 0, result.output
    assert "verified" in result.stderr
    del env["HEADWATER_ARTIFACTS_URL"]  # <registry>/artifacts holds nothing
    assert CliRunner().invoke(app, ["models", "show", "churn", "1", "--verify"],
                              env=env).exit_code == 1
