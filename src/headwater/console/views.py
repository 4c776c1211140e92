"""What each page of the console shows, read from the log, the model store, the online
store and the prediction server's metrics, as plain values (dicts and lists) that both
the HTML templates and the JSON of live refresh take.

Everything here reads; nothing writes. Reads of the log's tail are bounded
(:data:`TAIL` events per partition), so a page costs the same on a topic of a billion
events as on one of a thousand.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec
import pyarrow as pa

from headwater.console.graph import lineage_svg
from headwater.console.rates import Rates
from headwater.console.scrape import Sample, parse, quantile, total
from headwater.errors import HeadwaterError
from headwater.features.definitions import Feature, FeatureSet
from headwater.features.online import FeatureReader
from headwater.labels.schema import PREDICTIONS_TOPIC
from headwater.log import APPEND_TIME, Log, dead_letter_topic
from headwater.log.records import DEAD_LETTER_SUFFIX
from headwater.registry import ModelRegistry, ModelVersion
from headwater.store.online import OnlineStore
from headwater.time import Clock, format_duration, format_micros

__all__ = ["TAIL", "Sources", "evaluation", "features", "models", "serving", "topics",
           "version"]

#: Events read from the end of each partition for examples and per-arm counts.
TAIL: Final = 1000
#: The consumer group of the feature engine.
FEATURES_GROUP: Final = "features"
_EXAMPLES: Final = 3
_SHOWN_VERSIONS: Final = 150
_SHOWN_MOVES: Final = 50
_SHOWN_ENTITIES: Final = 8
_QUANTILES: Final = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


@dataclass
class Sources:
    """What the console reads. ``server`` is the prediction server's base URL (its
    ``/metrics`` and ``/models``), ``reports`` the directories of HTML reports,
    ``components`` the metrics URLs of the engine, joiner and trainer
    (``--metrics-port``)."""

    log: Log
    registry: ModelRegistry
    clock: Clock
    online: OnlineStore | None = None
    feature_sets: list[FeatureSet] = field(default_factory=list)
    server: str | None = None
    reports: list[Path] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    rates: Rates = field(default_factory=Rates)


def _tail(log: Log, topic: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The last :data:`TAIL` events of each partition of ``topic``."""
    starts, ends = log.start_offsets(topic), log.end_offsets(topic)
    for p, (start, end) in enumerate(zip(starts, ends, strict=True)):
        offset = max(start, end - TAIL)
        if offset < end:
            yield log.read(topic, p, offset, end - offset).batch.select(columns)


def topics(src: Sources) -> dict[str, Any]:
    """Every topic: partitions, offsets, events/s, consumer groups with their lag, and
    its dead letters by reason with examples."""
    log, now = src.log, src.clock.now_us()
    groups = log.groups()
    rows = []
    for info in log.topics():
        if info.name.endswith(DEAD_LETTER_SUFFIX):
            continue
        starts, ends = log.start_offsets(info.name), log.end_offsets(info.name)
        events = sum(ends)
        src.rates.observe(f"topic:{info.name}", events, at_us=now)
        lagging = []
        for group in groups:
            committed = log.committed(group, info.name)
            if committed:
                lag = log.lag(group, info.name)
                lagging.append({"group": group, "committed": committed,
                                "lag": sum(lag.values())})
        rows.append({"name": info.name, "partitions": info.partitions,
                     "starts": starts, "ends": ends, "events": events - sum(starts),
                     "rate": src.rates.rate(f"topic:{info.name}"),
                     "groups": lagging, "key": info.schema.key,
                     "dead": _dead_letters(log, info.name)})
    return {"topics": rows, "components": [_component(src, url, now) for url in src.components],
            "series": {f"topic:{r['name']}": _chart(["events/s"],
                                                   *src.rates.series(f"topic:{r['name']}"))
                       for r in rows}}


def _component(src: Sources, url: str, now: int) -> dict[str, Any]:
    """A component's metrics: each ``headwater_*`` family summed over its labels, with
    the rate of the counters."""
    try:
        samples = parse(_get(url).decode())
    except (OSError, ValueError) as exc:
        return {"url": url, "error": str(exc), "figures": []}
    sums: dict[str, float] = {}
    for sample in samples:
        if sample.name.startswith("headwater_") and not sample.name.endswith(
                ("_created", "_bucket", "_count", "_sum")):
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    figures = []
    for name, value in sorted(sums.items()):
        rate = None
        if name.endswith("_total"):
            src.rates.observe(f"component:{url}:{name}", value, at_us=now)
            rate = src.rates.rate(f"component:{url}:{name}")
        figures.append({"name": name.removeprefix("headwater_"), "value": value, "rate": rate})
    return {"url": url, "error": None, "figures": figures}


def _dead_letters(log: Log, topic: str) -> dict[str, Any]:
    dlq = dead_letter_topic(topic)
    if dlq not in {t.name for t in log.topics()}:
        return {"count": 0, "reasons": []}
    count = sum(e - s for s, e in zip(log.start_offsets(dlq), log.end_offsets(dlq),
                                      strict=True))
    reasons: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], list[str]] = {}
    for batch in _tail(log, dlq, ["field", "reason", "payload"]):
        for fld, reason, payload in zip(*(batch.column(i).to_pylist() for i in range(3)),
                                        strict=True):
            key = (fld, reason)
            reasons[key] += 1
            shown = examples.setdefault(key, [])
            if len(shown) < _EXAMPLES:
                shown.append(bytes(payload or b"")[:200].decode("utf-8", "replace"))
    return {"count": count,
            "reasons": [{"field": f, "reason": r, "count": n, "examples": examples[(f, r)]}
                        for (f, r), n in reasons.most_common()]}


def features(src: Sources) -> dict[str, Any]:
    """Per feature set: each feature's source, the engine's lag and freshness on it,
    and the values of the entities seen last on its source."""
    log, now = src.log, src.clock.now_us()
    known = {t.name for t in log.topics()}
    served = _served_rates(log) if PREDICTIONS_TOPIC in known else {}
    sets = []
    for fs in src.feature_sets:
        stream = [f for f in fs.features if isinstance(f, Feature)
                  and getattr(f.source, "topic", None) is not None]
        rows = []
        for f in fs.features:
            topic = getattr(getattr(f, "source", None), "topic", None)
            rows.append({"name": f.name, "entity": getattr(getattr(f, "entity", None), "name",
                                                           ""),
                         "aggregation": getattr(f, "aggregation", "derived"),
                         "source": topic or "", **_freshness(log, topic, known, now),
                         "served": served.get(f.name)})
        sets.append({"name": fs.name, "version": fs.version, "features": rows,
                     "values": _values(src, fs, stream, known, now)})
    return {"sets": sets, "served_events": served.get("", {}).get("events", 0)}


def _freshness(log: Log, topic: str | None, known: set[str], now: int) -> dict[str, Any]:
    """The engine's lag on ``topic`` and how long its oldest unapplied event has waited
    (zero when it has applied everything: the online store is as fresh as the log)."""
    if topic is None or topic not in known:
        return {"lag": None, "waiting": None}
    committed = log.committed(FEATURES_GROUP, topic)
    starts, ends = log.start_offsets(topic), log.end_offsets(topic)
    lag, oldest = 0, None
    for p, (start, end) in enumerate(zip(starts, ends, strict=True)):
        at = max(committed.get(p, start), start)
        lag += end - at
        if at < end:
            first = log.read(topic, p, at, 1).batch.column(APPEND_TIME)[0].as_py()
            when = first if isinstance(first, int) else int(first.timestamp() * 1e6)
            oldest = when if oldest is None else min(oldest, when)
    waiting = 0 if oldest is None else max(0, now - oldest)
    return {"lag": lag, "waiting": format_duration(waiting, exact=False)}


def _served_rates(log: Log) -> dict[str, dict[str, Any]]:
    """Per feature, over the last predictions logged: how often it was missing or
    filled with its default (the ``missing``/``defaulted`` columns name them)."""
    counts: dict[str, Counter[str]] = {}
    events = 0
    for batch in _tail(log, PREDICTIONS_TOPIC, ["missing", "defaulted"]):
        events += batch.num_rows
        for column in ("missing", "defaulted"):
            for text in batch.column(column).to_pylist():
                for name in filter(None, (text or "").split(",")):
                    counts.setdefault(name.strip(), Counter())[column] += 1
    rates: dict[str, dict[str, Any]] = {"": {"events": events}}
    for name, seen in counts.items():
        rates[name] = {k: seen[k] / events for k in ("missing", "defaulted")}
    return rates


def _values(src: Sources, fs: FeatureSet, stream: list[Feature], known: set[str],
            now: int) -> list[dict[str, Any]]:
    """The set's values for the entities whose events came last."""
    if src.online is None or not stream:
        return []
    f = stream[0]
    topic = getattr(f.source, "topic", "")
    key = getattr(f.source, "entity_key", None) or f.entity.key
    if topic not in known or len({g.entity.name for g in stream}) != 1:
        return []
    refresh = getattr(src.online, "refresh", None)
    if callable(refresh):
        refresh()
    keys: list[str] = []
    for batch in _tail(src.log, topic, [key]):
        for value in reversed(batch.column(0).to_pylist()):
            if value is not None and str(value) not in keys:
                keys.append(str(value))
    reader = FeatureReader(src.online, fs)
    shown = []
    for entity in keys[:_SHOWN_ENTITIES]:
        try:
            row = reader.read_row({f.entity.name: entity}, now)
        except HeadwaterError:
            continue
        shown.append({"entity": entity, "values": {k: _plain(v) for k, v in row.values.items()},
                      "defaulted": list(row.defaulted)})
    return shown


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, (int, str, bool)) or value is None:
        return value
    return str(value)


def models(src: Sources) -> dict[str, Any]:
    """Per model: versions over time per trainer, the lineage graph, aliases and their
    history, and the rejected versions with the reasons."""
    reg = src.registry
    shown = []
    for summary in reg.models():
        versions = reg.versions(summary.name)
        aliases = reg.aliases(summary.name)
        recent = versions[-_SHOWN_VERSIONS:]
        moves = reg.history(summary.name)[-_SHOWN_MOVES:]
        shown.append({
            "name": summary.name, "versions": summary.versions, "latest": summary.latest,
            "aliases": aliases, "graph": lineage_svg(summary.name, recent, aliases),
            "hidden": len(versions) - len(recent),
            "over_time": _versions_over_time(versions),
            "history": [{"at": format_micros(m.at), "alias": m.alias,
                         "from": m.from_version, "to": m.to_version, "kind": m.kind,
                         "actor": m.actor, "reason": m.reason} for m in reversed(moves)],
            "rejected": [{"version": v.version, "reason": v.status_reason or "",
                          "trainer": v.lineage.created_by.trainer,
                          "at": format_micros(v.status_at)}
                         for v in reversed(versions) if v.status == "rejected"][:_SHOWN_MOVES],
        })
    return {"models": shown,
            "series": {f"model:{m['name']}": m.pop("over_time") for m in shown}}


def _versions_over_time(versions: list[ModelVersion]) -> dict[str, Any]:
    """The count of versions each trainer has made, at each version's creation."""
    trainers = sorted({v.lineage.created_by.trainer for v in versions})
    times = sorted({v.created_at / 1e6 for v in versions})
    made: dict[str, list[float]] = {t: [] for t in trainers}
    for v in versions:
        made[v.lineage.created_by.trainer].append(v.created_at / 1e6)
    columns = []
    for t in trainers:
        mine, count, column = sorted(made[t]), 0, []
        for x in times:
            while count < len(mine) and mine[count] <= x:
                count += 1
            column.append(float(count))
        columns.append(column)
    return _chart(trainers, times, *columns)


def _chart(labels: list[str], times: list[float], *columns: list[float]) -> dict[str, Any]:
    """A chart's data: series ``labels`` over ``times`` (seconds since the epoch)."""
    return {"labels": labels, "data": [times, *columns]}


def version(src: Sources, model: str, number: int) -> dict[str, Any]:
    """One version: its record, metrics, cost, parent and children."""
    reg = src.registry
    v: ModelVersion = reg.get(model, number)
    children = [c.version for c in reg.versions(model) if c.lineage.parent == number]
    metrics = v.lineage.metrics
    return {"model": model, "version": v.version, "status": v.status,
            "status_reason": v.status_reason, "created": format_micros(v.created_at),
            "parent": v.lineage.parent, "children": children,
            "created_by": msgspec.to_builtins(v.lineage.created_by),
            "metrics": dict(sorted(metrics.items())),
            "cost": {k: metrics[k] for k in ("rows", "cpu_s", "wall_s") if k in metrics},
            "aliases": sorted(a for a, n in reg.aliases(model).items() if n == number),
            "record": json.dumps(msgspec.to_builtins(v), indent=2, sort_keys=True)}


def serving(src: Sources) -> dict[str, Any]:
    """The server's requests/s, latency percentiles and errors per endpoint, its
    counters, the policy it runs with the versions of its arms, and the traffic of each
    arm in the last predictions logged."""
    result: dict[str, Any] = {"server": src.server, "reachable": False, "endpoints": [],
                              "counters": {}, "deployment": None, "arms": [], "error": None}
    if src.server:
        try:
            samples = parse(_get(f"{src.server}/metrics").decode())
            deployment = json.loads(_get(f"{src.server}/models"))
        except (OSError, ValueError) as exc:
            result["error"] = f"{src.server}: {exc}"
        else:
            result.update(reachable=True, deployment=deployment,
                          **_server_figures(src, samples))
    if PREDICTIONS_TOPIC in {t.name for t in src.log.topics()}:
        arms: Counter[tuple[str, int, bool]] = Counter()
        for batch in _tail(src.log, PREDICTIONS_TOPIC, ["arm", "version", "served"]):
            for arm, number, was_served in zip(*(c.to_pylist() for c in batch.columns),
                                               strict=True):
                arms[(arm, number, was_served)] += 1
        result["arms"] = [{"arm": a, "version": n, "served": s, "predictions": c}
                          for (a, n, s), c in sorted(arms.items(), key=str)]
    times, served = src.rates.series("serving:requests")
    result["series"] = {"serving": _chart(["requests/s", "errors/s"], times, served,
                                          src.rates.series("serving:errors")[1])}
    return result


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as answer:
        body: bytes = answer.read()
        return body


def _server_figures(src: Sources, samples: list[Sample]) -> dict[str, Any]:
    now = src.clock.now_us()
    requests = "headwater_http_requests_total"
    endpoints = sorted({s.labels["endpoint"] for s in samples if s.name == requests})
    rows = []
    for endpoint in endpoints:
        mine = [s for s in samples if s.labels.get("endpoint") == endpoint]
        count = total(mine, requests)
        src.rates.observe(f"endpoint:{endpoint}", count, at_us=now)
        latency = {name: quantile(mine, "headwater_http_request_seconds", q)
                   for name, q in _QUANTILES}
        rows.append({"endpoint": endpoint, "requests": count,  # an endpoint's figures
                     "rate": src.rates.rate(f"endpoint:{endpoint}"),
                     "client_errors": total(mine, requests,
                                            lambda lb: lb["status"].startswith("4")),
                     "errors": total(mine, requests, lambda lb: lb["status"].startswith("5")),
                     **{k: None if v is None else round(v * 1000, 3)
                        for k, v in latency.items()}})
    served = [s for s in samples if s.name == requests
              and s.labels["endpoint"] in ("/predict", "/decide")]
    src.rates.observe("serving:requests", total(served, requests), at_us=now)
    src.rates.observe("serving:errors", total(served, requests,
                                              lambda lb: lb["status"].startswith("5")),
                      at_us=now)
    counters = {s.name.removeprefix("headwater_").removesuffix("_total"): s.value
                for s in samples
                if s.name.startswith("headwater_") and not s.labels
                and not s.name.endswith("_created")}
    return {"endpoints": rows, "counters": counters,
            "rate": src.rates.rate("serving:requests")}


def evaluation(src: Sources) -> dict[str, Any]:
    """The HTML reports found in the report directories (and one level below)."""
    found = []
    for directory in src.reports:
        for path in sorted([*directory.glob("*.html"), *directory.glob("*/*.html")]):
            found.append({"path": str(path), "name": str(path.relative_to(directory)),
                          "size": path.stat().st_size,
                          "modified": format_micros(int(path.stat().st_mtime * 1e6))})
    return {"reports": found, "directories": [str(d) for d in src.reports]}


def report_file(src: Sources, path: str) -> Path | None:
    """``path`` if it is an HTML report the evaluation page lists, else ``None``."""
    wanted = Path(path).resolve()
    for directory in src.reports:
        root = directory.resolve()
        if wanted.suffix == ".html" and wanted.is_file() and (
                wanted.parent == root or wanted.parent.parent == root):
            return wanted
    return None
