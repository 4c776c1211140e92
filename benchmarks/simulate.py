"""The system's own overhead: a labelled stream through ``headwater simulate`` and
through an in-memory loop with the same model, features and label delay.

Two streams: Elec2 (the packaged dataset: region NSW, the row's values as the request,
the day's mean price and demand as features, each label known 30 minutes after its row)
and a generated stream of card payments (``--events``, 1,000 cards, the card's lifetime
mean amount and payment count as features, the amount as the request, each label known
1 to 60 minutes after its payment).

The system: :func:`headwater.system.simulation.simulate` — what the command runs — over
a :class:`~headwater.system.System` on embedded stores (fsync off), a continual trainer
publishing every ``--publish`` (the gate judging each version). The in-memory loop: the
features computed by the point-in-time join (as of each event's time, the values the
engine serves, proved equal by the feature property tests), a served copy of the model
answering each event, the labels learnt ``batch_rows`` at a time as they become known,
the served copy replaced at the same publishing cadence; no log, no stores, no gate.

Prints one JSON object: per stream the CPU seconds of both, ``simulate_cpu_vs_inmemory``
(target <= 3) and ``simulate_auc_gap`` (the in-memory loop's AUC minus the system's;
target <= 0.002); the top-level figures are the worst of the streams.
"""

from __future__ import annotations

import argparse
import copy
import heapq
import json
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from headwater import ManualClock, Schema
from headwater.datasets import elec2
from headwater.features import (
    Entity,
    Feature,
    FeatureSet,
    Lifetime,
    Queries,
    Sliding,
    Sources,
    StreamSource,
    point_in_time,
)
from headwater.labels import JoinRule
from headwater.learning import Every, Gate
from headwater.learning.score_then_learn import BATCH_ROWS
from headwater.models import LogisticRegression
from headwater.models.metrics import roc_auc
from headwater.system import System, SystemConfig
from headwater.system.simulation import simulate

MINUTE = 60_000_000
HOUR = 60 * MINUTE


def _elec2(rows: int | None) -> dict[str, Any]:
    table = elec2.load(limit=rows)
    times = table.column("event_time").cast(pa.int64()).to_numpy()
    request = ("nswprice", "nswdemand", "vicprice", "vicdemand", "transfer")
    region = Entity("region", key="region")
    src = StreamSource.of("elec2")
    fs = FeatureSet("elec2", (
        Feature.of("price_mean_1d", region, src, "mean", column="nswprice",
                   window=Sliding.of("1d", hop="2h")),
        Feature.of("demand_mean_1d", region, src, "mean", column="nswdemand",
                   window=Sliding.of("1d", hop="2h")),
    ))
    events = pa.table({"region": ["NSW"] * table.num_rows,
                       **{c: table.column(c).cast(pa.float64()) for c in request},
                       "ts": pa.array(times, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                       "id": [f"e{i}" for i in range(table.num_rows)]})
    schema = Schema.of({"region": "string", **dict.fromkeys(request, "float64"),
                        "ts": "timestamp"}, key="region", event_time="ts")
    labels = table.column("label").cast(pa.float64()).to_numpy()
    return {"events": events, "schema": schema, "topic": "elec2", "features": fs,
            "request": request, "labels": labels, "known": times + 30 * MINUTE,
            "key": "region"}


def _payments(n: int, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    cards = rng.integers(0, 1000, n)
    risk = rng.normal(0, 1, 1000)
    amount = np.round(rng.lognormal(3, 1, n), 2)
    times = 1_767_225_600_000_000 + np.cumsum(rng.integers(1, 20, n)) * 1_000_000
    logit = 0.02 * (amount - 30) + 1.5 * risk[cards] - 1.0
    labels = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    card = Entity("card", key="card")
    src = StreamSource.of("payments")
    fs = FeatureSet("payments", (
        Feature.of("mean_amount", card, src, "mean", column="amount", window=Lifetime()),
        Feature.of("payments", card, src, "count", window=Lifetime()),
    ))
    events = pa.table({"card": [f"c{c}" for c in cards], "amount": amount,
                       "ts": pa.array(times, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                       "id": [f"p{i}" for i in range(n)]})
    schema = Schema.of({"card": "string", "amount": "float64", "ts": "timestamp"},
                       key="card", event_time="ts")
    return {"events": events, "schema": schema, "topic": "payments", "features": fs,
            "request": ("amount",), "labels": labels,
            "known": times + rng.integers(1, 61, n) * MINUTE, "key": "card"}


def _system(stream: dict[str, Any], publish: int) -> tuple[float, float]:
    config = SystemConfig("bench", stream["features"], rule=JoinRule(window=2 * HOUR),
                          trigger=lambda: Every(publish), gate=lambda: Gate(window=1000))
    events = stream["events"]
    times = events.column("ts").cast(pa.int64()).to_numpy()
    clock = ManualClock(int(times[0]) - 1)
    outcomes = pa.table({"request_id": events.column("id"), "label": stream["labels"],
                         "known_at": stream["known"]})
    started = time.process_time()
    with tempfile.TemporaryDirectory() as scratch, System.open(
            config, scratch, topics={stream["topic"]: stream["schema"]}, clock=clock,
            fsync="never") as system:
        card = simulate(system, clock, topic=stream["topic"], events=events, ids="id",
                        outcomes=outcomes, request=stream["request"], tick_us=1_000_000,
                        learn_every_us=MINUTE)
    cpu = time.process_time() - started
    served = [a for a in card.arms if a.arm == "champion"]
    assert served, card
    assert served[0].examples == len(times), card
    assert served[0].auc is not None
    return cpu, served[0].auc


def _inmemory(stream: dict[str, Any], publish: int) -> tuple[float, float]:
    started = time.process_time()
    events = stream["events"]
    times = events.column("ts").cast(pa.int64()).to_numpy()
    fs: FeatureSet = stream["features"]
    history = events.append_column("_append_time", pa.array(times, pa.int64())).append_column(
        "_offset", pa.array(np.arange(len(times)), pa.int64()))
    keys = events.column(stream["key"])
    values = point_in_time([f for f in fs.features if isinstance(f, Feature)],
                           Sources(history, stream["key"], "ts"),
                           Queries(keys, times))
    columns = {name: np.nan_to_num(values.column(name).to_numpy(zero_copy_only=False)
                                   .astype(np.float64)) for name in values.column_names}
    for name in stream["request"]:
        columns[name] = events.column(name).to_numpy()
    labels, known = stream["labels"], stream["known"]
    model = LogisticRegression()
    served = copy.deepcopy(model)
    scores = np.empty(len(times))
    waiting: list[tuple[int, int]] = []
    learnt: list[int] = []
    last_publish = int(times[0])
    next_learn = int(times[0]) + MINUTE
    for i, now in enumerate(times):
        while next_learn <= now:  # the labels known by now, learnt; publish on cadence
            while waiting and waiting[0][0] <= next_learn:
                learnt.append(heapq.heappop(waiting)[1])
            _learn(model, columns, labels, learnt)
            learnt = []
            if next_learn - last_publish >= publish:
                served = copy.deepcopy(model)
                last_publish = next_learn
            next_learn += MINUTE
        scores[i] = served.predict_one({k: v[i] for k, v in columns.items()})
        heapq.heappush(waiting, (int(known[i]), i))
    cpu = time.process_time() - started
    return cpu, roc_auc(labels, scores)


def _learn(model: LogisticRegression, columns: dict[str, np.ndarray], labels: np.ndarray,
           rows: Sequence[int]) -> None:
    for lo in range(0, len(rows), BATCH_ROWS):
        part = np.array(rows[lo:lo + BATCH_ROWS])
        model.learn({k: v[part] for k, v in columns.items()}, labels[part])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000,
                        help="events of the generated stream")
    parser.add_argument("--elec2-rows", type=int, default=None, help="Elec2 rows (all)")
    parser.add_argument("--publish", default="12h", help="the publishing cadence")
    args = parser.parse_args()
    from headwater.time import parse_duration

    publish = parse_duration(args.publish)
    figures: dict[str, Any] = {}
    streams: list[dict[str, Any]] = []
    for name, stream in (("elec2", _elec2(args.elec2_rows)), ("payments",
                                                              _payments(args.events))):
        system_cpu, system_auc = _system(stream, publish)
        memory_cpu, memory_auc = _inmemory(stream, publish)
        figures[name] = {"events": stream["events"].num_rows,
                         "system_cpu_s": round(system_cpu, 2),
                         "inmemory_cpu_s": round(memory_cpu, 2),
                         "system_auc": round(system_auc, 4),
                         "inmemory_auc": round(memory_auc, 4),
                         "simulate_cpu_vs_inmemory": round(system_cpu / memory_cpu, 2),
                         "simulate_auc_gap": round(memory_auc - system_auc, 4)}
        streams.append(figures[name])
    figures["simulate_cpu_vs_inmemory"] = max(f["simulate_cpu_vs_inmemory"] for f in streams)
    figures["simulate_auc_gap"] = max(f["simulate_auc_gap"] for f in streams)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
