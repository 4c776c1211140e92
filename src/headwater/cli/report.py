"""``headwater report``: how each way of training a model did, and what it cost.

Quality comes from the training-examples topic: each routing arm's logged predictions
joined with their labels (prequential: every prediction was made before its label was
known). Compute comes from the model store: every version's lineage records the rows
its trainer learnt and the CPU and wall seconds spent, summed per trainer. Together
they answer whether continual learning costs less for the quality it gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pyarrow.compute as pc
import typer

from headwater.cli.common import out, state_of, status
from headwater.cli.models import missing_store
from headwater.errors import ConfigError
from headwater.evaluation.arms import Cost, score_strategies
from headwater.labels import TRAINING_EXAMPLES_TOPIC
from headwater.learning.gate import DEFAULT_MIN_EXAMPLES
from headwater.registry import ModelRegistry, open_registry
from headwater.reports import Cell, Report, render
from headwater.time import SystemClock, parse_time

__all__ = ["costs_by_trainer", "report"]


def costs_by_trainer(registry: ModelRegistry, model: str) -> dict[str, tuple[int, int, Cost]]:
    """Per trainer: versions made, versions rejected, and the summed cost."""
    out: dict[str, tuple[int, int, Cost]] = {}
    for v in registry.versions(model):
        made, rejected, cost = out.get(v.lineage.created_by.trainer, (0, 0, Cost()))
        m = v.lineage.metrics
        cost.add(Cost(int(m.get("rows", 0)), m.get("cpu_s", 0.0), m.get("wall_s", 0.0)))
        out[v.lineage.created_by.trainer] = (made + 1, rejected + (v.status == "rejected"),
                                             cost)
    return out


def report(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="The model's name in the store.",
                                       show_default=False)],
    since: Annotated[str | None, typer.Option(
        "--since", help="Judge predictions made from this time (ISO 8601, or now-1d).")] = None,
    topic: Annotated[str, typer.Option(help="The training-examples topic.")
    ] = TRAINING_EXAMPLES_TOPIC,
    html: Annotated[Path | None, typer.Option("--html", help="Also write an HTML report.")
    ] = None,
    min_examples: Annotated[int, typer.Option(
        "--min-examples", min=1, help="Warn about an arm judged on fewer labelled "
        "predictions.")] = DEFAULT_MIN_EXAMPLES,
    registry_at: Annotated[str | None, typer.Option(
        "--registry", metavar="LOCATION", help="The model store: a directory or "
        "postgresql://…. Default: $HEADWATER_REGISTRY_URL or <$HEADWATER_HOME or "
        ".headwater>/registry.")] = None,
) -> None:
    """Compare the arms of MODEL on quality and its trainers on compute."""
    state = state_of(ctx)
    start = parse_time(since, clock=SystemClock(), field="--since") if since else -(1 << 62)
    missing = missing_store(registry_at, state.settings)
    if missing is not None:
        raise ConfigError(f"no model store at {missing}: nothing to report (give --registry, "
                          "or run where the loop ran)")
    if "://" not in state.location and not Path(state.location).exists():
        raise ConfigError(f"no log at {state.location}: nothing to report (give --log, or "
                          "run where the loop ran)")
    with state.open_log() as log, open_registry(registry_at,
                                                settings=state.settings) as registry:
        rows = log.read_table(topic)
        arms = sorted(set(pc.unique(rows.column("arm")).to_pylist()))
        scores = score_strategies(log, registry, model, arms, {}, start=start, topic=topic)
        costs = costs_by_trainer(registry, model)
    doc = Report(f"{model}: quality and cost")
    doc.section("Quality per arm (prequential, from the logged predictions)")
    quality: list[list[Cell]] = [
        [s.name, s.examples, round(s.accuracy, 4), round(s.auc, 4), round(s.log_loss, 4),
         round(s.kappa_temporal, 4)] for s in scores.strategies]
    quality.append(["no change", scores.strategies[0].examples if scores.strategies else 0,
                    round(scores.no_change_accuracy, 4), round(scores.no_change_auc, 4),
                    None, 0.0])
    doc.table(["arm", "predictions", "accuracy", "ROC AUC", "log loss", "kappa temporal"],
              quality)
    doc.section("Compute per trainer (from the versions' lineage)")
    doc.table(["trainer", "versions", "rejected", "rows learnt", "CPU s", "wall s"],
              [[name, made, rejected, cost.rows, round(cost.cpu_s, 3), round(cost.wall_s, 3)]
               for name, (made, rejected, cost) in sorted(costs.items())])
    small = [(s.name, s.examples) for s in scores.strategies if s.examples < min_examples]
    if small:
        arms_text = ", ".join(f"{name} ({count})" for name, count in small)
        warning = (f"warning: few labelled predictions for {arms_text}; below "
                   f"{min_examples} (--min-examples) an arm's scores are mostly noise")
        doc.text(warning, tone="bad")
    render(doc, out())
    for name, count in small:
        status().print(f"warning: arm {name!r} is judged on {count} labelled predictions, "
                       f"fewer than {min_examples} (--min-examples): its scores are mostly "
                       "noise", soft_wrap=True)
    if html is not None:
        doc.write(html)
        status().print(f"report written to {html}")
