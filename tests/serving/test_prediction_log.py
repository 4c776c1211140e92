"""Prediction events: on the topic with the features as served, in batches, drops counted."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from headwater.errors import TopicExistsError
from headwater.log import Log, Schema
from headwater.serving import (
    PREDICTIONS_SCHEMA,
    PredictionLog,
    Shadow,
    Split,
    ensure_topic,
)
from headwater.serving.prediction_log import (
    PredictionRow,
    encode_entities,
    encode_features,
    ensure_readable,
)
from headwater.testing import ManualClock, MemoryBackend
from tests.serving.conftest import NOW, World, train


def events(log: Log, topic: str = "predictions") -> list[dict[str, Any]]:
    return log.read_table(topic).to_pylist()  # type: ignore[no-any-return]


def row(request_id: str, features: dict[str, Any] | None = None,
        defaulted: tuple[str, ...] = ()) -> PredictionRow:
    return PredictionRow(request_id, "e", encode_features(features or {}), "m", 1, 0.5,
                         "champion", True, (), NOW, defaulted=defaulted)


def test_events_land_with_the_features_as_served(world: World) -> None:
    world.register(train(1), "champion")
    with PredictionLog(world.log, flush_ms=5) as plog:
        predictor = world.predictor(world.deployment(), plog)
        got = predictor.predict({"user": "nobody"}, {"price": 4.0, "device": "ios"},
                                request_id="r-1")
    [event] = events(world.log)
    assert event["request_id"] == "r-1"
    assert event["entity"] == "nobody"
    assert (event["model"], event["version"], event["score"]) == ("fraud", got.version,
                                                                  got.score)
    assert event["arm"] == "champion"
    assert event["served"]
    # never seen: the sum and the count are their default, 0, and flagged as filled; the
    # max has no default, so the model's neutral default fills it
    assert event["defaulted"] == "spend,txns"
    assert event["missing"] == "biggest"
    served = msgspec.json.decode(event["features"])
    assert (served["spend"], served["txns"]) == (0.0, 0.0)
    assert served["price"] == 4.0
    assert served["device"] == "ios"
    assert set(served) == {"spend", "txns", "biggest", "price", "device"}
    assert event["ts"].timestamp() * 1_000_000 == NOW


def test_shadows_are_scored_and_logged_never_returned(world: World) -> None:
    champion = world.register(train(1), "champion")
    challenger = world.register(train(2), "challenger")
    with PredictionLog(world.log, flush_ms=5) as plog:
        predictor = world.predictor(world.deployment(Shadow()), plog)
        got = predictor.predict({"user": "u1"}, {"price": 4.0, "device": "ios"})
    assert got.version == champion
    assert got.arm == "champion"
    logged = events(world.log)
    assert [(e["version"], e["arm"], e["served"]) for e in logged] == [
        (champion, "champion", True), (challenger, "challenger", False)]
    assert logged[1]["score"] == train(2).predict_one(msgspec.json.decode(logged[1]["features"]))


def test_a_split_routes_entities_stickily(world: World) -> None:
    world.register(train(1), "champion")
    world.register(train(2), "challenger")
    predictor = world.predictor(world.deployment(Split({"champion": 1, "challenger": 1})))
    arms = {f"k{i}": predictor.predict({"user": f"k{i}"}).arm for i in range(400)}
    assert 150 < sum(a == "challenger" for a in arms.values()) < 250
    assert all(predictor.predict({"user": k}).arm == a for k, a in list(arms.items())[:50])


def test_events_are_appended_in_batches() -> None:
    clock = ManualClock(NOW)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    appends: list[int] = []
    original = log.append

    def counting(topic: str, batch: Any, **kw: Any) -> Any:
        appends.append(batch.num_rows)
        return original(topic, batch, **kw)

    log.append = counting  # type: ignore[method-assign,assignment]
    plog = PredictionLog(log, batch_events=100, flush_ms=10_000)
    for i in range(250):
        plog.record(row(f"r{i}", {"x": float(i)}))
    plog.close()
    assert sum(appends) == 250
    assert max(appends) <= 100
    assert len(appends) <= 4
    assert plog.logged == 250
    assert plog.dropped == 0
    assert len(events(log)) == 250


def test_a_full_queue_drops_and_counts_never_blocks() -> None:
    clock = ManualClock(NOW)
    log = Log(MemoryBackend(clock=clock), clock=clock)
    plog = PredictionLog(log, capacity=10, batch_events=1_000, flush_ms=10_000)
    with plog._flush_lock:  # hold the flusher out while the queue overflows
        for i in range(25):
            plog.record(row(f"r{i}"))
    assert plog.dropped == 15
    plog.close()
    assert plog.logged == 10
    assert len(events(log)) == 10


def test_a_failed_append_is_counted(world: World) -> None:
    plog = PredictionLog(world.log, flush_ms=10_000)

    def failing(*args: Any, **kw: Any) -> Any:
        raise OSError("disk full")

    world.log.append = failing  # type: ignore[method-assign]
    plog.record(row("r"))
    plog.close()
    assert plog.failed == 1
    assert plog.logged == 0


def test_the_topic_is_created_once_and_checked() -> None:
    log = Log(MemoryBackend())
    ensure_topic(log)
    ensure_topic(log)
    assert log.topic("predictions").schema == PREDICTIONS_SCHEMA
    log.create_topic("other", Schema.of({"ts": "timestamp"}, event_time="ts"))
    with pytest.raises(TopicExistsError):
        ensure_topic(log, "other")


def test_a_topic_of_an_earlier_version_is_read_but_not_written() -> None:
    log = Log(MemoryBackend())
    fields = {f.name: f.type for f in PREDICTIONS_SCHEMA.fields
              if f.name not in ("defaulted", "update", "entities")}
    log.create_topic("predictions", Schema.of(fields, key="entity", event_time="ts"))
    with pytest.raises(TopicExistsError, match=r"earlier version of Headwater.*"
                       r"--predictions-topic NAME"):
        PredictionLog(log)
    ensure_readable(log)  # a reader (the label joiner, a canary watch) still reads it
    plog = PredictionLog(log, "predictions.v2", flush_ms=10_000)
    plog.record(row("r", {"n": 0.0}, defaulted=("n",)))
    plog.close()
    assert events(log, "predictions.v2")[0]["defaulted"] == "n"


def test_the_features_are_those_at_record_time() -> None:
    log = Log(MemoryBackend())
    plog = PredictionLog(log, flush_ms=10_000)
    values: dict[str, Any] = {"x": 1.0, "city": "oslo"}
    plog.record(row("r", values))
    values["x"] = 2.0  # a caller reusing its dict changes nothing logged
    plog.close()
    [event] = events(log)
    assert msgspec.json.decode(event["features"]) == {"x": 1.0, "city": "oslo"}


def test_a_topic_without_the_update_field_is_read_but_not_written() -> None:
    """A predictions topic from before model updates: readable, and a server names why it
    does not log to it (its events could not say which update served them)."""
    log = Log(MemoryBackend())
    fields = {f.name: f.type for f in PREDICTIONS_SCHEMA.fields
              if f.name not in ("update", "entities")}
    log.create_topic("predictions", Schema.of(fields, key="entity", event_time="ts"))
    with pytest.raises(TopicExistsError, match=r"no 'update' field, which says which model "
                                               r"update served each prediction"):
        PredictionLog(log)
    ensure_readable(log)
    plog = PredictionLog(log, "predictions.v3", flush_ms=10_000)
    plog.record(PredictionRow("r", "e", encode_features({"n": 0.0}), "m", 1, 0.5, "champion",
                              True, (), NOW, update=7))
    plog.record(row("s", {"n": 0.0}))
    plog.close()
    assert [e["update"] for e in events(log, "predictions.v3")] == [7, None]


def test_a_topic_without_the_entities_field_is_read_but_not_written() -> None:
    """A predictions topic from before entity maps: a server names why it does not log
    to it; a new one records every entity key of a request."""
    log = Log(MemoryBackend())
    fields = {f.name: f.type for f in PREDICTIONS_SCHEMA.fields if f.name != "entities"}
    log.create_topic("predictions", Schema.of(fields, key="entity", event_time="ts",
                                              nullable=("update",)))
    with pytest.raises(TopicExistsError, match=r"no 'entities' field, which names every "
                                               r"entity key of the request"):
        PredictionLog(log)
    plog = PredictionLog(log, "predictions.v4", flush_ms=10_000)
    plog.record(PredictionRow("r", "ada", encode_features({"n": 0.0}), "m", 1, 0.5,
                              "champion", True, (), NOW,
                              entities=encode_entities({"user": "ada", "merchant": "grocery"})))
    plog.record(PredictionRow("s", "bob", encode_features({"n": 0.0}), "m", 1, 0.5,
                              "champion", True, (), NOW))
    plog.close()
    assert [e["entities"] for e in events(log, "predictions.v4")] == [
        '{"user":"ada","merchant":"grocery"}', None]
