"""Click-through: users whose tastes drift, clicks as natural labels, cold starts in session.

A simulated site shows items to users in sessions of ``impressions`` items, a minute
apart. Each item belongs to one of four topics; each user has a taste over the topics
(drawn at random) and clicks an item with probability ``sigmoid(-3 + 6 * taste[topic]
+ bias[item])``. Half-way through, every user's taste moves to the next topic (drift).
A share of sessions comes from users never seen before (cold start).

Everything goes through the real system, as in :mod:`headwater.demos.elec2`:
impressions and clicks into the log; streaming features per user — clicks per topic over
the last 30 minutes (the session) and over the user's lifetime, impressions over both —
and two derived features computed identically online and offline, the share of the
user's clicks that went to the shown item's topic, in the session and in the lifetime;
predictions through the prediction service (``continual`` answers, ``static`` — trained
on the first day, never again — in the shadow); clicks joined as natural labels by the
label joiner (a click within two minutes is a 1, none a 0); a continual trainer.

The report shows quality over time (the drift is visible in the static model) and the
cold start: the log loss of new users' predictions by position in their first session,
falling as the session features fill in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.demos.system import DemoSystem
from headwater.features import (
    DerivedFeature,
    Entity,
    Feature,
    FeatureSet,
    Filter,
    Lifetime,
    Sliding,
    StreamSource,
)
from headwater.labels import OUTCOMES_SCHEMA, OUTCOMES_TOPIC, TRAINING_EXAMPLES_TOPIC
from headwater.labels.join import JoinRule
from headwater.learning import Every, Fire, Gate, Trainer
from headwater.log import Schema
from headwater.models import LogisticRegression
from headwater.models.metrics import log_loss, roc_auc
from headwater.reports import Cell, Report

__all__ = ["CtrLoop", "CtrStats", "feature_set"]

MODEL: Final = "ctr"
TOPICS: Final = 4
MINUTE: Final = 60_000_000
HOUR: Final = 60 * MINUTE
START: Final = 1_700_000_000_000_000 - 1_700_000_000_000_000 % (24 * HOUR)
EVENTS: Final = Schema.of({"user": "string", "item": "string", "topic": "int64",
                           "ts": "timestamp"}, key="user", event_time="ts")
_TS: Final = pa.timestamp("us", tz="UTC")


def _share(prefix: str, total: str) -> Callable[[Mapping[str, npt.NDArray[Any]]],
                                                npt.NDArray[Any]]:
    def share(columns: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[Any]:
        counts = np.stack([np.asarray(columns[f"{prefix}{k}"], np.float64)
                           for k in range(TOPICS)], axis=1)
        topic = np.asarray(columns["topic"], np.float64).astype(np.int64) % TOPICS
        chosen = counts[np.arange(len(topic)), topic]
        return chosen / (1.0 + np.asarray(columns[total], np.float64))
    share.__name__ = f"share_{prefix}"
    return share


def feature_set() -> FeatureSet:
    """Per user: clicks per topic and impressions, in the session and in the lifetime,
    and the shares of clicks on the shown item's topic (derived, with the request)."""
    user = Entity("user", key="user")
    clicks, shown = StreamSource.of("clicks"), StreamSource.of("impressions")
    session = Sliding.of("30m", hop="1m")
    features: list[Feature | DerivedFeature] = []
    for k in range(TOPICS):
        where = Filter("topic", "==", k)
        features.append(Feature.of(f"s{k}", user, clicks, "count", window=session, where=where))
        features.append(Feature.of(f"l{k}", user, clicks, "count", window=Lifetime(),
                                   where=where))
    features.append(Feature.of("views_30m", user, shown, "count", window=session))
    features.append(Feature.of("views", user, shown, "count", window=Lifetime()))
    features.append(DerivedFeature("session_match", (*[f"s{k}" for k in range(TOPICS)],
                                                     "views_30m", "topic"),
                                   _share("s", "views_30m")))
    features.append(DerivedFeature("life_match", (*[f"l{k}" for k in range(TOPICS)],
                                                  "views", "topic"), _share("l", "views")))
    return FeatureSet("ctr", tuple(features))


@dataclass
class CtrStats:
    """Progress of the loop."""

    impressions: int = 0
    clicks: int = 0
    versions: int = 0
    wall_s: float = 0.0


class CtrLoop(DemoSystem):
    """The click-through simulation over the demo system in ``directory`` (cleared)."""

    def __init__(self, directory: Path, *, sessions: int = 1500, impressions: int = 6,
                 users: int = 400, new_share: float = 0.3, seed: int = 7,
                 train_every: int = 60) -> None:
        self.rng = np.random.default_rng(seed)
        self.sessions, self.per_session, self.new_share = sessions, impressions, new_share
        self.train_every = train_every
        self.tastes: list[npt.NDArray[np.float64]] = [self.rng.dirichlet([0.4] * TOPICS)
                                                      for _ in range(users)]
        self.items = 40
        self.item_topic = self.rng.integers(0, TOPICS, self.items)
        self.item_bias = self.rng.normal(0.0, 0.3, self.items)
        super().__init__(directory, model=MODEL, start_us=START,
                         topics={"impressions": EVENTS, "clicks": EVENTS},
                         features=feature_set(), arms=("continual", "static"),
                         rule=JoinRule(window=2 * MINUTE, timeout_label=0.0))
        gate = Gate("log_loss", margin=0.01, window=300)
        self.trainer = Trainer(self.log, self.registry, MODEL, LogisticRegression,
                               strategy="continual", alias="continual", arm="continual",
                               trigger=Every(HOUR), gate=gate, trainer="continual",
                               feature_set=self.features.version, clock=self.clock)
        self.static = Trainer(self.log, self.registry, MODEL, LogisticRegression,
                              strategy="stateless", alias="static", arm="static", gate=gate,
                              trainer="static", clock=self.clock)
        self.stats = CtrStats()
        self._pending: list[tuple[int, str, str, int, str]] = []  # clicks yet to happen
        self.positions: list[tuple[str, int, bool]] = []  # request id, position, new user
        self._drifted = False

    def run(self, on_progress: Callable[[CtrStats], None] | None = None) -> CtrStats:
        """Every session, then the last labels."""
        started = time.perf_counter()
        users = len(self.tastes)
        for s in range(self.sessions):
            if not self._drifted and s >= self.sessions // 2:  # tastes move one topic on
                self.tastes = [np.roll(t, 1) for t in self.tastes]
                self._drifted = True
            new = self.rng.random() < self.new_share
            if new:
                self.tastes.append(self.rng.dirichlet([0.4] * TOPICS))
                u = len(self.tastes) - 1
            else:
                u = int(self.rng.integers(0, users))
            self._session(s, f"u{u}", self.tastes[u], new)
            self.clock.advance(5 * MINUTE)
            if on_progress is not None and s % 50 == 0:
                self.stats.wall_s = time.perf_counter() - started
                on_progress(self.stats)
        self.clock.advance(10 * MINUTE)
        self._deliver_clicks()
        self._train()
        self.predictions.close()
        self.stats.wall_s = time.perf_counter() - started
        return self.stats

    def _session(self, s: int, user: str, taste: npt.NDArray[np.float64], new: bool) -> None:
        for position in range(self.per_session):
            self.clock.advance(MINUTE)
            self._deliver_clicks()
            now = self.clock.now_us()
            item = int(self.rng.integers(0, self.items))
            topic = int(self.item_topic[item])
            self._append("impressions", [(user, f"i{item}", topic, now)])
            self.engine.step()
            rid = f"s{s}-{position}"
            self.predictor.predict({"user": user}, {"item": f"i{item}", "topic": float(topic)},
                                   request_id=rid)
            self.positions.append((rid, position, new))
            logit = -3.0 + 6.0 * taste[topic] + self.item_bias[item]
            if self.rng.random() < 1.0 / (1.0 + np.exp(-logit)):
                delay = int(self.rng.integers(5, 55)) * 1_000_000
                self._pending.append((now + delay, user, f"i{item}", topic, rid))
            self.stats.impressions += 1
            if self.stats.impressions % self.train_every == 0:
                self._train()

    def _deliver_clicks(self) -> None:
        now = self.clock.now_us()
        due = [c for c in self._pending if c[0] <= now]
        if not due:
            return
        self._pending = [c for c in self._pending if c[0] > now]
        self._append("clicks", [(user, item, topic, ts) for ts, user, item, topic, _ in due])
        self.log.append(OUTCOMES_TOPIC, pa.record_batch({
            "request_id": [rid for *_, rid in due], "entity": [c[1] for c in due],
            "label": pa.array([None] * len(due), pa.float64()),
            "ts": pa.array([c[0] for c in due], pa.int64()).cast(_TS)},
            schema=OUTCOMES_SCHEMA.arrow_schema()))
        self.stats.clicks += len(due)

    def _append(self, topic: str, rows: list[tuple[str, str, int, int]]) -> None:
        users, items, topics, times = zip(*rows, strict=True)
        self.log.append(topic, pa.record_batch({
            "user": list(users), "item": list(items), "topic": pa.array(topics, pa.int64()),
            "ts": pa.array(times, pa.int64()).cast(_TS)}, schema=EVENTS.arrow_schema()))

    def _train(self) -> None:
        self.predictions.flush()
        self.joiner.step()
        changed = self.trainer.step() is not None
        if not self.static.published and self.clock.now_us() >= START + 24 * HOUR:
            self.static.train(event_time=(START, START + 24 * HOUR),
                              fire=Fire("manual", "the first day, once"))
            changed = True
        if changed:
            self.stats.versions = len(self.registry.versions(MODEL))
            self.deployment.reload()

    def report(self) -> Report:
        """Quality over time per arm, and the cold start by position in the session."""
        rows = self.log.read_table(TRAINING_EXAMPLES_TOPIC).to_pydict()
        where = {rid: (pos, new) for rid, pos, new in self.positions}
        out = Report("Headwater demo: click-through with drift and cold starts")
        out.text(f"{self.stats.impressions:,} impressions in {self.sessions:,} sessions, "
                 f"{self.stats.clicks:,} clicks joined as natural labels (a click within two "
                 f"minutes); tastes drift half-way; {self.new_share:.0%} of sessions are new "
                 f"users. {self.stats.versions} model versions.")
        by_arm: dict[str, list[tuple[int, float, float]]] = {}
        for arm, t, y, s in zip(rows["arm"], rows["prediction_time"], rows["label"],
                                rows["score"], strict=True):
            by_arm.setdefault(arm, []).append((int(t.timestamp() * 1e6), y, s))
        summary: list[list[Cell]] = []
        series_auc: dict[str, tuple[list[float], list[float]]] = {}
        for arm, points in sorted(by_arm.items()):
            points.sort()
            y = np.array([p[1] for p in points])
            s = np.array([p[2] for p in points])
            summary.append([arm, len(y), round(roc_auc(y, s), 4), round(log_loss(y, s), 4)])
            step = max(len(y) // 20, 50)
            xs, aucs = [], []
            for lo in range(0, len(y) - step + 1, step):
                xs.append((points[lo + step - 1][0] - START) / HOUR)
                aucs.append(roc_auc(y[lo:lo + step], s[lo:lo + step]))
            series_auc[arm] = (xs, aucs)
        out.section("Quality")
        out.table(["arm", "predictions", "ROC AUC", "log loss"], summary)
        out.line_plot(series_auc, title="ROC AUC over time (tastes drift half-way)",
                      xlabel="hours", ylabel="ROC AUC")
        out.section("Cold start")
        served = [(where[r], y, s) for r, y, s, a in zip(rows["request_id"], rows["label"],
                                                         rows["score"], rows["arm"],
                                                         strict=True)
                  if a == "continual" and r in where]
        cold: dict[str, tuple[list[float], list[float]]] = {}
        for label, flag in (("new users", True), ("returning users", False)):
            xs, losses = [], []
            for position in range(self.per_session):
                picked = [(y, s) for (pos, new), y, s in served if pos == position and new == flag]
                if len(picked) >= 20:
                    xs.append(float(position + 1))
                    losses.append(log_loss(np.array([p[0] for p in picked]),
                                           np.array([p[1] for p in picked])))
            cold[label] = (xs, losses)
        out.line_plot(cold, title="Log loss by position in the session (served model)",
                      xlabel="impression in the session", ylabel="log loss")
        return out
