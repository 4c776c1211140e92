"""``headwater train``: train a version from a slice of the log, or keep training.

- ``headwater train --model M --from T0 --to T1``: one stateless run on the examples
  labelled in ``[T0, T1)`` (stage 1: manual, from scratch).
- ``--strategy stateful``: one run updating the alias's version on what came since
  (stage 3 by hand).
- With a trigger (``--every``, ``--daily-at``, ``--volume``, ``--drift``) the command
  keeps running: scheduled retraining (stages 2 and 3) or, with ``--strategy
  continual``, a trainer that learns every batch and publishes when a trigger fires
  (stage 4). Every version is gated and recorded with its lineage and cost. A continual
  trainer also appends its live model's updates to the ``model_updates`` topic every
  ``--update-every-rows`` examples or ``--update-every-ms`` (``--no-updates`` stops it),
  which servers follow: its versions are then checkpoints, every ``--every``, and on
  demand: ``kill -USR1 <pid>`` has the running trainer record one now.

One trainer per model: the command first takes the model's lease in the model store.
When another trainer holds it, ``--standby`` (the default) waits, saying who holds it,
and takes over once that trainer stops or its lease (``--lease``) runs out;
``--no-standby`` refuses at once, naming the holder. A trainer whose lease another has
taken (it was paused past it) stops without publishing. A trainer learns the examples
its own model served (``--examples-of`` names another model's, to start a new model
from them) and says how many of other models' it left out.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Final, cast

import typer
from rich.text import Text

from headwater.cli.common import out, state_of, status
from headwater.cli.signals import stop_requested
from headwater.cli.statusline import MetricsPortOption, StatusLine, TrainerCounts, metrics_on
from headwater.errors import (
    LeaseHeldError,
    UnknownAliasError,
    UnknownModelError,
    ValidationError,
)
from headwater.labels import TRAINING_EXAMPLES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.learning import (
    AnyOf,
    Daily,
    Drift,
    Every,
    Gate,
    Published,
    RateLimited,
    Trainer,
    Trigger,
    Volume,
)
from headwater.learning.gate import DEFAULT_MIN_EXAMPLES
from headwater.learning.lease import TrainerLease, default_holder
from headwater.learning.trainer import Strategy
from headwater.learning.updates import DEFAULT_EVERY_MS, DEFAULT_EVERY_ROWS, UpdatePublisher
from headwater.models import Model
from headwater.registry import ModelRegistry, open_registry
from headwater.repeat import run_until_idle
from headwater.time import SystemClock, format_micros, parse_duration, parse_time

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

__all__ = ["DEFAULT_MODEL_CLASS", "make_factory", "train", "trigger_of"]

#: The model a first trainer builds when the model has no version to take after.
DEFAULT_MODEL_CLASS: Final = "headwater.models:LogisticRegression"


def make_factory(spec: str) -> Callable[[], Model]:
    """The model class named ``module:Class`` (its constructor builds a fresh model)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValidationError("--model-class", f"expected module:Class, got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValidationError("--model-class", f"cannot import {spec!r}: {exc}") from exc
    if not callable(factory):
        raise ValidationError("--model-class", f"{spec!r} is not callable")
    return cast("Callable[[], Model]", factory)


def _fresh_like(registry: ModelRegistry, model: str, alias: str) -> Callable[[], Model]:
    """Fresh models like the alias's version (its class and hyper-parameters, nothing
    learnt), so retraining a user's own model never swaps it for another kind; the
    built-in logistic regression for a model with no version yet."""
    try:
        current = registry.get(model, alias)
    except (UnknownModelError, UnknownAliasError):
        return make_factory(DEFAULT_MODEL_CLASS)
    like = registry.load(model, current.version).model
    kind = like.params().get("estimator") or type(like).__name__
    status().print(f"fresh models: {kind} like {model} v{current.version}, with its "
                   "hyper-parameters and nothing learnt (--model-class chooses another)",
                   markup=False)
    return like.clone


def trigger_of(every: str | None, daily_at: str | None, volume: int | None,
               drift: str | None, rate_limit: str) -> Trigger | None:
    """The trigger the options describe (several: the first that fires)."""
    triggers: list[Trigger] = []
    if every is not None:
        triggers.append(Every(parse_duration(every, field="--every")))
    if daily_at is not None:
        hours, _, minutes = daily_at.partition(":")
        try:
            at = (int(hours) * 60 + int(minutes or 0)) * 60_000_000
        except ValueError:
            raise ValidationError("--daily-at", f"expected HH:MM, got {daily_at!r}") from None
        triggers.append(Daily(at))
    if volume is not None:
        triggers.append(Volume(volume))
    if drift is not None:
        triggers.append(RateLimited(Drift(drift), parse_duration(rate_limit,
                                                                 field="--rate-limit")))
    if not triggers:
        return None
    return triggers[0] if len(triggers) == 1 else AnyOf(*triggers)


def _show(done: Published | None, gate: Gate) -> None:
    if done is None:
        status().print("nothing to learn in that slice")
        return
    v = done.version
    training = v.lineage.training
    verdict = "promoted" if done.verdict.promote else "rejected"
    span = ""
    if training is not None and training.event_time_start is not None:
        assert training.event_time_end is not None
        span = (f" on {training.examples} examples labelled "
                f"{format_micros(training.event_time_start)} .. "
                f"{format_micros(training.event_time_end)}")
    out().print(f"{v.model} v{v.version} (parent: {v.lineage.parent or 'none'}){span}: "
                f"{verdict} — {done.verdict.reason}; {done.cost.rows} rows, "
                f"{done.cost.cpu_s:.3f} CPU s")
    if not done.verdict.promote and 0 < done.verdict.examples < gate.min_examples:
        status().print(f"warning: {done.verdict.examples} examples are too few to judge a "
                       f"version on; train on more, or lower --gate-min-examples "
                       f"({gate.min_examples}) knowingly")


def train(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="The model's name in the store.",
                                       show_default=False)],
    start: Annotated[str | None, typer.Option(
        "--from", help="Train on examples labelled from this time (ISO 8601, or now-7d).")] = None,
    stop: Annotated[str | None, typer.Option(
        "--to", help="… up to this time (exclusive).")] = None,
    strategy: Annotated[str, typer.Option(
        help="stateless (from scratch), stateful (from the alias's version) or continual.")
    ] = "stateless",
    alias: Annotated[str, typer.Option(help="The alias the gate moves.")] = "champion",
    model_class: Annotated[str | None, typer.Option(
        "--model-class", help="module:Class of a fresh model. Default: the alias's version's "
        "own class and hyper-parameters (a clone, nothing learnt), or the built-in "
        "headwater.models:LogisticRegression when the model has no version yet.")
    ] = None,
    every: Annotated[str | None, typer.Option(help="Publish every interval (e.g. 1h).")] = None,
    daily_at: Annotated[str | None, typer.Option(
        "--daily-at", help="Publish daily at HH:MM UTC.")] = None,
    volume: Annotated[int | None, typer.Option(min=1, help="Publish every N examples.")
    ] = None,
    drift: Annotated[str | None, typer.Option(
        help="Publish on drift of the served model's errors: adwin, page_hinkley, kswin.")
    ] = None,
    rate_limit: Annotated[str, typer.Option(
        "--rate-limit", help="At most one drift-triggered version per interval.")] = "1h",
    gate_metric: Annotated[str, typer.Option(
        "--gate-metric", help="log_loss, accuracy or mae (a mean of per-example losses).")
    ] = "log_loss",
    margin: Annotated[float, typer.Option(
        min=0.0, help="How much worse than the champion a candidate may be (held back only when "
        "significantly worse by more).")] = 0.0,
    gate_window: Annotated[int, typer.Option(
        "--gate-window", min=1, help="Recent examples the gate compares on.")] = 1000,
    gate_min_examples: Annotated[int | None, typer.Option(
        "--gate-min-examples", min=1, help="Promote only on at least this many examples "
        f"(default: {DEFAULT_MIN_EXAMPLES}, or --gate-window if smaller).")] = None,
    topic: Annotated[str, typer.Option(help="The training-examples topic.")
    ] = TRAINING_EXAMPLES_TOPIC,
    poll: Annotated[float, typer.Option(help="Seconds between looks at the topic.")] = 1.0,
    idle_timeout: Annotated[float | None, typer.Option(
        help="Stop after this many seconds with no new example (default: run until "
        "stopped).")] = None,
    standby: Annotated[bool, typer.Option(
        "--standby/--no-standby", help="When another trainer holds the model: wait and take "
        "over when it stops (standby), or refuse at once.")] = True,
    lease: Annotated[str, typer.Option(
        "--lease", help="How long the trainer's lease on the model lasts unless renewed: "
        "how soon a standby takes over from a trainer that died.")] = "30s",
    examples_of: Annotated[str | None, typer.Option(
        "--examples-of", help="Learn the examples this model served (default: --model's "
        "own).")] = None,
    metrics_port: MetricsPortOption = None,
    status_every: Annotated[str, typer.Option(
        "--status-every", help="How often a running trainer prints its status line.")
    ] = "10s",
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="No status line (versions and warnings are still printed).")
    ] = False,
    updates: Annotated[bool, typer.Option(
        "--updates/--no-updates", help="A continual trainer appends its live model's "
        "updates to the model_updates topic between versions (servers serve them within "
        "a second); its versions (--every ...) are then checkpoints.")] = True,
    update_every_rows: Annotated[int, typer.Option(
        "--update-every-rows", min=1, help="Send an update every N examples learnt ...")
    ] = DEFAULT_EVERY_ROWS,
    update_every_ms: Annotated[float, typer.Option(
        "--update-every-ms", min=1.0, help="... or every T ms while an example is unsent.")
    ] = DEFAULT_EVERY_MS,
) -> None:
    """Train versions of MODEL from the training-examples topic, with lineage."""
    state = state_of(ctx)
    lease_us = parse_duration(lease, field="--lease")
    if strategy not in ("stateless", "stateful", "continual"):
        raise ValidationError("--strategy", f"expected stateless, stateful or continual, got "
                              f"{strategy!r}")
    trigger = trigger_of(every, daily_at, volume, drift, rate_limit)
    status_every_us = parse_duration(status_every, field="--status-every")
    if strategy == "continual" and trigger is None:
        raise ValidationError("--strategy", "a continual trainer needs a trigger: --every, "
                              "--daily-at, --volume or --drift")
    window = None
    if start is not None or stop is not None:
        if trigger is not None:
            raise ValidationError("--from", "a slice (--from/--to) is one run: no trigger")
        clock = SystemClock()
        window = (parse_time(start, clock=clock, field="--from") if start else -(1 << 62),
                  parse_time(stop, clock=clock, field="--to") if stop else (1 << 62) - 1)
    gate = Gate(gate_metric, margin=margin, window=gate_window, min_examples=gate_min_examples)
    with state.open_log() as log, open_registry(settings=state.settings) as registry, \
            stop_requested() as stopping:
        factory = (make_factory(model_class) if model_class is not None
                   else _fresh_like(registry, model, alias))
        if trigger is not None:  # a trainer started before the joiner waits for examples
            log.ensure_topic(topic, TRAINING_EXAMPLES_SCHEMA)
        held = TrainerLease(registry, model, holder=f"{default_holder()} ({strategy}-cli)",
                            ttl_us=lease_us)
        if held.acquire(wait=standby, on_wait=_standing_by, stop=stopping) is None:
            status().print("stopped while standing by")
            return
        try:
            publisher = (UpdatePublisher(log, model, every_rows=update_every_rows,
                                         every_ms=update_every_ms, on_problem=_warn)
                         if updates and strategy == "continual" else None)
            trainer = Trainer(log, registry, model, factory,
                              strategy=cast("Strategy", strategy), alias=alias,
                              trigger=trigger, gate=gate, trainer=f"{strategy}-cli",
                              topic=topic, examples_of=examples_of, lease=held,
                              updates=publisher)
            if publisher is not None:  # look at the topic as often as updates may go out
                poll = min(poll, update_every_ms / 1000.0)
            if trigger is None:
                _show(trainer.train(event_time=window), gate)
                _left_out(trainer, model)
                return
            counts = TrainerCounts(rows=lambda: trainer.cost.rows)
            line = StatusLine(f"{strategy} trainer", lambda: {
                "examples learnt": counts.rows(), "versions": counts.published,
                "rejected": counts.rejected}, every_us=status_every_us, quiet=quiet)
            with metrics_on(metrics_port, lambda: _trainer_metrics(counts)):
                _keep_training(trainer, gate, strategy, model, poll, idle_timeout, stopping,
                               counts, line)
            line.print()
        finally:
            held.release()
    _left_out(trainer, model)
    status().print(f"trainer stopped: {trainer.cost.rows} rows learnt, "
                   f"{trainer.cost.cpu_s:.2f} CPU s, {trainer.reverts} reverts to a checkpoint")


def _keep_training(trainer: Trainer, gate: Gate, strategy: str, model: str, poll: float,
                   idle_timeout: float | None, stopping: threading.Event,
                   counts: TrainerCounts, line: StatusLine) -> None:
    status().print(f"{strategy} trainer of {model} running (pid {os.getpid()}); Ctrl-C or "
                   "SIGTERM stops it, SIGUSR1 records a checkpoint now")
    wanted = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGUSR1, lambda signum, frame: wanted.set())

    def step() -> bool:
        line.tick()
        before, reverts = dict(trainer.position), trainer.reverts
        done = trainer.step()
        if wanted.is_set():
            wanted.clear()
            checkpoint = trainer.checkpoint("checkpoint on demand (SIGUSR1)")
            if checkpoint is None:
                status().print("checkpoint on demand: nothing learnt since the last version")
            else:
                _show(checkpoint, gate)
        if trainer.reverts > reverts:  # the live model dropped below its checkpoint
            status().print(f"{model} {trainer.published[-1].verdict.reason}")
            counts.reverts = trainer.reverts
        if done is not None:
            _show(done, gate)
            counts.published += 1
            counts.rejected += not done.verdict.promote
            counts.fires[done.fire.kind] = counts.fires.get(done.fire.kind, 0) + 1
            counts.last_published_us = done.version.created_at
        return trainer.position != before or done is not None

    run_until_idle(step, idle_timeout_s=idle_timeout, poll_s=poll, stop=stopping)


def _trainer_metrics(counts: TrainerCounts) -> Collector:
    from headwater.cli.metrics import TrainerMetrics

    return TrainerMetrics(counts, SystemClock())


def _warn(problem: str) -> None:
    status().print(Text.assemble(("warning: ", "yellow"), problem), soft_wrap=True)


def _standing_by(held: LeaseHeldError) -> None:
    status().print(f"standby: {held}; taking over when it stops (Ctrl-C to give up)")


def _left_out(trainer: Trainer, model: str) -> None:
    if trainer.skipped:
        others = ", ".join(f"{n:,} of {name}" for name, n in trainer.skipped.most_common())
        status().print(Text.assemble(
            ("warning: ", "yellow"),
            f"left out examples other models served ({others}): {model} learns only its "
            f"own; pass --examples-of to learn another model's"), soft_wrap=True)


