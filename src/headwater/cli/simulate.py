"""``headwater simulate``: what the whole loop would have done on a history.

It replays a user's files — events (CSV or Parquet, each row a prediction request with
its id) and outcomes (a request id, a label and when the label became known) — in time
order through the same components as ``headwater run``: the feature engine, the
predictor under the routing policy, the prediction log, the label joiner and the trainer
with its trigger and gate, hot-swapping what it promotes, on a simulated clock
(:func:`headwater.system.simulation.simulate`). Each outcome is released at its own
time. It writes the log, the online store and the model store of the settings (as a
live run would), so ``headwater report`` and ``headwater models lineage`` read the
result; it refuses a model that has versions already or a predictions topic that holds
events (a simulation starts from nothing: give it a fresh ``HEADWATER_HOME``). The
topics it creates keep every event (however old in simulated time, the report reads
them all), and nothing is flushed to disk as it goes: a simulation is run again, not
recovered.

It is configured like ``headwater run``, plus the speed controls ``--tick`` (the
simulated time the events of one batch span) and ``--learn-every`` (how often, in
simulated time, labels are joined and the trainer runs). Progress goes to standard error
with the percent done and an ETA; the scorecard ends the run, as JSON with ``--json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer

from headwater.cli.common import out, state_of, status
from headwater.cli.produce import read_times
from headwater.cli.run import config_of
from headwater.cli.times import TimeReader
from headwater.cli.train import DEFAULT_MODEL_CLASS
from headwater.errors import UnknownTopicError, ValidationError
from headwater.log import Log, Schema, open_log
from headwater.log.schema import TIMESTAMP
from headwater.log.validation import validate
from headwater.registry import open_registry
from headwater.serving.prediction_log import PREDICTIONS_TOPIC
from headwater.store.online import open_online_store
from headwater.system import System
from headwater.system.simulation import Progress, Scorecard
from headwater.system.simulation import simulate as replay
from headwater.time import ManualClock, format_duration, parse_duration

__all__ = ["simulate"]

_TYPES = {pa.int64(): "int64", pa.float64(): "float64", pa.string(): "string",
          pa.large_string(): "string", pa.bool_(): "bool"}


def _read(path: Path, times: tuple[str, ...], option: str) -> pa.Table:
    """A CSV or Parquet file, its time columns read as text (then by the file rules)."""
    if not path.exists():
        raise ValidationError(option, f"{path}: no such file")
    if path.suffix == ".parquet":
        table = pq.read_table(path)
    elif path.suffix == ".csv":
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(times, pa.string())))
    else:
        raise ValidationError(option, f"{path}: expected a .csv or .parquet file")
    for name in times:
        if name not in table.column_names:
            raise ValidationError(option, f"{path} has no column {name!r}")
    return table


def _micros(table: pa.Table, name: str, reader: TimeReader, option: str) -> pa.Array:
    column, refused = read_times(table.column(name).combine_chunks(), name, reader)
    if refused:
        row, reason = next(iter(sorted(refused.items())))
        raise ValidationError(option, f"{len(refused)} times in column {name!r} cannot be "
                              f"read (line {row + 2}: {reason})")
    if column.null_count:
        raise ValidationError(option, f"column {name!r} has {column.null_count} empty times")
    return column.cast(TIMESTAMP) if column.type != TIMESTAMP else column


def _schema_of(table: pa.Table, key: str, event_time: str) -> Schema:
    fields: dict[str, str] = {}
    for f in table.schema:
        if f.name == event_time:
            fields[f.name] = "timestamp"
        elif f.type in _TYPES:
            fields[f.name] = _TYPES[f.type]
        else:
            raise ValidationError("--events", f"column {f.name!r} has type {f.type}, which a "
                                  "topic cannot hold")
    return Schema.of(fields, key=key, event_time=event_time)


def _held(log: Log, topic: str) -> int:
    """The events ``topic`` holds (0 when it does not exist)."""
    try:
        partitions = log.topic(topic).partitions
    except UnknownTopicError:
        return 0
    return sum(log.backend.offsets(topic, p)[1] for p in range(partitions))


def _say(progress: Progress) -> None:
    eta = progress.eta_s
    status().print(f"simulate: {progress.percent:5.1f}% ({progress.done:,}/{progress.total:,} "
                   f"events), {progress.wall_s:.0f} s, ETA "
                   f"{'?' if eta is None else f'{eta:.0f} s'}", markup=False)


def _show(card: Scorecard) -> None:
    console = out()
    console.print(f"replayed {card.events:,} events and {card.outcomes:,} outcomes in "
                  f"{card.wall_s:.1f} s: {card.predictions:,} predictions, "
                  f"{card.examples:,} examples, {card.late_outcomes:,} late outcomes",
                  markup=False)
    for arm in card.arms:
        auc = "n/a" if arm.auc is None else f"{arm.auc:.4f}"
        console.print(f"  arm {arm.arm}: {arm.examples:,} examples, AUC {auc}, log loss "
                      f"{arm.log_loss:.4f}, accuracy {arm.accuracy:.4f}", markup=False)
    if card.label_age_median_s is None:
        console.print("  the served model learnt no label during the replay", markup=False)
    else:
        assert card.label_age_p90_s is not None
        console.print("  age of the newest label the served model had learnt: median "
                      f"{format_duration(int(card.label_age_median_s * 1e6), exact=False)}, "
                      f"p90 {format_duration(int(card.label_age_p90_s * 1e6), exact=False)}"
                      f" ({card.never_learnt:,} predictions by a model that had learnt none)",
                      markup=False)
    console.print(f"  versions: {card.promoted} promoted, {card.rejected} rejected",
                  markup=False)
    console.print("  CPU s: " + ", ".join(f"{k} {v:.2f}" for k, v in card.cpu_s.items()),
                  markup=False)


def simulate(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="The model to serve and train.",
                                       show_default=False)],
    events: Annotated[Path, typer.Option(
        "--events", help="The events: a CSV or Parquet file, one prediction request per row.",
        show_default=False)],
    outcomes: Annotated[Path, typer.Option(
        "--outcomes", help="The outcomes: a CSV or Parquet file of request id, label and "
        "the time the label became known.", show_default=False)],
    topic: Annotated[str, typer.Option(help="The topic the events go to (the feature "
                                       "set's source).", show_default=False)],
    key: Annotated[str, typer.Option(help="The events' entity key column.",
                                     show_default=False)],
    event_time: Annotated[str, typer.Option("--event-time", help="The events' time column.",
                                            show_default=False)],
    request_id: Annotated[str, typer.Option(
        "--request-id", help="The column naming each request, in both files.")
    ] = "request_id",
    label: Annotated[str | None, typer.Option(
        help="The outcomes' label column (none: every outcome is a positive, as a click "
        "or a chargeback; --timeout-label 0 makes silence a negative).")] = None,
    known_at: Annotated[str, typer.Option(
        "--known-at", help="The outcomes' column of when each label became known.")
    ] = "known_at",
    request: Annotated[str | None, typer.Option(
        help="Event columns sent as request values, comma-separated.")] = None,
    timezone: Annotated[str | None, typer.Option(
        "--timezone", help="Read times without a UTC offset in this zone.")] = None,
    project: Annotated[str | None, typer.Option(
        "--project", metavar="FILE", help="The module of definitions.")] = None,
    feature_set: Annotated[str | None, typer.Option(
        "--feature-set", help="The feature set the model reads.")] = None,
    window: Annotated[str, typer.Option(help="The label window (e.g. 10m).")] = "10m",
    timeout_label: Annotated[str, typer.Option(
        "--timeout-label", help="The label of no outcome in the window: 'none' or a "
        "number.")] = "none",
    strategy: Annotated[str, typer.Option(help="The trainer's strategy.")] = "continual",
    every: Annotated[str | None, typer.Option(help="Publish every interval.")] = "1h",
    volume: Annotated[int | None, typer.Option(help="… or every N examples.")] = None,
    drift: Annotated[str | None, typer.Option(help="… or on drift (adwin, …).")] = None,
    gate_min_examples: Annotated[int | None, typer.Option(
        "--gate-min-examples", min=1, help="The gate promotes only on at least this many "
        "examples.")] = None,
    model_class: Annotated[str, typer.Option(
        "--model-class", help="module:Class of the first version.")] = DEFAULT_MODEL_CLASS,
    tick: Annotated[str, typer.Option(
        help="Simulated time one batch of events spans (speed: larger is faster, coarser).")
    ] = "1s",
    learn_every: Annotated[str, typer.Option(
        "--learn-every", help="How often, in simulated time, labels are joined and the "
        "trainer runs.")] = "1m",
    as_json: Annotated[bool, typer.Option("--json", help="Print the scorecard as JSON.")
    ] = False,
) -> None:
    """Replay a history of events and outcomes through the whole loop, simulated."""
    state = state_of(ctx)
    # a simulation keeps every event it writes (the report reads them all, however old in
    # simulated time) and is rebuilt rather than recovered: no flush to disk
    settings = msgspec.structs.replace(state.settings, system_retention="forever",
                                       fsync="never")
    config = config_of(model, project=project or settings.project, feature_set=feature_set,
                       window=window, timeout_label=timeout_label, strategy=strategy,
                       every=every, volume=volume, drift=drift,
                       gate_min_examples=gate_min_examples, model_class=model_class)
    if topic not in config.topics:
        raise ValidationError("--topic", f"the feature set reads {', '.join(config.topics)}, "
                              f"not {topic!r}")
    tick_us = parse_duration(tick, field="--tick")
    learn_us = parse_duration(learn_every, field="--learn-every")
    reader = TimeReader(timezone=timezone, say=lambda text: status().print(text))
    names = tuple(n.strip() for n in (request or "").split(",") if n.strip())
    table = _read(events, (event_time,), "--events")
    for column, option in ((key, "--key"), (request_id, "--request-id"),
                           *((n, "--request") for n in names)):
        if column not in table.column_names:
            raise ValidationError(option, f"{events} has no column {column!r}")
    table = table.set_column(table.column_names.index(event_time), event_time,
                             _micros(table, event_time, reader, "--events"))
    ids = table.column(request_id).cast(pa.string())
    stored = table.drop_columns([request_id])
    outs = _read(outcomes, (known_at,), "--outcomes")
    for wanted in (request_id, label):
        if wanted is not None and wanted not in outs.column_names:
            raise ValidationError("--outcomes", f"{outcomes} has no column {wanted!r}")
    if label is not None and outs.column(label).null_count:
        raise ValidationError("--outcomes", f"column {label!r} has empty labels")
    outs = pa.table({"request_id": outs.column(request_id).cast(pa.string()),
                     "label": pa.nulls(outs.num_rows, pa.float64()) if label is None
                     else outs.column(label).cast(pa.float64()),
                     "known_at": _micros(outs, known_at, reader, "--outcomes")})
    start = int(np.min(table.column(event_time).cast(pa.int64()).to_numpy())) - 1
    clock = ManualClock(start)
    with open_log(state.location, settings=settings, clock=clock) as log, \
            open_registry(settings=settings, clock=clock) as registry:
        if any(s.name == model for s in registry.models()) and registry.versions(model):
            raise ValidationError("--model", f"model {model!r} has versions already: a "
                                  "simulation starts from nothing (a fresh HEADWATER_HOME)")
        for name in (PREDICTIONS_TOPIC, topic):
            if _held(log, name):
                raise ValidationError("--log", f"topic {name!r} holds events already: a "
                                      "simulation starts from nothing (a fresh "
                                      "HEADWATER_HOME)")
        try:
            schema = log.topic(topic).schema
        except UnknownTopicError:
            schema = _schema_of(stored, key, event_time)
            log.create_topic(topic, schema)
        checked = validate(schema, stored)
        if checked.rejections:
            bad = checked.rejections[0]
            raise ValidationError(f"--events.{bad.field}", f"{len(checked.rejections)} rows "
                                  f"refused (line {bad.index + 2}: {bad.reason})")
        rows = pa.Table.from_batches([checked.batch]).append_column(request_id, ids)
        online = open_online_store(settings.online_location, settings=settings)
        system = System(config, log=log, online=online, registry=registry,
                        state_dir=Path(settings.home) / "simulate", clock=clock,
                        fsync=settings.fsync, actor="simulate")
        try:
            card = replay(system, clock, topic=topic, events=rows, ids=request_id,
                          outcomes=outs, request=names, tick_us=tick_us,
                          learn_every_us=learn_us, on_progress=_say,
                          progress_every=max(1, rows.num_rows // 20))
        finally:
            system.close()
            online.close()
    if as_json:
        out().print(json.dumps(card.to_dict()), markup=False, soft_wrap=True)
    else:
        _show(card)
