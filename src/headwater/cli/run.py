"""``headwater run``: the whole loop as supervised processes.

It starts four components, each a ``headwater`` command in its own process, and
restarts any that stops (:class:`~headwater.orchestrator.Supervisor`):

- ``features``: ``headwater features run`` (the feature engine);
- ``server``: ``headwater serve`` (the prediction service, logging predictions to
  ``--predictions-topic``);
- ``labels``: ``headwater labels run`` (outcomes joined to the predictions of that
  topic);
- ``trainer``: ``headwater train`` (by default a continual trainer).

Each writes its output to ``<home>/run/<name>.log``. Training never blocks serving:
the server hot-swaps a version when the trainer moves the alias, and applies the
continual trainer's model updates as they come (``--update-every-rows``,
``--update-every-ms``), so a label reaches the served model within a second.

The options are one :class:`~headwater.system.SystemConfig`, checked before any process
starts (a bad window, trigger or feature set is refused at once). A model with no
version yet gets a first one that has learnt nothing (``--model-class``, the
built-in logistic regression by default) behind the champion alias
(:func:`~headwater.system.first_version`): the server answers and logs from the first
request, so labels join and the trainer has something to learn.

Stopping: SIGTERM, SIGINT (Ctrl-C) or SIGHUP stops every component (each checkpoints
and exits), then the command exits 0; a supervisor killed outright takes its components
with it (Linux). One ``headwater run`` per home: a second one is refused, naming the
first one's pid (``<home>/run/lock``). A component that exits soon after starting with
the same code five times in a row is not restarted again: every component is stopped
and the command exits 1, naming it with the last lines of its output.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, cast

import typer

from headwater.cli.common import out, state_of, status
from headwater.cli.labels import rule_of
from headwater.cli.serve import feature_set_of
from headwater.cli.signals import stop_requested
from headwater.cli.train import DEFAULT_MODEL_CLASS, make_factory, trigger_of
from headwater.errors import ValidationError
from headwater.labels import JoinRule
from headwater.learning import Gate, Strategy
from headwater.locations import check_shared
from headwater.models import Model
from headwater.orchestrator import Component, RunLock, Supervisor
from headwater.registry import open_registry
from headwater.serving.prediction_log import PREDICTIONS_TOPIC
from headwater.system import SystemConfig, first_version

__all__ = ["components", "config_of", "run"]


def _checked(*, window: str, timeout_label: str, strategy: str, every: str | None,
             volume: int | None, drift: str | None, gate_min_examples: int | None,
             model_class: str) -> tuple[JoinRule, Gate, Callable[[], Model]]:
    """The join rule, gate and model class the options describe, each option checked
    (and named when refused) before any process starts."""
    if strategy not in ("stateless", "stateful", "continual"):
        raise ValidationError("--strategy", f"expected stateless, stateful or continual, got "
                              f"{strategy!r}")
    rule = rule_of(window, timeout_label, 1.0, "0s")
    trigger_of(every, None, volume, drift, "1h")
    if strategy == "continual" and not (every or volume or drift):
        raise ValidationError("--strategy", "a continual trainer needs a trigger: --every, "
                              "--volume or --drift")
    if gate_min_examples is not None and gate_min_examples > Gate().window:
        raise ValidationError("--gate-min-examples", f"expected at most {Gate().window} (the "
                              f"gate judges on the last {Gate().window} examples)")
    return rule, Gate(min_examples=gate_min_examples), make_factory(model_class)


def config_of(model: str, *, project: str, feature_set: str | None, window: str,
              timeout_label: str, strategy: str, every: str | None, volume: int | None,
              drift: str | None, gate_min_examples: int | None, model_class: str,
              predictions_topic: str = PREDICTIONS_TOPIC) -> SystemConfig:
    """The system the options describe: what each component is started with."""
    rule, gate, factory = _checked(window=window, timeout_label=timeout_label,
                                   strategy=strategy, every=every, volume=volume, drift=drift,
                                   gate_min_examples=gate_min_examples,
                                   model_class=model_class)
    return SystemConfig(model, feature_set_of(project, feature_set), rule=rule,
                        strategy=cast("Strategy", strategy),
                        trigger=lambda: trigger_of(every, None, volume, drift, "1h"),
                        gate=lambda: gate, model_class=factory,
                        predictions_topic=predictions_topic)


def components(model: str, *, project: str | None, feature_set: str | None, host: str,
               port: int, window: str, timeout_label: str, strategy: str, every: str | None,
               volume: int | None, drift: str | None,
               gate_min_examples: int | None = None,
               predictions_topic: str = PREDICTIONS_TOPIC,
               updates: tuple[str, ...] = ()) -> list[Component]:
    """The four components' command lines: the server logs its predictions to
    ``predictions_topic`` and the joiner reads them there."""
    base = (sys.executable, "-m", "headwater")
    project_args = ("--project", project) if project else ()
    fs_args = ("--feature-set", feature_set) if feature_set else ()
    trigger: tuple[str, ...] = ()
    if every:
        trigger += ("--every", every)
    if volume:
        trigger += ("--volume", str(volume))
    if drift:
        trigger += ("--drift", drift)
    gate: tuple[str, ...] = ()
    if gate_min_examples is not None:
        gate = ("--gate-min-examples", str(gate_min_examples))
    return [
        Component("features", (*base, "features", "run", *project_args)),
        Component("server", (*base, "serve", "--model", model, "--host", host, "--port",
                             str(port), *project_args, *fs_args,
                             "--predictions-topic", predictions_topic)),
        Component("labels", (*base, "labels", "run", "--window", window, "--timeout-label",
                             timeout_label, "--predictions", predictions_topic)),
        Component("trainer", (*base, "train", "--model", model, "--strategy", strategy,
                              *trigger, *gate, *updates)),
    ]


def _update_args(every_rows: int | None, every_ms: float | None) -> tuple[str, ...]:
    args: tuple[str, ...] = ()
    if every_rows is not None:
        args += ("--update-every-rows", str(every_rows))
    if every_ms is not None:
        args += ("--update-every-ms", str(every_ms))
    return args


def run(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="The model to serve and train.",
                                       show_default=False)],
    project: Annotated[str | None, typer.Option(
        "--project", metavar="FILE", help="The module of definitions.")] = None,
    feature_set: Annotated[str | None, typer.Option(
        "--feature-set", help="The feature set the model reads.")] = None,
    host: Annotated[str, typer.Option(help="The address the server binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The server's port.")] = 8000,
    window: Annotated[str, typer.Option(help="The label window (e.g. 10m).")] = "10m",
    timeout_label: Annotated[str, typer.Option(
        "--timeout-label", help="The label of no outcome in the window: 'none' (no "
        "example: explicit labels) or a number (0 for clicks).")] = "none",
    strategy: Annotated[str, typer.Option(help="The trainer's strategy.")] = "continual",
    every: Annotated[str | None, typer.Option(help="Publish every interval.")] = "1h",
    volume: Annotated[int | None, typer.Option(help="… or every N examples.")] = None,
    drift: Annotated[str | None, typer.Option(help="… or on drift (adwin, …).")] = None,
    gate_min_examples: Annotated[int | None, typer.Option(
        "--gate-min-examples", min=1, help="The trainer's gate promotes only on at least "
        "this many examples (default: the trainer's).")] = None,
    predictions_topic: Annotated[str, typer.Option(
        "--predictions-topic", help="The topic the server logs predictions to and the "
        "label joiner reads them from.")] = PREDICTIONS_TOPIC,
    model_class: Annotated[str, typer.Option(
        "--model-class", help="module:Class of the first version, registered (nothing "
        "learnt) when the model has none.")] = DEFAULT_MODEL_CLASS,
    update_every_rows: Annotated[int | None, typer.Option(
        "--update-every-rows", min=1, help="The continual trainer sends the servers an "
        "update every N examples ... (default: the trainer's)")] = None,
    update_every_ms: Annotated[float | None, typer.Option(
        "--update-every-ms", min=1.0, help="... or every T ms while an example is unsent "
        "(default: the trainer's).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the commands only.")
    ] = False,
) -> None:
    """Run the feature engine, the server, the label joiner and a trainer, supervised."""
    state = state_of(ctx)
    _checked(window=window, timeout_label=timeout_label, strategy=strategy, every=every,
             volume=volume, drift=drift, gate_min_examples=gate_min_examples,
             model_class=model_class)
    check_shared(state.location, "--log")
    check_shared(state.settings.online_location, "HEADWATER_ONLINE_URL")
    check_shared(state.settings.registry_location, "HEADWATER_REGISTRY_URL")
    parts = components(model, project=project, feature_set=feature_set, host=host, port=port,
                       window=window, timeout_label=timeout_label, strategy=strategy,
                       every=every, volume=volume, drift=drift,
                       gate_min_examples=gate_min_examples,
                       predictions_topic=predictions_topic,
                       updates=_update_args(update_every_rows, update_every_ms))
    env = {"HEADWATER_LOG_URL": state.location}
    parts = [Component(c.name, c.argv, env) for c in parts]
    if dry_run:
        for c in parts:
            out().print(f"{c.name}: {' '.join(c.argv)}", markup=False, soft_wrap=True)
        return
    config = config_of(model, project=project or state.settings.project,
                       feature_set=feature_set, window=window, timeout_label=timeout_label,
                       strategy=strategy, every=every, volume=volume, drift=drift,
                       gate_min_examples=gate_min_examples, model_class=model_class,
                       predictions_topic=predictions_topic)
    logs = Path(state.settings.home) / "run"
    with RunLock(logs / "lock"), stop_requested() as stop:
        with open_registry(settings=state.settings) as registry:
            first = first_version(registry, config, actor="headwater-run")
        if first is not None:
            status().print(f"{model} had no version: registered v{first.version} "
                           f"({model_class}, nothing learnt) as champion")
        supervisor = Supervisor(parts, log_dir=logs,
                                on_event=lambda name, what: status().print(f"{name}: {what}"))
        status().print(f"running {len(parts)} components (logs in {logs}); Ctrl-C or "
                       "SIGTERM stops them")
        supervisor.run(stop=stop)
    status().print("stopped")
