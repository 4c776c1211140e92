"""The ``headwater`` command: its global options, error handling and subcommands."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from headwater import __version__
from headwater.cli import (
    consume,
    datasets,
    demos,
    features,
    labels,
    models,
    policy,
    produce,
    replay,
    report,
    run,
    serve,
    simulate,
    tail,
    topics,
    train,
    ui,
)
from headwater.cli import eval as evaluation
from headwater.cli.common import EXIT_FAILURE, CliState, exit_code, print_error
from headwater.config import Settings
from headwater.errors import HeadwaterError

__all__ = ["app", "main"]


class _Headwater(TyperGroup):
    """The root command: a Headwater error (or a failed file operation) ends the run with
    one line on standard error and an exit code, not a traceback."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except HeadwaterError as exc:
            print_error(exc)
            raise typer.Exit(exit_code(exc)) from None
        except OSError as exc:
            print_error(exc)
            raise typer.Exit(EXIT_FAILURE) from None


app = typer.Typer(
    cls=_Headwater,
    name="headwater",
    help="Headwater: streaming-first real-time machine learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"headwater {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    log: Annotated[str | None, typer.Option(
        "--log", metavar="LOCATION",
        help="The log: a directory (embedded), redis://… or kafka://…. "
        "Default: $HEADWATER_LOG_URL, else <$HEADWATER_HOME or .headwater>/log.")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False,
) -> None:
    settings = Settings.from_env()
    # Every file and directory a command creates gets the settings' permissions
    # (owner-only by default): events, predictions and models are personal data.
    os.umask(settings.umask)
    ctx.obj = CliState(settings=settings, location=log or settings.log_location)


app.add_typer(topics.app, name="topics")
app.add_typer(models.app, name="models")
app.add_typer(features.app, name="features")
app.add_typer(datasets.app, name="datasets")
app.add_typer(evaluation.app, name="eval")
app.command("produce")(produce.produce)
app.command("consume")(consume.consume)
app.command("tail")(tail.tail)
app.command("replay")(replay.replay)
app.add_typer(demos.app, name="demo")
app.command("serve")(serve.serve)
app.add_typer(policy.app, name="policy")
app.add_typer(labels.app, name="labels")
app.command("train")(train.train)
app.command("run")(run.run)
app.command("simulate")(simulate.simulate)
app.command("report")(report.report)
app.command("ui")(ui.ui)


def main() -> None:
    """The console script."""
    app()
