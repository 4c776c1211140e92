"""``headwater eval``: backtest, prequential, shadow, A/B and canary reports from the log.

Each command reads labelled traffic — the ``training_examples`` topic by default
(``--topic``): each logged prediction joined with its label — evaluates it with
:mod:`headwater.evaluation`, prints the report in the terminal and, with
``--html PATH``, writes it as one self-contained HTML file. ``--since`` and
``--until`` keep the rows predicted in ``[since, until)``.

- ``backtest MODEL``: walk-forward folds (``--train``, ``--test``, ``--step``), a fresh
  copy of the model's hyper-parameters per fold; ``--feature-set`` recomputes the
  features as known at each prediction time from the log instead of reading them as
  served.
- ``prequential MODEL``: test-then-train a version (``--version``, default
  ``champion``) over the served examples, each label learnt when it became known;
  the registry is not changed.
- ``shadow``: the challenger's shadow rows against the served answers.
- ``ab``: the arms of a split, with the mixture SPRT.
- ``canary``: the ramp replayed over logged windows (``--window``); a dry run.
- ``bandit``: routing bandits simulated against A/B tests, or logged decisions replayed
  (:mod:`headwater.cli.bandits`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn

import msgspec
import numpy as np
import pyarrow as pa
import typer

from headwater.cli import bandits
from headwater.cli.common import out, read_token_file, state_of, status
from headwater.errors import EvaluationError, ValidationError
from headwater.evaluation import (
    CanaryRamp,
    Examples,
    Guardrails,
    ab_test,
    backtest,
    pair,
    prequential,
    replay_canary,
    shadow_compare,
    walk_forward,
)
from headwater.evaluation.examples import int64_column
from headwater.labels import TRAINING_EXAMPLES_TOPIC
from headwater.labels.schema import PREDICTIONS_TOPIC
from headwater.log import Log
from headwater.models import Model
from headwater.registry import open_registry
from headwater.registry.names import check_model_name, parse_ref
from headwater.reports import Report, render
from headwater.time import SystemClock, parse_duration, parse_time

if TYPE_CHECKING:
    from headwater.evaluation.canary import CanaryController

__all__ = ["app"]

app = typer.Typer(help="Evaluate models on logged, labelled traffic; write reports.",
                  no_args_is_help=True)

_SPLIT_METRICS: Final = "accuracy,log_loss,roc_auc"

TopicOpt = Annotated[str, typer.Option("--topic", help="The topic of training examples.")]
HtmlOpt = Annotated[Path | None, typer.Option(
    "--html", metavar="PATH", help="Also write the report as a self-contained HTML file.")]
SinceOpt = Annotated[str | None, typer.Option(
    "--since", metavar="TIME", help="Only rows predicted at or after TIME (ISO 8601, or now-1d).")]
UntilOpt = Annotated[str | None, typer.Option(
    "--until", metavar="TIME", help="Only rows predicted before TIME (ISO 8601, or now).")]
MetricsOpt = Annotated[str, typer.Option("--metrics", help="Comma-separated metric names.")]
ModelArg = Annotated[str, typer.Argument(help="The model's name.", show_default=False)]
RegistryOpt = Annotated[str | None, typer.Option(
    "--registry", metavar="LOCATION", help="The model store. Default: <home>/registry.")]


def _names(text: str, option: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ValidationError(option, f"expected comma-separated names, got {text!r}")
    return names


def _rows(ctx: typer.Context, topic: str, since: str | None, until: str | None) -> pa.Table:
    """Every row of ``topic`` predicted in [since, until), in log order."""
    with state_of(ctx).open_log() as log:
        table = log.read_table(topic)
    if not table.num_rows:
        raise EvaluationError(f"topic {topic!r} is empty")
    if "prediction_time" in table.column_names and (since or until):
        times = int64_column(table, "prediction_time")
        keep = np.ones(len(times), bool)
        if since:
            keep &= times >= parse_time(since, clock=SystemClock(), field="--since")
        if until:
            keep &= times < parse_time(until, clock=SystemClock(), field="--until")
        table = table.filter(pa.array(keep))
        if not table.num_rows:
            raise EvaluationError(f"no row of {topic!r} was predicted in the chosen period")
    return table


def _served(table: pa.Table) -> pa.Table:
    return table.filter(pa.array(np.asarray(table.column("served"), bool)))


def _finish(report: Report, html: Path | None) -> None:
    render(report, out())
    if html is not None:
        report.write(html)
        status().print(f"report written to {html}")


def _load(ctx: typer.Context, registry: str | None, name: str, ref: str) -> tuple[Model, str]:
    with open_registry(registry, settings=state_of(ctx).settings) as store:
        loaded = store.load(check_model_name(name, field="MODEL"),
                            parse_ref(ref, field="--version"))
        return loaded.model, f"{name} v{loaded.version.version}"


@app.command("backtest")
def backtest_(
    ctx: typer.Context, model: ModelArg,
    train: Annotated[str, typer.Option(help="Length of each training period (e.g. 7d).")],
    test: Annotated[str, typer.Option(help="Length of each test period (e.g. 1d).")],
    step: Annotated[str | None, typer.Option(help="Between folds (default: --test).")] = None,
    expanding: Annotated[bool, typer.Option(help="Train from the start every time.")] = False,
    update: Annotated[bool, typer.Option(help="Keep learning in the test period.")] = False,
    version: Annotated[str, typer.Option(
        help="The version whose hyper-parameters each fold uses.")] = "champion",
    feature_set: Annotated[str | None, typer.Option(
        "--feature-set", help="Recompute this feature set's features as known at each "
        "prediction time (from --project) instead of reading them as served.")] = None,
    project: Annotated[str | None, typer.Option("--project", metavar="FILE",
                                                help="The module of definitions.")] = None,
    predictions: Annotated[str, typer.Option(
        "--predictions", metavar="TOPIC", help="With --feature-set: the predictions topic "
        "that recorded each request's entity keys.")] = PREDICTIONS_TOPIC,
    metrics: MetricsOpt = _SPLIT_METRICS, topic: TopicOpt = TRAINING_EXAMPLES_TOPIC,
    registry: RegistryOpt = None, since: SinceOpt = None, until: UntilOpt = None,
    html: HtmlOpt = None,
) -> None:
    """Walk-forward backtest: train on each period, test on the next."""
    loaded, label = _load(ctx, registry, model, version)
    rows = _served(_rows(ctx, topic, since, until))
    examples = Examples.from_training_examples(rows)
    if feature_set is not None:
        examples = _point_in_time(ctx, rows, examples, feature_set, project, predictions,
                                  loaded)
    start = int(examples.prediction_time.min())
    end = int(examples.prediction_time.max()) + 1
    folds = walk_forward(start, end, train=parse_duration(train, field="--train"),
                         test=parse_duration(test, field="--test"),
                         step=None if step is None else parse_duration(step, field="--step"),
                         expanding=expanding)
    result = backtest(loaded.clone, examples, folds, metrics=_names(metrics, "--metrics"),
                      update=update)
    _finish(result.report(Report(f"Backtest of {label}"), model=label), html)


def _point_in_time(ctx: typer.Context, rows: pa.Table, examples: Examples, name: str,
                   project: str | None, predictions: str, model: Model) -> Examples:
    """The examples with the feature set's features recomputed as known at each
    prediction time: each entity looked up by its own key (as the prediction log
    recorded it), the request values kept as served, derived features computed again,
    helpers left out. A value still null (no default) is filled as serving fills it,
    with the model's neutral default (said on standard error)."""
    from headwater.features.definitions import Feature
    from headwater.features.pointintime import model_inputs
    from headwater.features.project import load_project
    from headwater.serving.inputs import neutral_defaults
    from headwater.store.history import FeatureHistory
    from headwater.store.history.lookup import values_at_times

    state = state_of(ctx)
    chosen = load_project(project or state.settings.project).feature_set(name)
    stream = [f for f in chosen.features if isinstance(f, Feature)]
    entities = list(dict.fromkeys(f.entity.name for f in stream))
    times = examples.prediction_time.tolist()
    with state.open_log() as log:
        keys = _entity_keys(log, rows, entities, predictions)
        frame = values_at_times(log, FeatureHistory(state.settings.history_location), stream,
                                keys, times, mode="known_at")
    recomputed = set(chosen.names)
    for column, values in examples.features.items():
        if column not in recomputed and column != "_":  # a request value, as served
            frame = frame.append_column(column, pa.array(values))
    frame = model_inputs(chosen, frame)
    defaults = neutral_defaults(model)
    columns: dict[str, Any] = {}
    for column in frame.column_names:
        values = frame.column(column)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            columns[column] = np.asarray(values.fill_null("").to_pylist(), np.str_)
            continue
        numbers = np.asarray(values.cast(pa.float64()).fill_null(np.nan), np.float64)
        missing = np.isnan(numbers)
        if missing.any() and column in recomputed:
            fill = float(defaults.get(column, 0.0))
            status().print(f"{int(missing.sum())} values of {column} had no value as known "
                           f"then and no default: filled with {fill}, the model's neutral "
                           "default, as serving fills them", markup=False)
            numbers = np.where(missing, fill, numbers)
        columns[column] = numbers
    return Examples(columns, examples.y, prediction_time=examples.prediction_time,
                    label_time=examples.label_time)


def _entity_keys(log: Log, rows: pa.Table, entities: list[str], topic: str
                 ) -> dict[str, list[str | None]]:
    """Each example's key of every entity, from its logged prediction's ``entities``.

    An example whose prediction did not record them (a topic of an earlier version)
    has only the key it was routed by: the key of a feature set of one entity (the
    entity a server routes by), and refused for a set of several."""
    recorded: dict[str, dict[str, str]] = {}
    if (any(t.name == topic for t in log.topics())
            and "entities" in log.topic(topic).schema.names):
        decode = msgspec.json.Decoder(dict[str, str]).decode
        for fetched in log.replay(topic):
            batch = fetched.batch
            for rid, text in zip(batch.column("request_id").to_pylist(),
                                 batch.column("entities").to_pylist(), strict=True):
                if text is not None:
                    recorded.setdefault(rid, decode(text))
    routed = rows.column("entity").to_pylist()
    keys: dict[str, list[str | None]] = {e: [] for e in entities}
    unrecorded = 0
    for i, rid in enumerate(rows.column("request_id").to_pylist()):
        found = recorded.get(rid)
        if found is None:
            if len(entities) > 1:
                raise ValidationError(
                    "--feature-set", f"the prediction {rid!r} (example {i}) does not record "
                    f"its entities' keys in {topic!r}, and the set's features describe "
                    f"{', '.join(entities)}: each cannot be looked up by its own key "
                    "(--predictions names the predictions topic)")
            unrecorded += 1
            keys[entities[0]].append(routed[i])
            continue
        for entity in entities:
            if entity not in found:
                raise ValidationError(
                    f"entities.{entity}", f"the prediction {rid!r} (example {i}) has no key "
                    f"of entity {entity!r} (it has {', '.join(sorted(found)) or 'none'})")
            keys[entity].append(found[entity])
    if unrecorded:
        status().print(f"{unrecorded} examples' predictions do not record their entities' "
                       f"keys: looked up by the key they were routed by", markup=False)
    return keys


@app.command("prequential")
def prequential_(
    ctx: typer.Context, model: ModelArg,
    version: Annotated[str, typer.Option(help="The version: a number or an alias.")] = "champion",
    window: Annotated[int, typer.Option(help="Examples in the windowed metrics.")] = 1_000,
    learn_every: Annotated[str | None, typer.Option(
        help="Learn in micro-batches: each label at the next multiple of this duration "
        "(e.g. 1h) after it is known.")] = None,
    metrics: MetricsOpt = "accuracy,log_loss,roc_auc,kappa_t",
    topic: TopicOpt = TRAINING_EXAMPLES_TOPIC, registry: RegistryOpt = None,
    since: SinceOpt = None, until: UntilOpt = None, html: HtmlOpt = None,
) -> None:
    """Test-then-train a version over the served examples, labels learnt when known."""
    loaded, label = _load(ctx, registry, model, version)
    examples = Examples.from_training_examples(_served(_rows(ctx, topic, since, until)))
    tick = None if learn_every is None else parse_duration(learn_every, field="--learn-every")
    result = prequential(loaded, examples, metrics=_names(metrics, "--metrics"), window=window,
                         learn_every=tick)
    _finish(result.report(Report(f"Prequential evaluation of {label}"), model=label), html)


@app.command("shadow")
def shadow(
    ctx: typer.Context,
    challenger: Annotated[str | None, typer.Option(
        help="The shadow arm (needed when there are several).")] = None,
    method: Annotated[str, typer.Option(help="Intervals: bootstrap or normal.")] = "bootstrap",
    confidence: Annotated[float, typer.Option(help="Of the intervals.")] = 0.95,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1_000,
    metrics: MetricsOpt = _SPLIT_METRICS, topic: TopicOpt = TRAINING_EXAMPLES_TOPIC,
    since: SinceOpt = None, until: UntilOpt = None, html: HtmlOpt = None,
) -> None:
    """Compare a shadow arm with the served answers of the same requests."""
    if method not in ("bootstrap", "normal"):
        raise ValidationError("--method", f"expected bootstrap or normal, got {method!r}")
    paired = pair(_rows(ctx, topic, since, until), challenger=challenger)
    result = shadow_compare(paired, metrics=_names(metrics, "--metrics"),
                            method="normal" if method == "normal" else "bootstrap",
                            confidence=confidence, resamples=resamples)
    _finish(result.report(), html)


@app.command("ab")
def ab(
    ctx: typer.Context,
    control: Annotated[str, typer.Option(help="The control arm.")] = "champion",
    treatment: Annotated[str, typer.Option(help="The treatment arm.")] = "challenger",
    outcome: Annotated[str, typer.Option(
        help="What to compare: label (its mean), accuracy, log_loss or mae.")] = "label",
    alpha: Annotated[float, typer.Option(help="The test's level.")] = 0.05,
    tau: Annotated[float, typer.Option(
        help="The effect size worth finding, in the outcome's units.")] = 0.05,
    max_samples: Annotated[int | None, typer.Option(
        help="Stop with 'no difference' at this many requests per arm.")] = None,
    metrics: MetricsOpt = _SPLIT_METRICS, topic: TopicOpt = TRAINING_EXAMPLES_TOPIC,
    since: SinceOpt = None, until: UntilOpt = None, html: HtmlOpt = None,
) -> None:
    """Compare the arms of an A/B split with a sequential test safe to peek at."""
    result = ab_test(_rows(ctx, topic, since, until), control=control, treatment=treatment,
                     outcome=outcome, alpha=alpha, tau=tau, max_samples=max_samples,
                     metrics=_names(metrics, "--metrics"))
    _finish(result.report(), html)


@app.command("canary")
def canary(
    ctx: typer.Context,
    window: Annotated[str, typer.Option(help="The length of each window (e.g. 1h).")] = "1h",
    steps: Annotated[str, typer.Option(help="The ramp, in percent.")] = "1,5,25,100",
    canary_arm: Annotated[str, typer.Option("--canary", help="The canary arm.")] = "challenger",
    stable: Annotated[str, typer.Option(help="The stable arm.")] = "champion",
    max_error_rate: Annotated[float, typer.Option(help="Guardrail.")] = 0.01,
    max_p99_ratio: Annotated[float, typer.Option(help="Guardrail, against the champion.")] = 1.5,
    metric: Annotated[str, typer.Option(help="The metric guardrail ('none': off).")] = "log_loss",
    max_metric_loss: Annotated[float, typer.Option(help="Guardrail.")] = 0.02,
    max_psi: Annotated[float, typer.Option(help="Guardrail on the score distribution.")] = 0.2,
    min_requests: Annotated[int, typer.Option(help="Canary requests before a step.")] = 200,
    min_labels: Annotated[int, typer.Option(help="Labels per arm for the metric.")] = 100,
    topic: TopicOpt = TRAINING_EXAMPLES_TOPIC, since: SinceOpt = None, until: UntilOpt = None,
    html: HtmlOpt = None,
) -> None:
    """Replay logged windows of a canary through the ramp and its guardrails (dry run)."""
    try:
        ladder = [float(s) for s in _names(steps, "--steps")]
    except ValueError:
        raise ValidationError("--steps", f"expected percentages, got {steps!r}") from None
    guardrails = Guardrails(max_error_rate=max_error_rate, max_p99_ratio=max_p99_ratio,
                            metric=None if metric == "none" else metric,
                            max_metric_loss=max_metric_loss, max_psi=max_psi,
                            min_requests=min_requests, min_labels=min_labels)
    result = replay_canary(_rows(ctx, topic, since, until),
                           window_us=parse_duration(window, field="--window"),
                           ramp=CanaryRamp(ladder, guardrails), canary=canary_arm,
                           champion=stable)
    _finish(result.report(), html)


@app.command("rollout")
def rollout(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="The model's name.")],
    version: Annotated[int, typer.Argument(help="The version to release.")],
    url: Annotated[str, typer.Option(help="The running prediction server.")
    ] = "http://127.0.0.1:8000",
    token_file: Annotated[Path | None, typer.Option(
        "--token-file", help="The admin token (default: $HEADWATER_ADMIN_TOKEN).")] = None,
    window: Annotated[int, typer.Option(min=1, help="Canary requests per decision.")] = 500,
    steps: Annotated[str, typer.Option(help="The ramp, in percent.")] = "1,5,25,100",
    max_error_rate: Annotated[float, typer.Option(help="Guardrail.")] = 0.01,
    max_p99_ms: Annotated[float, typer.Option(
        help="Guardrail: the canary's p99 latency in the service.")] = float("inf"),
    max_p99_ratio: Annotated[float, typer.Option(
        help="Guardrail: the canary's p99 latency against the champion's.")] = 1.5,
    metric: Annotated[str, typer.Option(help="The metric guardrail ('none': off).")] = "log_loss",
    max_metric_loss: Annotated[float, typer.Option(help="Guardrail.")] = 0.02,
    max_psi: Annotated[float, typer.Option(help="Guardrail on the score distribution.")] = 0.2,
    min_labels: Annotated[int, typer.Option(help="Labels per arm for the metric.")] = 100,
    poll: Annotated[float, typer.Option(help="Seconds between looks at the log.")] = 1.0,
    timeout: Annotated[float | None, typer.Option(
        help="Give up after this many seconds: the canary is rolled back (exit code 1).")
    ] = None,
    leave_on_timeout: Annotated[bool, typer.Option(
        "--leave-on-timeout", help="On --timeout, leave the canary serving as it is and "
        "print how to undo it, instead of rolling it back.")] = False,
) -> None:
    """Release VERSION live as a canary: ramp it up through a running server, promote it
    at the end, or roll it back on a breached guardrail or a timeout (exit code 1)."""
    import time

    from headwater.evaluation.canary import CanaryController
    from headwater.evaluation.canary_watch import CanaryWatch, apply_over_http

    state = state_of(ctx)
    try:
        ladder = [float(s) for s in _names(steps, "--steps")]
    except ValueError:
        raise ValidationError("--steps", f"expected percentages, got {steps!r}") from None
    guardrails = Guardrails(max_error_rate=max_error_rate, max_p99_ms=max_p99_ms,
                            max_p99_ratio=max_p99_ratio,
                            metric=None if metric == "none" else metric,
                            max_metric_loss=max_metric_loss, max_psi=max_psi,
                            min_requests=window, min_labels=min_labels)
    token = read_token_file(token_file) if token_file else state.settings.admin_token
    with state.open_log() as log, open_registry(settings=state.settings) as registry:
        controller = CanaryController(registry, model, version,
                                      apply=apply_over_http(url, token),
                                      ramp=CanaryRamp(ladder, guardrails), actor="rollout")
        watch = CanaryWatch(log, controller, window=window)
        controller.start()
        status().print(f"{model} v{version}: canary at {controller.ramp.percent:g}%")
        started = time.monotonic()
        while not watch.done:
            if timeout is not None and time.monotonic() - started > timeout:
                _timed_out(controller, timeout, leave=leave_on_timeout, url=url)
            step = watch.step()
            if step is not None and step.action != "hold":
                status().print(f"{step.action}: {step.reason}")
            time.sleep(poll)
    verdict = controller.ramp.status
    out().print(f"{model} v{version}: {verdict.replace('_', ' ')}", markup=False)
    if controller.breach_to_rollback_us is not None:
        out().print(f"breach to full rollback: {controller.breach_to_rollback_us / 1000:.1f} ms")
        raise typer.Exit(1)


def _timed_out(controller: CanaryController, timeout: float, *, leave: bool,
               url: str) -> NoReturn:
    """Roll the canary back (or, asked to, leave it and say how to undo it); exit 1."""
    model, version, percent = controller.model, controller.version, controller.ramp.percent
    what = f"the canary of {model} v{version} did not finish in {timeout:g} s (at {percent:g}%)"
    if leave:
        arm, before = controller.canary_arm, controller.previous_canary
        alias = (f"  headwater models rollback {model} --alias {arm} --reason 'undo the "
                 f"canary of v{version}'   # {arm} back to v{before}" if before is not None
                 else f"  (alias {arm} was not set before; nothing routes to it once the "
                 "policy is champion)")
        status().print(
            f"warning: {what}; left serving {percent:g}% of entities as asked. To undo it:\n"
            f"  headwater policy set champion --reason 'undo the canary of v{version}' "
            f"--url {url} --token-file TOKEN\n{alias}", markup=False, soft_wrap=True)
        raise EvaluationError(f"{what}; the canary was left live (--leave-on-timeout)")
    step = controller.abort(f"rollout timed out after {timeout:g} s")
    move = controller.moves[-1]
    where = (f"{controller.canary_arm} back to v{move.to_version}" if move.to_version
             is not None else f"alias {controller.canary_arm} removed")
    raise EvaluationError(f"{what}; rolled back: traffic at {step.next_percent:g}%, {where}")


app.command("bandit")(bandits.bandit)
