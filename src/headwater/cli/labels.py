"""``headwater labels run``: the label joiner as a long-running component."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from headwater.cli.common import format_duration, state_of, status
from headwater.cli.signals import stop_requested
from headwater.errors import ValidationError
from headwater.labels import LATE_OUTCOMES_TOPIC, OUTCOMES_TOPIC, TRAINING_EXAMPLES_TOPIC
from headwater.labels.join import JoinRule
from headwater.labels.joiner import LabelJoiner
from headwater.log import Log
from headwater.serving.prediction_log import PREDICTIONS_TOPIC
from headwater.time import parse_duration

__all__ = ["app", "rule_of"]

app = typer.Typer(help="Join outcomes to logged predictions: training examples.",
                  no_args_is_help=True)


def rule_of(window: str, timeout_label: str, positive: float, lateness: str) -> JoinRule:
    """The join rule the options describe (``timeout_label`` ``none``: no example)."""
    if timeout_label.lower() == "none":
        timeout: float | None = None
    else:
        try:
            timeout = float(timeout_label)
        except ValueError:
            raise ValidationError("--timeout-label", f"expected a number or 'none', got "
                                  f"{timeout_label!r}") from None
    return JoinRule(window=parse_duration(window, field="--window"), positive=positive,
                    timeout_label=timeout, lateness=parse_duration(lateness, field="--lateness"))


def _warn_short_retention(log: Log, rule: JoinRule, topics: list[str]) -> None:
    """Warn when a topic the joiner reads keeps events for less than an outcome may take
    to come: a joiner that falls that far behind would find them gone (and stop)."""
    needed = rule.window + rule.lateness
    for name in topics:
        kept = log.topic(name).retention.max_age_us
        if kept is not None and kept < needed:
            status().print(
                f"warning: topic {name!r} keeps events {format_duration(kept)}, less than the "
                f"label window plus lateness ({format_duration(needed)}): a joiner that falls "
                f"that far behind finds them deleted; raise it: headwater topics retention "
                f"{name} --retention {format_duration(needed)}", style="yellow",
                soft_wrap=True)


@app.command("run")
def run(
    ctx: typer.Context,
    window: Annotated[str, typer.Option(help="How long after a prediction an outcome "
                                        "counts (e.g. 10m).")] = "10m",
    timeout_label: Annotated[str, typer.Option(
        "--timeout-label", help="The label of a prediction with no outcome in the window "
        "('none': no example).")] = "0",
    positive: Annotated[float, typer.Option(
        help="The label an outcome without its own label gives (a click).")] = 1.0,
    lateness: Annotated[str, typer.Option(
        help="How late an outcome may be appended after it happened.")] = "0s",
    predictions: Annotated[str, typer.Option(help="The predictions topic.")] = PREDICTIONS_TOPIC,
    outcomes: Annotated[str, typer.Option(help="The outcomes topic.")] = OUTCOMES_TOPIC,
    examples: Annotated[str, typer.Option(help="The training-examples topic.")
    ] = TRAINING_EXAMPLES_TOPIC,
    state_dir: Annotated[Path | None, typer.Option(
        "--state-dir", help="Where the joiner checkpoints (default: <home>/labels).")] = None,
    idle_timeout: Annotated[float | None, typer.Option(
        help="Stop after this many seconds with nothing new (default: run until stopped).")
    ] = None,
) -> None:
    """Join outcomes to predictions until stopped; exactly once across restarts."""
    state = state_of(ctx)
    rule = rule_of(window, timeout_label, positive, lateness)
    with state.open_log() as log:
        joiner = LabelJoiner(log, rule, state_dir=state_dir or Path(state.settings.home) /
                             "labels", predictions=predictions, outcomes=outcomes,
                             examples=examples, late=LATE_OUTCOMES_TOPIC
                             if outcomes == OUTCOMES_TOPIC else f"{outcomes}.late",
                             fsync=state.settings.fsync != "never")
        _warn_short_retention(log, rule, [predictions, outcomes])
        status().print(f"joining {outcomes} to {predictions} into {examples}; Ctrl-C or "
                       "SIGTERM stops it")
        with stop_requested() as stop:
            joiner.run(idle_timeout_s=idle_timeout, poll_s=0.2, stop=stop)
    status().print("label joiner stopped; its state is checkpointed")
