"""``headwater features``: apply definitions, list and show them, run the engine, read values.

The definitions live in a project module (``--project``, default ``$HEADWATER_PROJECT``
or ``features.py``); the engine's checkpoints and the record of what was applied live
under ``<home>/features`` (the checkpoints at ``$HEADWATER_CHECKPOINTS_URL`` when
engines on several machines share them), the feature history at
``$HEADWATER_HISTORY_URL`` or ``<home>/features/history``, the online store at
``$HEADWATER_ONLINE_URL`` or ``<home>/online``.
"""

from __future__ import annotations

import json
from contextlib import closing
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import pyarrow as pa
import typer
from rich.table import Table

from headwater.cli.common import CliState, format_count, out, state_of, status
from headwater.cli.signals import stop_requested
from headwater.cli.statusline import MetricsPortOption, StatusLine, metrics_on
from headwater.errors import ValidationError
from headwater.features.definitions import DerivedFeature, Feature, FeatureSet, TableSource
from headwater.features.engine import FeatureEngine, backfill
from headwater.features.online import FeatureReader
from headwater.features.pointintime import Mode, with_derived
from headwater.features.project import Project, load_project, read_applied, write_applied
from headwater.features.tables import load_table
from headwater.features.values import check_feature
from headwater.store.history import FeatureHistory
from headwater.store.history.lookup import history_gap, values_at_times
from headwater.store.online import open_online_store
from headwater.time import (
    SystemClock,
    format_duration,
    format_micros,
    parse_duration,
    parse_time,
)

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

__all__ = ["app"]

app = typer.Typer(help="Streaming features: definitions, the engine and values.",
                  no_args_is_help=True)

ProjectOption = Annotated[str | None, typer.Option(
    "--project", metavar="FILE", help="The module of definitions. Default: $HEADWATER_PROJECT "
    "or features.py.")]


def _project(ctx: typer.Context, path: str | None) -> Project:
    return load_project(path or state_of(ctx).settings.project)


def _window(feature: Feature) -> str:
    window = feature.window
    kind = type(window).__name__.lower()
    if kind == "lifetime":
        return "lifetime"
    length = getattr(window, "length_us", 0)
    return f"{kind} {format_duration(length)} / hop {format_duration(window.hop_us)}"


@app.command("apply")
def apply(ctx: typer.Context, project: ProjectOption = None) -> None:
    """Check the definitions (each column's type against its aggregation), load table
    sources into the log, and record them."""
    state = state_of(ctx)
    loaded = _project(ctx, project)
    before = read_applied(state.settings.features_dir)
    previous = {f.name: f.digest for f in before.features} if before else {}
    with state.open_log() as log:
        for source in {f.source for f in loaded.features if isinstance(f.source, TableSource)}:
            info = load_table(log, source)
            status().print(f"table {source.name} → topic {info.name}")
        schemas = {topic: log.topic(topic).schema  # every source topic must exist
                   for topic in {f.source.topic for f in loaded.features}}
        for feature in loaded.features:  # before any engine meets an event
            check_feature(feature, schemas[feature.source.topic])
    applied = write_applied(state.settings.features_dir, loaded, SystemClock().now_us(),
                            fsync=state.settings.fsync)
    table = Table("feature", "change", "digest", title=f"applied {loaded.path}")
    for f in applied.features:
        change = ("new" if f.name not in previous
                  else "changed" if previous[f.name] != f.digest else "")
        table.add_row(f.name, change, f.digest[:12])
    for name in sorted(set(previous) - {f.name for f in applied.features}):
        table.add_row(name, "removed", "")
    out().print(table)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """The applied features."""
    applied = read_applied(state_of(ctx).settings.features_dir)
    if applied is None:
        raise ValidationError("features", "nothing applied yet: run headwater features apply")
    table = Table("feature", "entity", "source", "aggregation", "window", "ttl", "digest")
    for f in applied.features:
        d = f.definition
        if d is None:
            table.add_row(f.name, "", "derived", f"f({', '.join(f.inputs)})", "", "",
                          f.digest[:12])
            continue
        ttl = format_duration(d.ttl_us) if d.ttl_us else ""
        table.add_row(f.name, d.entity.name, d.source.topic,
                      f"{d.aggregation}({d.column or ''})", _window(d), ttl, f.digest[:12])
    out().print(table)
    for name, version in applied.feature_sets.items():
        out().print(f"feature set {name} {version[:12]}: {', '.join(applied.members[name])}")


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """One applied feature's definition, as JSON."""
    applied = read_applied(state_of(ctx).settings.features_dir)
    for f in applied.features if applied else []:
        if f.name == name:
            out().print_json(msgspec.json.encode(f).decode())
            return
    raise ValidationError("name", f"no applied feature {name!r}")


@app.command("run")
def run(
    ctx: typer.Context,
    project: ProjectOption = None,
    idle_timeout: Annotated[float | None, typer.Option(
        help="Stop after this many seconds without events (default: run until stopped).")] = None,
    group: Annotated[str, typer.Option(help="The engines' consumer group.")] = "features",
    metrics_port: MetricsPortOption = None,
    status_every: Annotated[str, typer.Option(
        "--status-every", help="How often to print the status line.")] = "10s",
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="No status line (warnings are still printed).")] = False,
    group_timeout: Annotated[str | None, typer.Option(
        help="How long an engine may be silent before the others take its partitions "
        "over (the failover time on the Redis log). Default: $HEADWATER_GROUP_TIMEOUT "
        "or 2s.")] = None,
    checkpoint_interval: Annotated[str, typer.Option(
        help="Checkpoint at least this often while events arrive: what an engine taking "
        "a partition over replays.")] = "30s",
) -> None:
    """Run the feature engine: consume the sources, keep the online store current."""
    state = state_of(ctx)
    if group_timeout is not None:
        settings = msgspec.structs.replace(state.settings, group_timeout=group_timeout)
        settings.group_timeout_s  # noqa: B018  (checks it)
        state = CliState(settings, state.location)
    interval_s = parse_duration(checkpoint_interval, field="--checkpoint-interval") / 1e6
    if interval_s <= 0:
        raise ValidationError("--checkpoint-interval", "expected a positive duration")
    loaded = _project(ctx, project)
    with state.open_log() as log, closing(open_online_store(
        state.settings.online_location, settings=state.settings
    )) as online, FeatureEngine(log, loaded.features, online, group=group,
                               checkpoint_interval_s=interval_s,
                               state_dir=state.settings.checkpoints_location,
                               history=FeatureHistory(state.settings.history_location,
                                                      fsync=state.settings.fsync),
                               fsync=state.settings.fsync) as engine:
        status().print(f"engine running ({len(loaded.features)} features); Ctrl-C or "
                       "SIGTERM stops it")
        late = _LateWarning(engine, loaded.features)
        line = StatusLine("engine", lambda: {"events applied": sum(engine.applied.values()),
                                             "late": sum(engine.late.values())},
                          every_us=parse_duration(status_every, field="--status-every"),
                          quiet=quiet)
        moves = _Moves(engine)

        def report() -> None:
            late.say()
            moves.say()
            line.tick()

        with stop_requested() as stop, metrics_on(metrics_port, lambda: _engine_metrics(engine)):
            engine.run(idle_timeout_s=idle_timeout, poll_timeout_s=0.2, stop=stop,
                       report=report, report_every_s=0.5)
        line.print()
    status().print("engine stopped; its state is checkpointed")


def _engine_metrics(engine: FeatureEngine) -> Collector:
    from headwater.cli.metrics import EngineMetrics

    return EngineMetrics(engine, SystemClock())


class _Moves:
    """Says which partitions the engine took over (and from which offset it resumed
    them) and which it gave up to another engine."""

    def __init__(self, engine: FeatureEngine) -> None:
        self.engine = engine
        self.resumed = self.fenced = 0

    def say(self) -> None:
        for topic, partition, offset in self.engine.resumed[self.resumed:]:
            status().print(f"took over {topic}[{partition}]: resumed at offset {offset}",
                           markup=False)
        for topic, partition in self.engine.fenced[self.fenced:]:
            status().print(f"gave up {topic}[{partition}]: another engine claimed it",
                           markup=False)
        self.resumed, self.fenced = len(self.engine.resumed), len(self.engine.fenced)


class _LateWarning:
    """Says, as it happens (every few seconds at most), how many events the engine met
    too late to apply: they are not in the features, only in the dead-letter topic."""

    def __init__(self, engine: FeatureEngine, features: list[Feature]) -> None:
        self.engine = engine
        self.said: dict[str, int] = {}
        self.lateness = {f.source.topic: f.source.allowed_lateness_us for f in features
                         if isinstance(f, Feature)}

    def say(self) -> None:
        for topic, count in sorted(self.engine.late.items()):
            if count > self.said.get(topic, 0):
                new = count - self.said.get(topic, 0)
                self.said[topic] = count
                allowed = format_duration(self.lateness.get(topic, 0))
                status().print(
                    f"warning: {format_count(new)} event{'s' * (new != 1)} of {topic} arrived "
                    "more than "
                    f"{allowed} behind the newest event time and were not applied "
                    f"({format_count(count)} in all, kept in {topic}.dlq); produce history "
                    "in event-time order, or raise the source's allowed_lateness",
                    markup=False)


@app.command("backfill")
def backfill_(ctx: typer.Context, project: ProjectOption = None) -> None:
    """Compute the features from the whole log (for new or changed definitions)."""
    state = state_of(ctx)
    loaded = _project(ctx, project)
    with state.open_log() as log, closing(open_online_store(
        state.settings.online_location, settings=state.settings
    )) as online:
        count = backfill(log, loaded.features, online,
                         state_dir=state.settings.features_dir / "backfill",
                         fsync=state.settings.fsync)
    status().print(f"backfilled {format_count(count)} events")


@app.command("get")
def get(
    ctx: typer.Context,
    keys: Annotated[list[str], typer.Argument(
        help="The entity's key; for a set of several entities, each as NAME=KEY "
        "(user=ada merchant=grocery).", metavar="KEY...")],
    project: ProjectOption = None,
    feature_set: Annotated[str | None, typer.Option("--set", help="A feature set's name "
                                                    "(default: every feature).")] = None,
    at: Annotated[str | None, typer.Option(help="Read as of this time (ISO 8601, or now-2d); "
                                           "default: now.")] = None,
    request: Annotated[str | None, typer.Option(help="Request values as a JSON object, "
                                                "for derived features.")] = None,
    mode: Annotated[Mode, typer.Option(
        help="With --at: event_time, the values as of that moment of the data; known_at, "
        "what the online store answered then (events appended later left out).")
    ] = "event_time",
) -> None:
    """An entity's feature values: now, from the online store; or as they were known at
    --at, recomputed from the entity's part of the feature history and the log after it
    (time travel)."""
    state = state_of(ctx)
    loaded = _project(ctx, project)
    chosen = (loaded.feature_set(feature_set) if feature_set
              else FeatureSet("all", (*loaded.features, *loaded.derived)))
    now = parse_time(at, clock=SystemClock(), field="--at") if at else SystemClock().now_us()
    values: dict[str, Any] = json.loads(request) if request else {}
    if not isinstance(values, dict):
        raise ValidationError("--request", "expected a JSON object")
    entities = _entity_keys(keys, [f.entity.name for f in chosen.features
                                   if isinstance(f, Feature)])
    defaulted: tuple[str, ...] = ()
    if at:
        history = FeatureHistory(state.settings.history_location)
        stream = [f for f in chosen.features if isinstance(f, Feature)]
        for topic in sorted({f.source.topic for f in stream}):
            gap = history_gap(history, topic, [f for f in stream if f.source.topic == topic])
            if gap is not None:
                status().print(f"replaying all of {topic}: {gap}", markup=False)
        with state.open_log() as log:
            past = values_at_times(log, history, stream,
                                   {name: [k] for name, k in entities.items()}, [now], mode=mode)
        derived = [f for f in chosen.features if isinstance(f, DerivedFeature)]
        if derived:
            for name, value in values.items():
                past = past.append_column(name, pa.array([value]))
            past = with_derived(derived, past)
        got = {f.name: past.column(f.name)[0].as_py() for f in chosen.features}
    else:
        with closing(open_online_store(state.settings.online_location, settings=state.settings,
                                       read_only=True)) as online:
            got, defaulted, _ = FeatureReader(online, chosen).read_row(
                entities, now, values, helpers=True)
    table = Table("feature", "value", "", title=f"{' '.join(keys)} at {format_micros(now)}")
    for name, value in got.items():
        notes = [n for n, yes in (("helper: no model input", name in chosen.helpers),
                                  ("default: no value for the entity", name in defaulted))
                 if yes]
        table.add_row(name, "null" if value is None else str(value), "; ".join(notes))
    out().print(table)


def _entity_keys(given: list[str], names: list[str]) -> dict[str, str]:
    """Each entity's key: one key for a set of one entity, else ``NAME=KEY`` for each."""
    wanted = list(dict.fromkeys(names))
    if len(given) == 1 and len(wanted) <= 1 and given[0].partition("=")[0] not in wanted:
        return dict.fromkeys(wanted, given[0])
    keys: dict[str, str] = {}
    for text in given:
        name, equals, key = text.partition("=")
        if not equals or name not in wanted:
            raise ValidationError("KEY", f"{text!r}: the features describe "
                                  f"{', '.join(wanted)}: give each entity's key as NAME=KEY")
        keys[name] = key
    missing = [name for name in wanted if name not in keys]
    if missing:
        raise ValidationError("KEY", f"no key of entity {missing[0]!r}: give it as "
                              f"{missing[0]}=KEY")
    return keys
