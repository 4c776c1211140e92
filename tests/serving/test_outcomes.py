"""``POST /outcomes``: validated like ``/predict``, acknowledged after the append, once
per outcome — and what the label joiner makes of them."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from headwater.errors import ConflictError, ValidationError
from headwater.labels import OUTCOMES_TOPIC
from headwater.labels.join import JoinRule
from headwater.labels.joiner import LabelJoiner
from headwater.log import Log
from headwater.serving import PredictionLog
from headwater.serving.app import ServingApp
from headwater.serving.messages import OutcomeRequest
from headwater.serving.outcomes import OutcomeSink
from headwater.serving.server import BackgroundServer
from tests.serving.conftest import NOW, World, train
from tests.serving.test_app import call, error_of


def outcomes_in(log: Log) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for fetched in log.replay(OUTCOMES_TOPIC):
        table = pa.Table.from_batches([fetched.batch])
        table = table.set_column(table.schema.get_field_index("ts"), "ts",
                                 table.column("ts").cast(pa.int64()))
        rows.extend({k: row[k] for k in ("request_id", "entity", "label", "ts")}
                    for row in table.to_pylist())
    return rows


@pytest.fixture
def served(world: World) -> ServingApp:
    world.register(train(1), "champion")
    deployment = world.deployment()
    return ServingApp(world.predictor(deployment), deployment,
                      outcomes=OutcomeSink(world.log, clock=world.clock))


def test_one_outcome_and_a_batch_are_appended_before_the_answer(served: ServingApp,
                                                                 world: World) -> None:
    status, _, body = call(served, "POST", "/outcomes",
                           {"request_id": "r1", "entity": "u1", "label": 1.0})
    assert (status, json.loads(body)) == (200, {"appended": 1, "duplicates": 0})
    assert outcomes_in(world.log) == [
        {"request_id": "r1", "entity": "u1", "label": 1.0, "ts": NOW}]  # in the log already
    batch = {"outcomes": [
        {"request_id": "r2", "entity": "u2"},  # a click: no label, the window rule decides
        {"entity": "u3", "label": 0.0, "ts": "2023-11-14T22:13:20+00:00"}]}
    status, _, body = call(served, "POST", "/outcomes", batch)
    assert (status, json.loads(body)) == (200, {"appended": 2, "duplicates": 0})
    assert outcomes_in(world.log)[1:] == [
        {"request_id": "r2", "entity": "u2", "label": None, "ts": NOW},
        {"request_id": None, "entity": "u3", "label": 0.0, "ts": 1_700_000_000_000_000}]


def test_an_integer_entity_is_its_decimal_text(served: ServingApp, world: World) -> None:
    status, _, _ = call(served, "POST", "/outcomes",
                        {"request_id": "r42", "entity": 42, "label": 1.0})
    assert status == 200
    assert outcomes_in(world.log) == [
        {"request_id": "r42", "entity": "42", "label": 1.0, "ts": NOW}]


def test_a_retried_post_appends_nothing_twice(served: ServingApp, world: World) -> None:
    batch = {"outcomes": [{"request_id": "r1", "entity": "u1", "label": 1.0},
                          {"entity": "u2", "ts": "2023-11-14T22:13:20Z"}]}
    assert json.loads(call(served, "POST", "/outcomes", batch)[2]) == {
        "appended": 2, "duplicates": 0}
    world.clock.advance(5_000_000)  # a retry comes later: its defaulted ts differs
    assert json.loads(call(served, "POST", "/outcomes", batch)[2]) == {
        "appended": 0, "duplicates": 2}
    grown = {"outcomes": [*batch["outcomes"], {"request_id": "r3", "entity": "u3"},
                          {"request_id": "r3", "entity": "u3"}]}
    assert json.loads(call(served, "POST", "/outcomes", grown)[2]) == {
        "appended": 1, "duplicates": 3}
    assert [r["request_id"] for r in outcomes_in(world.log)] == ["r1", None, "r3"]
    # a server restarted on the same log remembers what is there
    again = OutcomeSink(world.log, clock=world.clock)
    assert again.append([OutcomeRequest("u1", request_id="r1", label=1.0)]).duplicates == 1
    assert len(outcomes_in(world.log)) == 3


def test_an_outcome_contradicting_the_first_is_a_conflict(served: ServingApp,
                                                          world: World) -> None:
    call(served, "POST", "/outcomes", {"request_id": "r1", "entity": "u1", "label": 1.0})
    status, field, reason = error_of(call(served, "POST", "/outcomes", {
        "outcomes": [{"request_id": "r9", "entity": "u9"},
                     {"request_id": "r1", "entity": "u1", "label": 0.0}]}))
    assert (status, field) == (409, "outcomes[1].request_id")
    assert "already has an outcome" in reason
    assert [r["request_id"] for r in outcomes_in(world.log)] == ["r1"]  # none of the batch


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"request_id": "r1"}, 422, "entity"),
    ({"entity": "u1"}, 422, "ts"),  # no request id and no time: a retry could not be known
    ({"entity": "u1", "ts": "yesterday"}, 422, "ts"),
    ({"entity": "u1", "ts": "2024-01-01T00:00:00"}, 422, "ts"),  # naive
    ({"entity": "u1", "request_id": "r", "label": True}, 422, "label"),
    ({"entity": "u1", "request_id": "r", "label": "yes"}, 422, "label"),
    ({"entity": "u1", "request_id": "r", "extra": 1}, 422, "extra"),
    ({"entity": "u" * 300, "request_id": "r"}, 422, "entity"),
    ({"outcomes": [{"entity": "u1", "request_id": "r"}, {"entity": 5.5}]}, 422,
     "outcomes[1].entity"),
    ({"outcomes": [{"entity": "u1", "ts": "2024-01-01"}]}, 422, "outcomes[0].ts"),
    ({"outcomes": [], "entity": "u1"}, 422, "outcomes"),
])
def test_bad_outcomes_name_the_field_and_append_nothing(
        served: ServingApp, world: World, body: Any, status: int, field: str) -> None:
    got = error_of(call(served, "POST", "/outcomes", body))
    assert got[:2] == (status, field), got
    assert outcomes_in(world.log) == []


def test_bodies_that_are_not_outcomes(served: ServingApp) -> None:
    assert error_of(call(served, "POST", "/outcomes", raw=b"{nope"))[:2] == (400, "body")
    assert error_of(call(served, "POST", "/outcomes",
                         raw=b'{"entity": "u1", "entity": "u2", "request_id": "r"}'))[:2] == (
        400, "body")
    served.max_batch = 2
    batch = {"outcomes": [{"entity": "u1", "request_id": f"r{i}"} for i in range(3)]}
    status, field, reason = error_of(call(served, "POST", "/outcomes", batch))
    assert (status, field) == (422, "outcomes")
    assert "at most 2" in reason
    headers = call(served, "GET", "/outcomes")[1]
    assert headers["allow"] == "POST"
    served.outcomes = None
    assert error_of(call(served, "POST", "/outcomes", {"entity": "u1", "request_id": "r"}))[
        0] == 404


def test_the_sink_names_fields_of_a_single_outcome() -> None:
    from headwater.testing import ManualClock, MemoryBackend

    clock = ManualClock(NOW)
    sink = OutcomeSink(Log(MemoryBackend(clock=clock), clock=clock), clock=clock)
    with pytest.raises(ValidationError, match=r"^ts: required without a request_id"):
        sink.append([OutcomeRequest("u1")], field="")
    sink.append([OutcomeRequest("u1", request_id="r", label=1.0)], field="")
    with pytest.raises(ConflictError, match=r"^request_id: "):
        sink.append([OutcomeRequest("u2", request_id="r", label=1.0)], field="")
    assert (sink.appended, sink.duplicates) == (1, 0)


def test_outcomes_over_http_become_the_labels_of_the_served_predictions(
        world: World, tmp_path: Path) -> None:
    """The loop a user runs: /predict, then /outcomes with the request ids, then the
    joiner; each example's label is the outcome sent for its request, once."""
    world.register(train(1), "champion")
    deployment = world.deployment()
    with PredictionLog(world.log, flush_ms=5) as plog:
        app = ServingApp(world.predictor(deployment, plog), deployment,
                         outcomes=OutcomeSink(world.log, clock=world.clock))
        with BackgroundServer(app, "127.0.0.1", 0) as server:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)

            def post(path: str, body: object) -> Any:
                connection.request("POST", path, body=json.dumps(body))
                response = connection.getresponse()
                answer = json.loads(response.read())
                assert response.status == 200, answer
                return answer

            ids = [post("/predict", {"entities": {"user": f"u{i}"}, "request_id": f"q{i}"})[
                "request_id"] for i in range(4)]
            assert post("/predict", {"entities": {"user": "u0"}, "request_id": "q0"})[
                "request_id"] == "q0"  # a retry: the same answer, not logged again
            labels = {"q0": 1.0, "q1": 0.0, "q2": 1.0}
            batch = [{"request_id": rid, "entity": f"u{rid[1]}", "label": label}
                     for rid, label in labels.items()]
            assert post("/outcomes", {"outcomes": batch}) == {"appended": 3, "duplicates": 0}
            assert post("/outcomes", {"outcomes": batch}) == {"appended": 0, "duplicates": 3}
            connection.close()
    assert ids == ["q0", "q1", "q2", "q3"]
    world.clock.advance(1_000_000)
    joiner = LabelJoiner(world.log, JoinRule(window=600_000_000, timeout_label=None),
                         state_dir=tmp_path / "joiner", clock=world.clock, fsync="never")
    joiner.step()
    examples = [row for f in world.log.replay("training_examples")
                for row in pa.Table.from_batches([f.batch]).to_pylist()]
    assert {e["request_id"]: e["label"] for e in examples} == labels
    assert all(e["source"] == "explicit" for e in examples)
    assert joiner.repeated == 0


def test_two_servers_may_append_a_retry_twice_and_the_joiner_labels_once(
        world: World, tmp_path: Path) -> None:
    """Two servers do not share what they remember: the label joiner is what makes a
    retry that reached the other one harmless."""
    world.register(train(1), "champion")
    deployment = world.deployment()
    with PredictionLog(world.log, flush_ms=5) as plog:
        world.predictor(deployment, plog).predict({"user": "u1"}, request_id="r1")
    one, two = (OutcomeSink(world.log, clock=world.clock) for _ in range(2))
    outcome = OutcomeRequest("u1", request_id="r1", label=1.0)
    assert one.append([outcome]).appended == 1
    assert two.append([outcome]).appended == 1  # it had read back nothing of it
    assert len(outcomes_in(world.log)) == 2
    joiner = LabelJoiner(world.log, JoinRule(window=600_000_000, timeout_label=None),
                         state_dir=tmp_path / "joiner", clock=world.clock, fsync="never")
    step = joiner.step()
    assert (step.examples, step.late) == (1, 1)
    late = [row for f in world.log.replay("outcomes.late")
            for row in pa.Table.from_batches([f.batch]).to_pylist()]
    assert [(r["request_id"], r["reason"]) for r in late] == [("r1", "already_labelled")]


@pytest.mark.parametrize(("body", "field"), [
    ({"request_id": "r1", "entity": "u1", "label": 2.5}, "label"),
    ({"outcomes": [{"request_id": "r1", "entity": "u1", "label": 1.0},
                   {"request_id": "r2", "entity": "u2", "label": -1.0}]}, "outcomes[1].label"),
])
def test_a_label_outside_a_classifiers_label_space_is_refused(
        served: ServingApp, world: World, body: dict[str, Any], field: str) -> None:
    status, got_field, reason = error_of(call(served, "POST", "/outcomes", body))
    assert (status, got_field) == (422, field)
    assert "0 or 1" in reason
    assert "binary classifier" in reason
    assert outcomes_in(world.log) == []  # none of the batch
    status, _, body_ = call(served, "POST", "/outcomes",
                            {"request_id": "r1", "entity": "u1", "label": 0.0})
    assert (status, json.loads(body_)) == (200, {"appended": 1, "duplicates": 0})


def test_an_outcome_for_another_entity_than_the_prediction_is_refused(
        served: ServingApp, world: World) -> None:
    predicted = call(served, "POST", "/predict", {
        "entities": {"user": "u1"}, "request": {"price": 2.5, "device": "ios"},
        "request_id": "p1"})
    assert predicted[0] == 200
    status, field, reason = error_of(call(served, "POST", "/outcomes",
                                          {"request_id": "p1", "entity": "u2", "label": 1.0}))
    assert (status, field) == (409, "request_id")
    assert "'p1'" in reason
    assert "'u1'" in reason
    assert outcomes_in(world.log) == []
    status, _, body = call(served, "POST", "/outcomes",
                           {"request_id": "p1", "entity": "u1", "label": 1.0})
    assert (status, json.loads(body)) == (200, {"appended": 1, "duplicates": 0})
    status, field, _ = error_of(call(served, "POST", "/outcomes", {"outcomes": [
        {"request_id": "p9", "entity": "u9"},
        {"request_id": "p1", "entity": "u3", "label": 1.0}]}))
    assert (status, field) == (409, "outcomes[1].request_id")
