"""``headwater serve``: the online prediction service over HTTP.

It reads the feature set from the project (``--project``, default
``$HEADWATER_PROJECT`` or ``features.py``), the online store and the log from the
settings, follows the model's aliases in the model store (``--registry``, default
``$HEADWATER_REGISTRY_URL``; ``--artifacts``, default ``$HEADWATER_ARTIFACTS_URL``) every
``--poll-ms``, applies the model updates a continual trainer appends to the
``model_updates`` topic as they come (each prediction logs its version and update),
logs every prediction to the ``predictions`` topic, and binds
127.0.0.1 unless ``--host`` says otherwise. ``POST /outcomes`` appends outcomes to the
``outcomes`` topic, where the label joiner reads them. The admin endpoints need a bearer token
read from ``--admin-token-file`` or ``$HEADWATER_ADMIN_TOKEN``; without one they are
refused. Why a version cannot be served (an alias not set, an artifact that fails
verification, a pickle-based format the registry does not trust) is printed on standard
error when the server starts and whenever it changes, and again every minute while a
version still cannot load. On SIGTERM or SIGINT it stops taking requests, says so,
flushes the prediction log, says how many predictions and outcomes it wrote (and, loudly,
any prediction it could not log), and exits 0.

It follows the feature engine's writes: an embedded online store is re-read every
``--refresh-ms`` (:class:`~headwater.store.online.StoreFollower`); Redis is read live.
``--max-batch``, ``--read-timeout`` and ``--max-connections`` bound what one client can
hold (defaults from the settings: ``HEADWATER_SERVE_MAX_BATCH`` and so on).

The policy the options describe is a :data:`~headwater.routing.PolicySpec`, built by the
same :func:`~headwater.routing.build` as ``headwater policy set`` and ``PUT
/admin/policy`` use, with the same salt: setting the split a server started with again
moves no entity.

``--workers N`` runs N server processes on the same port (``SO_REUSEPORT``: the kernel
spreads connections between them), each a ``headwater serve`` of its own with its own
deployment poller and prediction log producer; this process supervises them (a worker
that exits is restarted) and stops them all on SIGTERM, SIGINT or SIGHUP, each flushing
its prediction log first.

>>> _spec("split", "challenger", 10.0)
SplitSpec(weights={'champion': 90.0, 'challenger': 10.0}, salt='')
>>> build(_spec("canary", "challenger", 5.0)).describe()["percent"]
5.0
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.text import Text

from headwater.bandits.feedback import Reward, RewardFeed
from headwater.cli.common import (
    read_token_file,
    split_names,
    state_of,
    status,
    warn_unbounded,
)
from headwater.cli.signals import stop_requested
from headwater.errors import ValidationError
from headwater.features.definitions import FeatureSet
from headwater.features.online import FeatureReader
from headwater.features.project import load_project
from headwater.labels import TRAINING_EXAMPLES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.labels.join import JoinRule
from headwater.log import Log
from headwater.orchestrator import Component, Supervisor
from headwater.registry import open_registry
from headwater.routing import (
    KINDS,
    CanarySpec,
    ChampionSpec,
    PolicySpec,
    ShadowSpec,
    SplitSpec,
    build,
    parse_spec,
)
from headwater.serving.actions import ActionService
from headwater.serving.outcomes import OutcomeSink
from headwater.serving.prediction_log import PREDICTIONS_TOPIC
from headwater.serving.updates import UpdateFollower
from headwater.store.online import StoreFollower, open_online_store
from headwater.system import Serving, SystemConfig
from headwater.time import parse_duration

__all__ = ["feature_set_of", "serve"]


def _spec(kind: str, challenger: str, percent: float) -> PolicySpec:
    """The routing policy ``--policy``, ``--challenger`` and ``--percent`` describe."""
    if kind == "champion":
        return ChampionSpec()
    if kind == "shadow":
        return ShadowSpec("champion", (challenger,))
    if kind == "split":
        if not 0.0 <= percent <= 100.0:
            raise ValidationError("--percent", f"expected 0..100, got {percent}")
        return SplitSpec({"champion": 100.0 - percent, challenger: percent})
    if kind == "canary":
        return CanarySpec(percent, canary=challenger)
    if kind not in KINDS:
        raise ValidationError("--policy", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    return parse_spec({"kind": kind, "arms": ["champion", challenger]})


def _action_service(kind: str, context: str | None, window: str, log: Log,
                    reader: FeatureReader) -> ActionService:
    """The contextual bandit ``--decide`` names, over the ``--context`` features."""
    import numpy as np

    from headwater.bandits import (
        ContextualPolicy,
        DecisionLog,
        EpsilonGreedy,
        LinearThompson,
        LinUCB,
    )

    names = split_names(context, option="--context")
    if not names:
        raise ValidationError("--context", "name the context's features (comma-separated)")
    rng = np.random.default_rng()
    policy: ContextualPolicy
    if kind == "epsilon":
        policy = EpsilonGreedy(list(names), rng=rng)
    elif kind == "linucb":
        policy = LinUCB(list(names), rng=rng)
    elif kind == "thompson":
        policy = LinearThompson(list(names), rng=rng)
    else:
        raise ValidationError("--decide", f"expected epsilon, linucb or thompson, got {kind!r}")
    rule = JoinRule(window=parse_duration(window, field="--decide-window"), timeout_label=0.0)
    return ActionService(policy, rule=rule, log=DecisionLog(log), reader=reader)


def _positive(option: str, value: float) -> float:
    if not value > 0:
        raise ValidationError(option, f"expected a positive number, got {value}")
    return value


def _warn(problem: str) -> None:
    """A serving problem, as one yellow line on standard error."""
    status().print(Text(f"warning: {problem}", style="yellow"), soft_wrap=True)


def feature_set_of(project: str, name: str | None) -> FeatureSet:
    """The project's feature set ``name`` (``--feature-set``), or its only one."""
    loaded = load_project(project)
    if name is not None:
        return loaded.feature_set(name)
    if len(loaded.feature_sets) != 1:
        names = ", ".join(fs.name for fs in loaded.feature_sets) or "none"
        raise ValidationError("--feature-set", f"choose one of the project's feature sets "
                              f"({names})")
    return loaded.feature_sets[0]


def _supervise(workers: int, host: str, port: int) -> None:
    """Run this command ``workers`` times over as worker processes on one port until a
    stop signal; every worker is stopped however this ends."""
    if port == 0:
        raise ValidationError("--port", "workers share one port: give a port, not 0")
    args = sys.argv[1:]
    parent = str(os.getpid())
    parts = [Component(f"worker-{i}", (sys.executable, "-m", "headwater", *args,
                                       "--worker-of", parent)) for i in range(workers)]
    status().print(f"serving on http://{host}:{port} with {workers} workers")
    supervisor = Supervisor(parts, inherit_output=True, on_event=lambda name, what: status(
        ).print(f"{name}: {what}"))
    with stop_requested() as stop:
        supervisor.run(stop=stop)


def serve(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="The model to serve (its name).",
                                       show_default=False)],
    feature_set: Annotated[str | None, typer.Option(
        "--feature-set", help="The feature set the model reads (default: the project's "
        "only one).")] = None,
    project: Annotated[str | None, typer.Option(
        "--project", metavar="FILE", help="The module of definitions. Default: "
        "$HEADWATER_PROJECT or features.py.")] = None,
    host: Annotated[str, typer.Option(help="The address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to bind.")] = 8000,
    registry: Annotated[str | None, typer.Option(
        "--registry", metavar="LOCATION", help="The model store. Default: "
        "$HEADWATER_REGISTRY_URL or <$HEADWATER_HOME or .headwater>/registry.")] = None,
    artifacts: Annotated[str | None, typer.Option(
        "--artifacts", metavar="LOCATION", help="Where the artifacts are. Default: "
        "$HEADWATER_ARTIFACTS_URL or <registry>/artifacts.")] = None,
    policy: Annotated[str, typer.Option(
        help=f"How traffic meets versions: {', '.join(KINDS)}.")] = "champion",
    challenger: Annotated[str, typer.Option(help="The alias of the other arm.")] = "challenger",
    percent: Annotated[float, typer.Option(
        help="The challenger's share of entities, for split and canary.")] = 5.0,
    poll_ms: Annotated[float, typer.Option(help="How often to check the aliases.")] = 1000.0,
    admin_token_file: Annotated[Path | None, typer.Option(
        "--admin-token-file", help="A file holding the bearer token of the admin "
        "endpoints (off without one).")] = None,
    log_predictions: Annotated[bool, typer.Option(
        "--log-predictions/--no-log-predictions",
        help="Append every prediction to the predictions topic.")] = True,
    predictions_topic: Annotated[str, typer.Option(
        "--predictions-topic", help="The topic predictions are logged to.")
    ] = PREDICTIONS_TOPIC,
    reward: Annotated[str, typer.Option(
        help="What a bandit policy learns from, read from the joined labels: accuracy, "
        "likelihood or label.")] = "accuracy",
    decide: Annotated[str | None, typer.Option(
        help="Serve POST /decide with a contextual bandit: epsilon, linucb or thompson.")
    ] = None,
    context: Annotated[str | None, typer.Option(
        help="The context's feature names, comma-separated (request values and the "
        "feature set's online features).")] = None,
    decide_window: Annotated[str, typer.Option(
        "--decide-window", help="How long after a decision an outcome is its reward; none "
        "by then is a reward of 0.")] = "10m",
    refresh_ms: Annotated[float | None, typer.Option(
        "--refresh-ms", help="How often to catch up with the feature engine's writes to an "
        "embedded online store. Default: $HEADWATER_ONLINE_REFRESH_MS or 5.")] = None,
    max_batch: Annotated[int | None, typer.Option(
        "--max-batch", help="The most requests or outcomes one batch may hold. Default: "
        "$HEADWATER_SERVE_MAX_BATCH or 1000.")] = None,
    read_timeout: Annotated[float | None, typer.Option(
        "--read-timeout", help="Seconds a connection has to send a whole request (from its "
        "opening or the previous response) before it is closed. Default: "
        "$HEADWATER_SERVE_READ_TIMEOUT_S or 10.")] = None,
    max_connections: Annotated[int | None, typer.Option(
        "--max-connections", help="Connections kept open at once; one more is answered 503. "
        "Default: $HEADWATER_SERVE_MAX_CONNECTIONS or 1000.")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", help="Server processes sharing the port, each with its own "
        "deployment poller and prediction log producer.")] = 1,
    worker_of: Annotated[int | None, typer.Option(
        "--worker-of", hidden=True, help="The supervising process of this worker.")] = None,
) -> None:
    """Serve predictions of MODEL over HTTP, with fresh features and hot swaps."""
    from headwater.serving.app import ServingApp
    from headwater.serving.server import serve as run

    spec = _spec(policy, challenger, percent)  # a bad policy is refused before any worker
    if workers < 1:
        raise ValidationError("--workers", f"expected at least 1, got {workers}")
    if workers > 1 and worker_of is None:
        _supervise(workers, host, port)
        return

    state = state_of(ctx)
    settings = state.settings
    chosen = feature_set_of(project or settings.project, feature_set)
    token = (read_token_file(admin_token_file) if admin_token_file
             else state_of(ctx).settings.admin_token)
    with ExitStack() as stack:
        store = open_online_store(settings.online_location, settings=settings, read_only=True,
                                  create=True)
        stack.callback(store.close)
        follower = StoreFollower(store, every_ms=_positive(
            "--refresh-ms", settings.online_refresh_ms if refresh_ms is None else refresh_ms))
        models = stack.enter_context(open_registry(registry, artifacts=artifacts,
                                                   settings=settings))
        log = stack.enter_context(state.open_log())
        serving = Serving(SystemConfig(model, chosen, policy=spec,
                                       predictions_topic=predictions_topic,
                                       alias=build(spec).arms[0]),
                          online=store, registry=models,
                          log=log if log_predictions else None, on_problem=_warn)
        stack.callback(serving.close)
        deployment, predictor = serving.deployment, serving.predictor
        prediction_log = serving.prediction_log
        updates = UpdateFollower(log, deployment)
        # Bandit policies (set now or later through the admin API) learn from the rewards
        # of the joined labels, fed from a background thread.
        log.ensure_topic(TRAINING_EXAMPLES_TOPIC, TRAINING_EXAMPLES_SCHEMA)
        feed = RewardFeed(log, deployment, reward=cast("Reward", reward))

        def startup() -> None:
            follower.start()
            deployment.start(poll_ms)
            updates.start()
            feed.start()

        def shutdown() -> None:
            feed.stop()
            updates.stop()
            deployment.stop()
            follower.stop()

        actions = None
        if decide is not None:
            actions = _action_service(decide, context, decide_window, log,
                                      FeatureReader(store, chosen))
            stack.callback(actions.stop)
            if actions.log is not None:
                stack.callback(actions.log.close)
            actions.start(log)

        outcomes = OutcomeSink(log)
        app = ServingApp(predictor, deployment, registry=models, admin_token=token,
                         on_startup=startup, on_shutdown=shutdown, actions=actions,
                         outcomes=outcomes,
                         max_batch=settings.serve_max_batch if max_batch is None
                         else int(_positive("--max-batch", max_batch)))
        written = [prediction_log.topic] if prediction_log is not None else []
        written += [actions.log.topic] if actions is not None and actions.log is not None else []
        warn_unbounded(log, [*written, outcomes.topic])
        worker = f" (worker pid {os.getpid()})" if worker_of is not None else ""
        status().print(f"serving {model} ({policy}) with {chosen.name} on "
                       f"http://{host}:{port}{worker}")
        # uvicorn stops on SIGTERM and SIGINT, then raises the signal again to the handler
        # it found: ours only records it, so the process goes on to flush the prediction
        # log instead of dying with it. A hang-up stops the server the same way.
        with stop_requested():
            signal.signal(signal.SIGHUP, lambda signum, frame: os.kill(os.getpid(),
                                                                       signal.SIGTERM))
            run(app, host, port, reuse_port=worker_of is not None,
                read_timeout_s=_positive("--read-timeout", settings.serve_read_timeout_s
                                         if read_timeout is None else read_timeout),
                max_connections=settings.serve_max_connections if max_connections is None
                else int(_positive("--max-connections", max_connections)))
            _stopped(model, serving, outcomes)  # a second signal does not cut the flush


def _stopped(model: str, serving: Serving, outcomes: OutcomeSink) -> None:
    """Say that the server stops, flush its prediction log, and say what it wrote."""
    status().print(f"stopping {model}: no more requests are taken; flushing the "
                   "prediction log")
    serving.close()
    logged = serving.prediction_log
    said = [f"{outcomes.appended} outcomes appended to {outcomes.topic}"]
    if logged is not None:
        said.insert(0, f"{logged.logged} predictions logged to {logged.topic}")
        if logged.dropped or logged.failed:
            said.append(f"[red]{logged.dropped + logged.failed} predictions were not "
                        f"logged ({logged.dropped} dropped on a full queue, {logged.failed} "
                        "in failed appends)[/red]")
    status().print(f"stopped {model}: {', '.join(said)}")
