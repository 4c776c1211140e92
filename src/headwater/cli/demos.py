"""``headwater demo``: the continual-learning loop on Elec2, end to end, with a report.

With no subcommand it replays Elec2 as a live stream through the real system on the
embedded backends (:mod:`headwater.demos.elec2`): events and labels into the log,
streaming features, predictions through the prediction service, the label joiner and
four trainers (static, stateless daily, stateful daily, continual), next to the ideal
(the same model learning each label on arrival, in memory). It shows progress, prints
the scorecard and writes an HTML report with plots; ``--json`` prints the figures as
one JSON object, the headline ones as flat keys (``continual_auc``, ``ideal_auc``,
``static_auc``, ``stateless_cpu_s`` …). ``headwater demo ctr`` simulates click-through
with drifting tastes and cold starts (:mod:`headwater.demos.ctr`); ``headwater demo log``
runs the log round trip alone (:mod:`headwater.cli.demo`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from headwater.cli import demo as log_demo
from headwater.cli.common import format_count, out, state_of, status
from headwater.demos.ctr import CtrLoop
from headwater.demos.elec2 import MODEL, STRATEGIES, TRAIN_EVERY, Elec2Loop, LoopStats
from headwater.demos.scorecard import build_report
from headwater.evaluation.arms import Scores, score_strategies
from headwater.reports import render

__all__ = ["app"]

app = typer.Typer(help="Run Headwater end to end on real data.", invoke_without_command=True,
                  no_args_is_help=False)
app.command("log")(log_demo.demo)


class _Figures(msgspec.Struct):
    """What ``headwater demo --json`` prints: the run, each strategy's scores and cost,
    and the headline figures as flat keys (``stateless_daily`` is the ``stateless``
    strategy, retrained from scratch daily; ``ideal`` the same model and features
    learning each label the moment it arrives, in memory)."""

    rows: int
    wall_s: float
    report: str
    strategies: dict[str, dict[str, float]]
    no_change_accuracy: float
    continual_accuracy: float
    continual_auc: float
    ideal_accuracy: float
    ideal_auc: float
    nochange_accuracy: float
    nochange_auc: float
    static_accuracy: float
    static_auc: float
    stateless_daily_accuracy: float
    stateless_daily_auc: float
    stateful_daily_auc: float
    stateless_cpu_s: float
    stateful_cpu_s: float
    continual_cpu_s: float
    ideal_cpu_s: float
    continual_rows_learnt: int
    stateless_rows_learnt: int
    continual_versions: int
    continual_rejected: int
    continual_reverts: int


def _figures(stats: LoopStats, report: Path, scores: Scores, reverts: int) -> _Figures:
    by = {s.name: s for s in scores.strategies}
    return _Figures(
        stats.rows, round(stats.wall_s, 2), str(report),
        {s.name: {"accuracy": s.accuracy, "auc": s.auc, "log_loss": s.log_loss,
                  "kappa_temporal": s.kappa_temporal, "versions": s.versions,
                  "rejected": s.rejected, "rows_learnt": s.cost.rows,
                  "cpu_s": s.cost.cpu_s} for s in scores.strategies},
        scores.no_change_accuracy,
        continual_accuracy=by["continual"].accuracy, continual_auc=by["continual"].auc,
        ideal_accuracy=by["ideal"].accuracy, ideal_auc=by["ideal"].auc,
        nochange_accuracy=scores.no_change_accuracy, nochange_auc=scores.no_change_auc,
        static_accuracy=by["static"].accuracy, static_auc=by["static"].auc,
        stateless_daily_accuracy=by["stateless"].accuracy,
        stateless_daily_auc=by["stateless"].auc, stateful_daily_auc=by["stateful"].auc,
        stateless_cpu_s=by["stateless"].cost.cpu_s, stateful_cpu_s=by["stateful"].cost.cpu_s,
        continual_cpu_s=by["continual"].cost.cpu_s, ideal_cpu_s=by["ideal"].cost.cpu_s,
        continual_rows_learnt=by["continual"].cost.rows,
        stateless_rows_learnt=by["stateless"].cost.rows,
        continual_versions=by["continual"].versions,
        continual_rejected=by["continual"].rejected, continual_reverts=reverts)


@app.callback()
def elec2(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where the demo keeps its data (default: <home>/demo).")] = None,
    rows: Annotated[int | None, typer.Option(
        min=400, help="Replay only the first N rows of Elec2 (default: all 45,312).")] = None,
    train_every: Annotated[int, typer.Option(
        min=1, help="Join labels and train every N rows (the iteration cycle).")
    ] = TRAIN_EVERY,
    price_means: Annotated[bool, typer.Option(
        "--price-means/--no-price-means", help="Use the rolling price and demand means "
        "(Elec2's label is defined against the 24-hour price mean), or the label history "
        "alone.")] = True,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Where to write the HTML report (default: <dir>/report.html).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object of figures.")
    ] = False,
) -> None:
    """Replay Elec2 through the whole system and compare four ways of training."""
    if ctx.invoked_subcommand is not None:
        return
    state = state_of(ctx)
    workspace = directory or Path(state.settings.home) / "demo"
    log_demo.workspace(workspace, fresh=False)
    loop = Elec2Loop(workspace / "elec2", rows=rows, train_every=train_every,
                     price_means=price_means)
    try:
        console = status()
        with console.status("replaying Elec2") as shown:

            def progress(stats: LoopStats) -> None:
                made = sum(stats.versions.values())
                shown.update(f"row {format_count(stats.rows)} of {format_count(loop.rows)}: "
                             f"{format_count(stats.examples)} training examples, "
                             f"{made} versions, {stats.wall_s:.0f} s")

            stats = loop.run(progress)
        scores = score_strategies(loop.log, loop.registry, MODEL, list(STRATEGIES),
                                  {a: t.cost for a, t in loop.trainers.items()},
                                  start=loop.static_until)
        ideal, record = loop.ideal()
        scores = replace(scores, strategies=[*scores.strategies, ideal],
                         series={**scores.series, ideal.name: record})
        reverts = loop.reverts
        report = build_report(scores, loop.registry, MODEL, rows=stats.rows,
                              wall_s=stats.wall_s)
        target = html or workspace / "report.html"
        report.write(target)
    finally:
        loop.close()
    if as_json:
        typer.echo(msgspec.json.encode(_figures(stats, target, scores, reverts)).decode())
        return
    render(report, out())
    status().print(f"report written to {target}")


@app.command("ctr")
def ctr(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where the demo keeps its data (default: <home>/demo).")] = None,
    sessions: Annotated[int, typer.Option(min=50, help="Sessions to simulate.")] = 1500,
    users: Annotated[int, typer.Option(min=10, help="Returning users.")] = 120,
    seed: Annotated[int, typer.Option(help="The simulation's seed.")] = 7,
    html: Annotated[Path | None, typer.Option(
        "--html", help="Where to write the HTML report (default: <dir>/ctr.html).")] = None,
) -> None:
    """Click-through with drifting tastes, clicks as natural labels, cold-start users."""
    state = state_of(ctx)
    workspace = directory or Path(state.settings.home) / "demo"
    log_demo.workspace(workspace, fresh=False)
    loop = CtrLoop(workspace / "ctr", sessions=sessions, users=users, seed=seed)
    try:
        with status().status("simulating sessions") as shown:
            loop.run(lambda s: shown.update(
                f"{format_count(s.impressions)} impressions, {format_count(s.clicks)} clicks, "
                f"{s.versions} versions, {s.wall_s:.0f} s"))
        report = loop.report()
        target = html or workspace / "ctr.html"
        report.write(target)
    finally:
        loop.close()
    render(report, out())
    status().print(f"report written to {target}")
