"""``headwater labels run``: the label joiner as a long-running component.

What silence means is the user's choice, never assumed: by default a prediction with no
outcome in its window makes no example (explicit labels that are merely late are not
turned into zeros); for natural labels such as clicks, where no click is the outcome,
``--timeout-label 0`` makes silence a negative. The joiner prints a status line as it
runs (``--quiet`` silences it) and warns the moment the choice does not fit the
outcomes: explicit labels arriving after the window, or clicks with no timeout label.

Several ``labels run`` processes in one ``--group`` (and one ``--state-dir``) split the
partitions of co-partitioned predictions and outcomes topics; a joiner that loses a
partition to another is fenced off it (see :mod:`headwater.labels.joiner`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from headwater.cli.common import state_of, status
from headwater.cli.signals import stop_requested
from headwater.cli.statusline import MetricsPortOption, metrics_on
from headwater.errors import ValidationError
from headwater.labels import LATE_OUTCOMES_TOPIC, OUTCOMES_TOPIC, TRAINING_EXAMPLES_TOPIC
from headwater.labels.join import JoinRule
from headwater.labels.joiner import LabelJoiner
from headwater.log import Log
from headwater.serving.prediction_log import PREDICTIONS_TOPIC
from headwater.time import format_duration, parse_duration

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

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


def _warn_short_retention(log: Log, rule: JoinRule, topics: list[str],
                          warn: Callable[[str], None]) -> None:
    """Warn when a topic the joiner reads keeps events for less than an outcome may take
    to come: a joiner that falls that far behind would find them gone (and stop)."""
    needed = rule.window + rule.lateness
    for name in topics:
        kept = log.topic(name).retention.max_age_us
        if kept is not None and kept < needed:
            warn(f"topic {name!r} keeps events {format_duration(kept)}, less than the label "
                 f"window plus lateness ({format_duration(needed)}): a joiner that falls that "
                 f"far behind finds them deleted; raise it: headwater topics retention {name} "
                 f"--retention {format_duration(needed)}")


def _describe(rule: JoinRule) -> str:
    """The rule in words: ``window 10m, no outcome -> no example``."""
    silence = "no example" if rule.timeout_label is None else f"label {rule.timeout_label:g}"
    return f"window {format_duration(rule.window)}, no outcome -> {silence}"


@app.command("run")
def run(
    ctx: typer.Context,
    window: Annotated[str, typer.Option(help="How long after a prediction an outcome "
                                        "counts (e.g. 10m).")] = "10m",
    timeout_label: Annotated[str, typer.Option(
        "--timeout-label", help="The label of a prediction with no outcome in the window: "
        "'none' (no example: explicit labels) or a number (0 for clicks, where no click "
        "is the outcome).")] = "none",
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
    status_every: Annotated[str, typer.Option(
        "--status-every", help="How often to print the status line.")] = "10s",
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="No status line (warnings are still printed).")] = False,
    group: Annotated[str, typer.Option(
        help="The joiners' consumer group: joiners in one group split the partitions.")
    ] = "labels",
    metrics_port: MetricsPortOption = None,
) -> None:
    """Join outcomes to predictions until stopped; exactly once across restarts."""
    state = state_of(ctx)
    rule = rule_of(window, timeout_label, positive, lateness)
    every = parse_duration(status_every, field="--status-every")
    console = status()

    def warn(text: str) -> None:
        console.print(Text.assemble(("warning: ", "yellow"), text), soft_wrap=True)

    def say(text: str) -> None:
        console.print(text, markup=False, soft_wrap=True)

    with state.open_log() as log:
        joiner = LabelJoiner(log, rule, state_dir=state_dir or Path(state.settings.home) /
                             "labels", predictions=predictions, outcomes=outcomes,
                             examples=examples, late=LATE_OUTCOMES_TOPIC
                             if outcomes == OUTCOMES_TOPIC else f"{outcomes}.late",
                             fsync=state.settings.fsync, group=group)
        if joiner.unsplit is not None:
            say(joiner.unsplit)
        if joiner.previous_rule is not None:
            say(f"the join rule changed since the last run ({_describe(joiner.previous_rule)} "
                f"-> {_describe(rule)}): the new rule applies to the predictions still open; "
                "those already closed keep what they made")
        _warn_short_retention(log, rule, [predictions, outcomes], warn)
        say(f"joining {outcomes} to {predictions} into {examples} ({_describe(rule)}); "
            "Ctrl-C or SIGTERM stops it")
        try:
            with stop_requested() as stop, metrics_on(metrics_port,
                                                      lambda: _joiner_metrics(joiner)):
                joiner.run(idle_timeout_s=idle_timeout, poll_s=0.2, on_warning=warn,
                           on_status=None if quiet else say, status_every_s=every / 1e6,
                           stop=stop)
            joiner.progress.finish(joiner.clock.now_us())
        finally:
            joiner.close()
    say("label joiner stopped; its state is checkpointed")


def _joiner_metrics(joiner: LabelJoiner) -> Collector:
    from headwater.cli.metrics import JoinerMetrics

    return JoinerMetrics(joiner)
