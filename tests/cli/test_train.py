"""``headwater labels run`` and ``headwater train``: from logged predictions and outcomes
to versions with lineage; ``headwater run --dry-run`` shows the supervised commands."""

from __future__ import annotations

import msgspec
import numpy as np
import pyarrow as pa

from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC
from headwater.log.schema import TIMESTAMP
from headwater.registry import open_registry
from headwater.serving.prediction_log import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from tests.cli.helpers import Cli

T0 = 946_684_800_000_000  # 2000-01-01T00:00Z
MINUTE = 60_000_000


def log_traffic(cli: Cli, start: int, count: int, arm: str = "champion", *,
                model: str = "m") -> None:
    """``count`` predictions of ``model`` a minute apart; a click within 2 minutes when
    x1 + x2 > 0."""
    rng = np.random.default_rng(start)
    x = rng.normal(size=(count, 2))
    ids = [f"r{start + i}" for i in range(count)]
    times = [T0 + (start + i) * MINUTE for i in range(count)]
    with cli.open() as log:
        log.ensure_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA)
        log.ensure_topic(OUTCOMES_TOPIC, OUTCOMES_SCHEMA)
        log.append(PREDICTIONS_TOPIC, pa.record_batch({
            "request_id": ids, "entity": ["u"] * count,
            "features": [msgspec.json.encode({"x1": a, "x2": b}) for a, b in x.tolist()],
            "model": [model] * count, "version": pa.array([1] * count, pa.int64()),
            "score": [0.5] * count, "arm": [arm] * count, "served": [True] * count,
            "missing": [""] * count, "ts": pa.array(times, pa.int64()).cast(TIMESTAMP),
            "propensity": [1.0] * count, "latency_ms": [0.1] * count,
            "defaulted": [""] * count, "update": [None] * count,
            "entities": [None] * count,
        }, schema=PREDICTIONS_SCHEMA.arrow_schema()))
        clicked = [i for i in range(count) if x[i, 0] + x[i, 1] > 0]
        log.append(OUTCOMES_TOPIC, pa.record_batch({
            "request_id": [ids[i] for i in clicked], "entity": ["u"] * len(clicked),
            "label": pa.array([None] * len(clicked), pa.float64()),
            "ts": pa.array([times[i] + MINUTE for i in clicked], pa.int64()).cast(TIMESTAMP),
        }, schema=OUTCOMES_SCHEMA.arrow_schema()))


def test_join_then_train_by_hand_then_statefully(cli: Cli) -> None:
    env = {"HEADWATER_HOME": str(cli.root)}
    log_traffic(cli, 0, 400)
    joined = cli.run("labels", "run", "--window", "2m", "--timeout-label", "0",  # clicks
                     "--idle-timeout", "0", env=env)
    assert joined.exit_code == 0, joined.output
    examples = cli.events("training_examples")
    assert examples.num_rows == 400  # the clock is past every window: silence is a 0
    assert set(examples.column("source").to_pylist()) == {"outcome", "timeout"}

    small = cli.run("train", "--model", "m", "--from", "2000-01-01T00:00:00Z", "--to",
                    "2000-01-01T03:00:00Z", env=env)
    assert small.exit_code == 0, small.output
    assert "m v1 (parent: none) on 178 examples" in small.stdout
    text = " ".join(small.output.split())
    assert "rejected — only 178 examples to judge on; promoting needs at least 200" in text
    assert "--gate-min-examples" in text
    first = cli.run("train", "--model", "m", "--from", "2000-01-01T00:00:00Z", "--to",
                    "2000-01-01T03:00:00Z", "--gate-min-examples", "100", env=env)
    assert first.exit_code == 0, first.output
    assert "m v2 (parent: none)" in first.stdout
    assert "promoted" in first.stdout
    log_traffic(cli, 400, 200)
    assert cli.run("labels", "run", "--window", "2m", "--timeout-label", "0",
                   "--idle-timeout", "0",
                   env=env).exit_code == 0
    second = cli.run("train", "--model", "m", "--strategy", "stateful", "--margin", "0.5",
                     env=env)
    assert second.exit_code == 0, second.output
    assert "m v3 (parent: 2)" in second.stdout
    with open_registry(cli.root / "registry") as registry:
        rejected, v1, v2 = registry.versions("m")
        assert rejected.status == "rejected"
        assert v1.lineage.training is not None
        assert v2.lineage.training is not None
        assert v1.lineage.training.event_time_end is not None
        assert v1.lineage.training.event_time_end <= T0 + 180 * MINUTE
        assert v1.lineage.created_by.trainer == "stateless-cli"
        assert v2.lineage.training.topics[0].ranges[0].start > 0
        assert registry.aliases("m")["champion"] == 3


def test_a_trainer_learns_only_what_its_model_served_and_says_what_it_left_out(
        cli: Cli) -> None:
    env = {"HEADWATER_HOME": str(cli.root)}
    log_traffic(cli, 0, 300, model="m")
    log_traffic(cli, 300, 120, model="other")  # a second model served by the same server
    assert cli.run("labels", "run", "--window", "2m", "--timeout-label", "0",
                   "--idle-timeout", "0", env=env).exit_code == 0
    assert cli.events("training_examples").num_rows == 420
    mine = cli.run("train", "--model", "m", env=env)
    assert mine.exit_code == 0, mine.output
    assert "left out examples other models served (120 of other)" in mine.stderr
    assert "pass --examples-of" in mine.stderr
    fresh = cli.run("train", "--model", "fresh", "--examples-of", "other", env=env)
    assert fresh.exit_code == 0, fresh.output
    assert "(300 of m)" in fresh.stderr
    with open_registry(cli.root / "registry") as registry:
        m, = registry.versions("m")
        assert m.lineage.training is not None
        assert m.lineage.training.examples == 300
        assert m.lineage.created_by.examples_of == "m"
        started, = registry.versions("fresh")
        assert started.lineage.training is not None
        assert started.lineage.training.examples == 120
        assert started.lineage.created_by.examples_of == "other"


def test_bad_training_options_are_named(cli: Cli) -> None:
    env = {"HEADWATER_HOME": str(cli.root)}
    result = cli.run("train", "--model", "m", "--strategy", "continual", env=env)
    assert result.exit_code == 2
    assert "--strategy" in result.output
    result = cli.run("train", "--model", "m", "--model-class", "nowhere:Model", env=env)
    assert result.exit_code == 2
    assert "--model-class" in result.output
    result = cli.run("labels", "run", "--timeout-label", "maybe", env=env)
    assert result.exit_code == 2
    assert "--timeout-label" in result.output


def test_run_dry_run_lists_the_four_components(cli: Cli) -> None:
    result = cli.ok("run", "--model", "m", "--dry-run", "--volume", "100",
                    "--gate-min-examples", "50")
    names = [line.split(":")[0] for line in result.stdout.splitlines()]
    assert names == ["features", "server", "labels", "trainer"]
    trainer = result.stdout.splitlines()[-1]
    assert "--volume 100" in trainer
    assert "--gate-min-examples 50" in trainer


def test_run_logs_predictions_where_the_joiner_reads_them(cli: Cli) -> None:
    result = cli.ok("run", "--model", "m", "--dry-run", "--predictions-topic", "checkout")
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert "--predictions-topic checkout" in lines["server"]
    assert "--predictions checkout" in lines["labels"]
    default = cli.ok("run", "--model", "m", "--dry-run")
    lines = dict(line.split(": ", 1) for line in default.stdout.splitlines())
    assert "--predictions-topic predictions" in lines["server"]
    assert "--predictions predictions" in lines["labels"]


def test_report_compares_arms_and_trainers(cli: Cli, tmp_path: object) -> None:
    env = {"HEADWATER_HOME": str(cli.root)}
    log_traffic(cli, 0, 300)
    log_traffic(cli, 300, 12, arm="challenger")
    assert cli.run("labels", "run", "--window", "2m", "--timeout-label", "0",
                   "--idle-timeout", "0",
                   env=env).exit_code == 0
    assert cli.run("train", "--model", "m", env=env).exit_code == 0
    html = cli.root / "report.html"
    result = cli.run("report", "--model", "m", "--html", str(html), env=env)
    assert result.exit_code == 0, result.output
    assert "champion" in result.stdout
    assert "stateless-cli" in result.stdout
    assert "no change" in result.stdout
    assert "<table" in html.read_text()
    warnings = " ".join(result.stderr.split())
    assert ("warning: arm 'challenger' is judged on 12 labelled predictions, fewer than "
            "200 (--min-examples)") in warnings
    assert "'champion'" not in warnings
    assert "challenger (12)" in html.read_text()
    quiet = cli.run("report", "--model", "m", "--min-examples", "10", env=env)
    assert quiet.exit_code == 0, quiet.output
    assert "warning" not in quiet.stderr


def test_retraining_a_model_keeps_its_kind_and_hyper_parameters(cli: Cli) -> None:
    """``headwater train`` without ``--model-class`` trains fresh models like the
    champion (its class and hyper-parameters), never the built-in model in its place,
    and says so."""
    env = {"HEADWATER_HOME": str(cli.root)}
    registered = cli.run("models", "register", "m", "--builtin", "linear",
                         "--param", "alpha=0.7", "--promote", env=env)
    assert registered.exit_code == 0, registered.output
    log_traffic(cli, 0, 300)
    assert cli.run("labels", "run", "--window", "2m", "--timeout-label", "0",
                   "--idle-timeout", "0", env=env).exit_code == 0
    trained = cli.run("train", "--model", "m", env=env)
    assert trained.exit_code == 0, trained.output
    said = " ".join(trained.stderr.split())
    assert "fresh models: LinearRegression like m v1" in said
    with open_registry(cli.root / "registry") as registry:
        first, second = registry.versions("m")
        assert second.lineage.hyperparameters["alpha"] == 0.7
        assert (second.lineage.hyperparameters.keys()
                == first.lineage.hyperparameters.keys())
        assert type(registry.load("m", 2).model).__name__ == "LinearRegression"
