"""Elec2 as a live stream through the whole system, comparing four ways of training.

:class:`Elec2Loop` replays the packaged Elec2 stream at accelerated time (a manual
clock set to each row's time) through the real components, in one process:

1. each half hour, the row's event is appended to the ``elec2`` topic and the label of
   the previous row — known now, 30 minutes after its prediction — to ``outcomes``;
2. the :class:`~headwater.features.engine.FeatureEngine` turns both topics into
   streaming features in the embedded online store: rolling means of the NSW price and
   demand, the last known label and the share of "up" labels over the last day;
3. the :class:`~headwater.serving.Predictor` answers a request for region ``NSW``
   carrying the row's own values: the ``continual`` version answers, the ``static``,
   ``stateless`` and ``stateful`` versions are scored in the shadow, and every score is
   logged to ``predictions``;
4. the :class:`~headwater.labels.LabelJoiner` joins outcomes to predictions into
   ``training_examples``;
5. four :class:`~headwater.learning.Trainer` s publish versions with lineage to the
   model store, each under its own alias (the deployment hot-swaps them):

   - ``static``: trained once, from scratch, on the first week;
   - ``stateless``: retrained from scratch daily on the last ``history_days`` of
     examples (8 weeks by default);
   - ``stateful``: the previous version updated on the day's examples, daily;
   - ``continual``: learns every batch of examples as it arrives and publishes what it
     learnt at once (with ``publish_every``: every ``publish_every`` of stream time, and
     on drift when River is installed).

Every strategy is judged on the same predictions, from the log: the training examples
of its arm are its prequential record (each prediction was made before its label was
known). Joining and training run every ``train_every`` rows (the iteration cycle is a
knob), before that row's prediction, so the label that came with the row is learnt;
features and predictions run every row.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.datasets import elec2
from headwater.demos.system import DemoSystem
from headwater.evaluation.arms import Record, StrategyScore, score_on_arrival
from headwater.features import (
    DerivedFeature,
    Entity,
    Feature,
    FeatureSet,
    Lifetime,
    Sliding,
    StreamSource,
)
from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC
from headwater.labels.join import JoinRule
from headwater.learning import (
    AnyOf,
    Daily,
    Drift,
    Every,
    Fire,
    Gate,
    RateLimited,
    Trainer,
    Trigger,
    Volume,
)
from headwater.log import Schema
from headwater.models import LogisticRegression

__all__ = ["MODEL", "STRATEGIES", "TRAIN_EVERY", "Elec2Loop", "LoopStats", "feature_set"]

MODEL: Final = "elec2"
#: Rows between two rounds of joining labels and training (the iteration cycle).
TRAIN_EVERY: Final = 16
#: The strategies compared, each an alias of the model and a routing arm.
STRATEGIES: Final = ("static", "stateless", "stateful", "continual")
HOUR: Final = 3_600_000_000
DAY: Final = 24 * HOUR
#: The columns of an ``elec2`` event: the row as the data set has it.
EVENT_COLUMNS: Final = ("date", "day", "period", "nswprice", "nswdemand", "vicprice",
                        "vicdemand", "transfer")
#: The row's values a request carries: those that mean the same thing over the whole
#: stream (not ``date``, a time index; not ``vicprice``, ``vicdemand`` and ``transfer``,
#: which hold one filler value for the first 17,424 rows).
REQUEST_COLUMNS: Final = ("day", "period", "nswprice", "nswdemand")
SCHEMA: Final = Schema.of({"region": "string", **dict.fromkeys(EVENT_COLUMNS, "float64"),
                           "ts": "timestamp"}, key="region", event_time="ts")


def _against_mean(columns: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[Any]:
    value, mean = columns.values()
    return np.asarray(value - mean)


def _change(columns: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[Any]:
    # the hour's mean holds this half hour's price and the one before
    price, mean_1h = columns.values()
    return np.asarray(2.0 * (price - mean_1h))


def feature_set(*, price_means: bool = True) -> FeatureSet:
    """The streaming features of the demo (entity ``region``), next to the request's
    :data:`REQUEST_COLUMNS` (time of day, day of week, the NSW price and demand).

    Elec2's label says whether the price is above its mean over the last 24 hours, so
    with ``price_means`` the model reads the price against its 24-hour mean, the price
    change since the half hour before and the demand against its 24-hour mean, all
    from values known at prediction time; without them the features are the label
    history alone (the last known label, the share of "up" over the last day). Every
    feature means the same thing over the whole stream.
    """
    region = Entity("region", key="region")
    rows = StreamSource.of("elec2")
    labels = StreamSource.of(OUTCOMES_TOPIC, "entity")
    history = (
        Feature.of("last_label", region, labels, "last", column="label", window=Lifetime(),
                   default=0.5),
        Feature.of("up_share_1d", region, labels, "mean", column="label",
                   window=Sliding.of("1d", hop="30m"), default=0.5),
    )
    if not price_means:
        return FeatureSet("elec2_labels", history)
    return FeatureSet("elec2", (
        *history,
        Feature.of("price_mean_1h", region, rows, "mean", column="nswprice",
                   window=Sliding.of("1h", hop="30m")),
        Feature.of("price_mean_1d", region, rows, "mean", column="nswprice",
                   window=Sliding.of("1d", hop="30m")),
        Feature.of("demand_mean_1d", region, rows, "mean", column="nswdemand",
                   window=Sliding.of("1d", hop="30m")),
        DerivedFeature("price_vs_1d", ("nswprice", "price_mean_1d"), _against_mean),
        DerivedFeature("price_change", ("nswprice", "price_mean_1h"), _change),
        DerivedFeature("demand_vs_1d", ("nswdemand", "demand_mean_1d"), _against_mean),
    ), helpers=("price_mean_1h", "price_mean_1d", "demand_mean_1d"))


@dataclass
class LoopStats:
    """What the loop did, for the progress display and the report."""

    rows: int = 0
    predictions: int = 0
    examples: int = 0
    late: int = 0
    versions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STRATEGIES, 0))
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STRATEGIES, 0))
    wall_s: float = 0.0


class Elec2Loop(DemoSystem):
    """The Elec2 replay over the demo system in ``directory`` (cleared)."""

    def __init__(self, directory: Path, *, rows: int | None = None,
                 train_every: int = TRAIN_EVERY, publish_every: int | None = None,
                 static_days: int = 7,
                 history_days: int = 56, price_means: bool = True) -> None:
        self.table = elec2.load(limit=rows)
        self.rows = self.table.num_rows
        self.train_every = train_every
        self.static_until = elec2.START_US + static_days * DAY
        super().__init__(directory, model=MODEL, start_us=elec2.START_US,
                         topics={"elec2": SCHEMA}, features=feature_set(price_means=price_means),
                         arms=("continual", "static", "stateless", "stateful"),
                         rule=JoinRule(window=HOUR, timeout_label=None))
        self.trainers = self._trainers(publish_every, history_days * DAY)
        self.stats = LoopStats()
        self._columns = {c: self.table.column(c).to_numpy() for c in EVENT_COLUMNS}
        self._labels = self.table.column("label").to_numpy()
        self._times = self.table.column("event_time").cast(pa.int64()).to_numpy()

    def _trainers(self, publish_every: int | None, history: int) -> dict[str, Trainer]:
        fs = self.features.version

        def make(alias: str, strategy: str, trigger: Trigger | None) -> Trainer:
            return Trainer(self.log, self.registry, MODEL, LogisticRegression,
                           strategy=strategy,  # type: ignore[arg-type]
                           alias=alias, arm=alias, trigger=trigger, trainer=alias,
                           history=history if alias == "stateless" else None,
                           # a daily run learns one day: 48 half-hours, judged on them all;
                           # a continual version is judged on what it learnt since the last
                           gate=Gate("log_loss", margin=0.02, window=96, min_examples=(
                               min(48, self.train_every) if alias == "continual" else 48)),
                           feature_set=fs,
                           clock=self.clock)

        continual: Trigger = Volume(1)  # whatever it learnt, at once
        if publish_every is not None:
            continual = Every(publish_every)
            if importlib.util.find_spec("river") is not None:
                continual = AnyOf(continual, RateLimited(Drift("adwin", on="error"),
                                                         12 * HOUR))
        return {
            "static": make("static", "stateless", None),
            "stateless": make("stateless", "stateless", Daily()),
            "stateful": make("stateful", "stateful", Daily()),
            "continual": make("continual", "continual", continual),
        }

    # -- the loop ---------------------------------------------------------------

    def run(self, on_progress: Callable[[LoopStats], None] | None = None,
            every: int = 480) -> LoopStats:
        """Replay every row; ``on_progress`` is called every ``every`` rows."""
        started = time.perf_counter()
        for i in range(self.rows):
            self.step(i)
            if on_progress is not None and (i % every == 0 or i == self.rows - 1):
                self.stats.wall_s = time.perf_counter() - started
                on_progress(self.stats)
        self._train()  # the last labels
        self.predictions.close()
        self.stats.wall_s = time.perf_counter() - started
        return self.stats

    def step(self, i: int) -> None:
        """Row ``i``'s half hour: events in, features, every ``train_every`` rows the
        label join and the trainers (the label that just came included), a prediction."""
        now = int(self._times[i])
        self.clock.set(now)
        if i > 0:
            self.log.append(OUTCOMES_TOPIC, pa.record_batch(
                {"request_id": [f"elec2-{i - 1}"], "entity": ["NSW"],
                 "label": [float(self._labels[i - 1])],
                 "ts": pa.array([now], pa.int64()).cast(pa.timestamp("us", tz="UTC"))},
                schema=OUTCOMES_SCHEMA.arrow_schema()))
        row = {c: float(v[i]) for c, v in self._columns.items()}
        self.log.append("elec2", pa.record_batch(
            {"region": ["NSW"], **{c: [v] for c, v in row.items()},
             "ts": pa.array([now], pa.int64()).cast(pa.timestamp("us", tz="UTC"))},
            schema=SCHEMA.arrow_schema()))
        self.engine.step()
        if i and i % self.train_every == 0:
            self._train()
        request = {c: row[c] for c in REQUEST_COLUMNS}
        self.predictor.predict({"region": "NSW"}, request, request_id=f"elec2-{i}")
        self.stats.rows = i + 1
        self.stats.predictions += 1

    def _train(self) -> None:
        self.predictions.flush()
        joined = self.joiner.step()
        self.stats.examples += joined.examples
        self.stats.late += joined.late
        now = self.clock.now_us()
        changed = False
        for alias, trainer in self.trainers.items():
            if alias == "static":
                if now >= self.static_until and not trainer.published:
                    start = elec2.START_US
                    done = trainer.train(event_time=(start, self.static_until),
                                         fire=Fire("manual", "the first week, once"))
                else:
                    done = None
            else:
                done = trainer.step()
            if done is not None:
                changed = True
                self.stats.versions[alias] += 1
                if not done.verdict.promote:
                    self.stats.rejected[alias] += 1
        if changed:
            self.deployment.reload()

    def ideal(self) -> tuple[StrategyScore, Record]:
        """The reference the system is judged against: the same model and features (as
        served to the continual arm) learning each label the moment it arrives, in
        memory, scored from the eighth day like the strategies."""
        return score_on_arrival(self.log, LogisticRegression, "continual",
                                start=self.static_until)

    @property
    def reverts(self) -> int:
        """How often the continual trainer went back to its checkpoint, as it counts them."""
        return self.trainers["continual"].reverts

    def labels(self) -> npt.NDArray[np.float64]:
        """The label of every row replayed, in order."""
        labels: npt.NDArray[np.float64] = self._labels.astype(np.float64)
        return labels
