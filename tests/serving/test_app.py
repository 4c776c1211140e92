"""The HTTP app, called through ASGI with plain asyncio (no client framework)."""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest

from headwater.registry import AliasMove
from headwater.serving import PredictionLog, Split
from headwater.serving.app import ServingApp
from headwater.serving.server import BackgroundServer
from tests.registry.artifacts import malicious_artifact, tamper
from tests.serving.conftest import World, train

Response = tuple[int, dict[str, str], bytes]


async def _call(app: ServingApp, method: str, path: str, body: bytes,
                headers: dict[str, str]) -> Response:
    chunks = [body[i: i + 7] for i in range(0, len(body), 7)] or [b""]  # several messages
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    await app(scope, receive, send)
    start, payload = sent
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
            payload["body"])


def call(app: ServingApp, method: str, path: str, body: Any = None, *,
         raw: bytes | None = None, headers: dict[str, str] | None = None) -> Response:
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    return asyncio.run(_call(app, method, path, data, headers or {}))


def error_of(response: Response) -> tuple[int, str, str]:
    status, _, body = response
    error = json.loads(body)["error"]
    return status, error["field"], error["reason"]


def test_predict_one(app: ServingApp, world: World) -> None:
    status, headers, body = call(app, "POST", "/predict", {
        "entities": {"user": "u1"}, "request": {"price": 2.5, "device": "ios"},
        "request_id": "abc"})
    assert status == 200
    assert headers["content-type"] == "application/json"
    got = json.loads(body)
    direct = app.predictor.predict({"user": "u1"}, {"price": 2.5, "device": "ios"})
    assert got["request_id"] == "abc"
    assert got["score"] == direct.score
    assert got["arm"] == "champion"
    assert got["version"] == 1
    assert got["missing"] == []


def test_predict_batch(app: ServingApp) -> None:
    requests = [{"entities": {"user": f"u{i}"}, "request": {"price": float(i)}}
                for i in range(5)]
    status, _, body = call(app, "POST", "/predict", {"requests": requests})
    assert status == 200
    predictions = json.loads(body)["predictions"]
    assert len(predictions) == 5
    assert all(p["missing"] == ["device"] for p in predictions)
    assert error_of(call(app, "POST", "/predict", {"requests": [{"entities": {"user": 1.5}}]}))[
        :2] == (422, "requests[0].entities.user")


@pytest.mark.parametrize(("body", "field"), [
    ({"entities": {"user": 3.5}}, "entities.user"),
    ({"entities": "u1"}, "entities"),
    ({"request": {"price": 1.0}}, "entities"),
    ({"entities": {"user": "u1"}, "extra": 1}, "extra"),
    ({"entities": {"user": "u1"}, "request": {"price": [1]}}, "request.price"),
    ({"entities": {"account": "u1"}}, "entities.user"),
    ({"entities": {"user": "u1"}, "request": {"price": "dear"}}, "request.price"),
    ({"entities": {"user": "u1"}, "requests": []}, "requests"),
])
def test_bad_requests_name_the_field(app: ServingApp, body: Any, field: str) -> None:
    status, got, reason = error_of(call(app, "POST", "/predict", body))
    assert (status, got) == (422, field), reason


def test_bad_json_wrong_method_unknown_path_and_large_bodies(app: ServingApp) -> None:
    assert error_of(call(app, "POST", "/predict", raw=b"{nope"))[:2] == (400, "body")
    assert error_of(call(app, "GET", "/predict"))[0] == 405
    assert error_of(call(app, "GET", "/nowhere"))[0] == 404
    app.max_body_bytes = 10
    assert error_of(call(app, "POST", "/predict", {"entities": {"user": "u1"}}))[0] == 413


def test_health_ready_models_openapi(app: ServingApp, world: World) -> None:
    assert call(app, "GET", "/health")[0] == 200
    assert json.loads(call(app, "GET", "/ready")[2]) == {"ready": True}
    models = json.loads(call(app, "GET", "/models")[2])
    assert models["model"] == "fraud"
    assert models["arms"] == {"champion": 1}
    assert models["aliases"] == {"champion": 1}
    assert models["policy"]["kind"] == "champion"
    spec = json.loads(call(app, "GET", "/openapi.json")[2])
    assert spec["openapi"].startswith("3.")
    assert {"/predict", "/outcomes", "/health", "/ready", "/metrics", "/models",
            "/openapi.json", "/admin/promote", "/admin/rollback", "/admin/policy",
            "/decide"} == set(spec["paths"])
    assert "PredictRequest" in spec["components"]["schemas"]
    empty = world.deployment(Split({"champion": 1, "nobody": 1}))
    empty.snapshot = type(empty.snapshot)(empty.snapshot.policy, {})
    unready = ServingApp(world.predictor(empty), empty)
    assert call(unready, "GET", "/ready")[0] == 503
    assert error_of(call(unready, "POST", "/predict", {"entities": {"user": "u1"}}))[0] == 503


def test_metrics_text(world: World) -> None:
    world.register(train(1), "champion")
    deployment = world.deployment()
    with PredictionLog(world.log, flush_ms=5) as plog:
        app = ServingApp(world.predictor(deployment, plog), deployment)
        for _ in range(3):
            call(app, "POST", "/predict", {"entities": {"user": "u1"}})
        call(app, "POST", "/predict", {"entities": {}})
        status, headers, body = call(app, "GET", "/metrics")
    text = body.decode()
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    assert 'headwater_http_requests_total{endpoint="/predict",status="200"} 3.0' in text
    assert 'headwater_http_requests_total{endpoint="/predict",status="422"} 1.0' in text
    assert "headwater_http_request_seconds_bucket" in text
    assert "headwater_predictions_total 3.0" in text
    assert "headwater_prediction_log_dropped_total 0.0" in text
    assert "headwater_model_swaps_total 1.0" in text


def test_admin_needs_the_token_and_moves_the_alias(app: ServingApp, world: World) -> None:
    v2 = world.register(train(2))
    body = {"version": v2, "reason": "better"}
    assert error_of(call(app, "POST", "/admin/promote", body))[:2] == (401, "authorization")
    wrong = {"authorization": "Bearer nope"}
    assert error_of(call(app, "POST", "/admin/promote", body, headers=wrong))[0] == 401
    good = {"authorization": "Bearer s3cret"}
    status, _, out = call(app, "POST", "/admin/promote", body, headers=good)
    assert status == 200
    assert json.loads(out)["models"]["arms"] == {"champion": v2}
    assert app.predictor.predict({"user": "u1"}).version == v2
    assert error_of(call(app, "POST", "/admin/promote", {"version": 99, "reason": "x"},
                         headers=good))[0] == 404
    assert error_of(call(app, "POST", "/admin/promote", {"version": 1}, headers=good))[:2] == (
        422, "reason")
    status, _, out = call(app, "POST", "/admin/rollback", {"reason": "oops"}, headers=good)
    assert status == 200
    assert json.loads(out)["move"]["to_version"] == 1
    assert app.predictor.predict({"user": "u1"}).version == 1
    app.admin_token = None
    assert error_of(call(app, "POST", "/admin/rollback", {"reason": "x"}, headers=good))[0] == 403


def test_the_policy_changes_live_through_the_admin_api(app: ServingApp, world: World) -> None:
    world.register(train(2), "challenger")
    good = {"authorization": "Bearer s3cret"}
    body = {"policy": {"kind": "thompson", "arms": ["champion", "challenger"], "seed": 1},
            "reason": "let the traffic decide"}
    assert error_of(call(app, "PUT", "/admin/policy", body))[0] == 401
    bad = {"policy": {"kind": "thompson", "arms": ["champion"]}, "reason": "x"}
    assert error_of(call(app, "PUT", "/admin/policy", bad, headers=good))[:2] == (
        422, "policy.arms")
    unknown = {"policy": {"kind": "coin"}, "reason": "x"}
    assert error_of(call(app, "PUT", "/admin/policy", unknown, headers=good))[:2] == (
        422, "policy.kind")
    status, _, out = call(app, "PUT", "/admin/policy", body, headers=good)
    assert status == 200
    assert json.loads(out)["models"]["arms"] == {"champion": 1, "challenger": 2}
    arms = {app.predictor.predict({"user": f"u{i}"}).arm for i in range(200)}
    assert arms == {"champion", "challenger"}
    assert app.policy_changes[-1][:2] == ("headwater-serve", "let the traffic decide")
    assert call(app, "GET", "/admin/policy")[0] == 405


def test_real_uvicorn_on_an_ephemeral_port(app: ServingApp) -> None:
    with BackgroundServer(app, "127.0.0.1", 0) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        for i in range(3):  # one keep-alive connection
            connection.request("POST", "/predict", body=json.dumps(
                {"entities": {"user": f"u{i}"}, "request": {"price": 1.0}}),
                headers={"content-type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["version"] == 1
        connection.request("GET", "/ready")
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read()) == {"ready": True}
        connection.close()


def test_admin_promote_refuses_a_version_that_would_not_load(app: ServingApp,
                                                             world: World) -> None:
    v2 = world.register(train(2))
    tamper(world.registry, "fraud", v2, "state.npz")
    good = {"authorization": "Bearer s3cret"}
    status, field, reason = error_of(call(app, "POST", "/admin/promote",
                                          {"version": v2, "reason": "better"}, headers=good))
    assert (status, field) == (409, "alias")
    assert reason.startswith(f"alias 'champion' of model 'fraud' was not moved: version {v2} "
                             "of fraud cannot load")
    assert "does not match its recorded SHA-256" in reason
    assert world.registry.aliases("fraud") == {"champion": 1}
    assert app.predictor.predict({"user": "u1"}).version == 1


def test_ready_and_the_503_say_why_no_version_serves(world: World, tmp_path: Path) -> None:
    marker = tmp_path / "the-pickle-ran"
    version = world.registry.register("fraud", malicious_artifact(tmp_path / "evil", marker))
    world.registry.backend.move_alias(AliasMove(
        model="fraud", alias="champion", from_version=None, to_version=version.version,
        kind="promote", actor="mallory", reason="r", at=world.clock.now_us()))
    told: list[str] = []
    deployment = world.deployment(on_problem=told.append)
    app = ServingApp(world.predictor(deployment), deployment)
    status, _, out = call(app, "GET", "/ready")
    body = json.loads(out)
    assert status == 503
    why = body["reason"]
    assert why.startswith("version 1 of fraud cannot load: format 'river-pickle' is loaded "
                          "with pickle, which can run code, and this registry does not trust "
                          "pickle-based artifacts; run `headwater models trust --pickle")
    assert body["problems"] == {"champion": why}
    assert told == [why]
    status, field, reason = error_of(call(app, "POST", "/predict", {"entities": {"user": "u1"}}))
    assert (status, field) == (503, "model")
    assert reason.endswith(f": {why}")
    assert not marker.exists()


def test_a_method_not_taken_is_405_with_allow(app: ServingApp) -> None:
    status, headers, _ = call(app, "GET", "/predict")
    assert (status, headers["allow"]) == (405, "POST")
    status, headers, _ = call(app, "DELETE", "/health")
    assert (status, headers["allow"]) == (405, "GET, HEAD")
    assert call(app, "POST", "/admin/policy")[1]["allow"] == "PUT"
    assert call(app, "GET", "/admin/nothing")[0] == 404


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"entities": {"user": "u1"}, "request_id": "r" * 900_000}, "request_id",
     "Expected `str` of length <= 128"),
    ({"entities": {"user": "u" * 900_000}}, "entities.user", "Expected `str` of length <= 256"),
    ({"entities": {"user": "u1"}, "request": {"device": "x" * 2000}}, "request.device",
     "Expected `str` of length <= 1024"),
    ({"entities": {"user": "u1", "k" * 500: "v"}}, "entities",
     "Expected `str` of length <= 128"),
    ({"requests": [{"entities": {"user": "u1"}},
                   {"entities": {"user": "u1"}, "request_id": "r" * 129}]},
     "requests[1].request_id", "Expected `str` of length <= 128"),
    ({"entities": {"user": ""}}, "entities.user", "Expected `str` of length >= 1"),
])
def test_keys_ids_and_strings_are_capped(app: ServingApp, body: Any, field: str,
                                         reason: str) -> None:
    status, got, why = error_of(call(app, "POST", "/predict", body))
    assert (status, got) == (422, field)
    assert reason in why
    assert len(why) < 300  # the value is not echoed


def test_client_errors_are_422_naming_the_value_never_a_model_error(app: ServingApp) -> None:
    raw = b'{"entities": {"user": "u1"}, "request": {"price": ' + b"9" * 401 + b"}}"
    status, field, reason = error_of(call(app, "POST", "/predict", raw=raw))
    assert (status, field) == (422, "request.price")
    assert "out of range" in reason
    raw = b'{"entities": {"user": "u1"}, "request": {"price": 1e999}}'
    assert error_of(call(app, "POST", "/predict", raw=raw))[:2] == (422, "request.price")
    # the model's declared kinds: price is numeric, device categorical
    for request, field, why in [({"price": True}, "request.price", "got a boolean"),
                                ({"price": "3"}, "request.price", "got a string"),
                                ({"device": 7}, "request.device", "got a number"),
                                ({"device": False}, "request.device", "got a boolean")]:
        status, got, reason = error_of(call(app, "POST", "/predict", {
            "entities": {"user": "u1"}, "request": request}))
        assert (status, got) == (422, field), reason
        assert why in reason
    batch = {"requests": [{"entities": {"user": "u1"}, "request": {"price": 1.0}},
                          {"entities": {"user": "u2"}, "request": {"price": True}}]}
    assert error_of(call(app, "POST", "/predict", batch))[:2] == (
        422, "requests[1].request.price")
    assert app.predictor.model_errors == 0
    assert call(app, "POST", "/predict", {"entities": {"user": "u1"},
                                          "request": {"price": 3, "device": "ios"}})[0] == 200


def test_a_body_with_a_duplicate_key_is_refused(app: ServingApp) -> None:
    for raw in (b'{"entities": {"user": "u1", "user": "u2"}}',
                b'{"entities": {"user": "u1"}, "entities": {"user": "u2"}}',
                b'{"entities": {"user": "u1", "\\u0075ser": "u2"}}',
                b'{"requests": [{"entities": {"user": "u1"}, "request": {"price": 1, '
                b'"price": 2}}]}'):
        status, field, reason = error_of(call(app, "POST", "/predict", raw=raw))
        assert (status, field) == (400, "body"), raw
        assert "duplicate key" in reason
    batch = {"requests": [{"entities": {"user": f"u{i}"}, "request": {"price": 1.0}}
                          for i in range(3)]}  # keys repeat across objects: fine
    assert call(app, "POST", "/predict", batch)[0] == 200


def test_a_batch_over_the_cap_is_refused_naming_the_limit(app: ServingApp) -> None:
    app.max_batch = 3
    batch = {"requests": [{"entities": {"user": "u1"}}] * 4}
    status, field, reason = error_of(call(app, "POST", "/predict", batch))
    assert (status, field) == (422, "requests")
    assert "at most 3" in reason
    assert call(app, "POST", "/predict", {"requests": batch["requests"][:3]})[0] == 200


def test_a_repeated_request_id_is_a_retry_answered_once(world: World) -> None:
    world.register(train(1), "champion")
    deployment = world.deployment()
    with PredictionLog(world.log, flush_ms=5) as plog:
        app = ServingApp(world.predictor(deployment, plog), deployment)
        body = {"entities": {"user": "u1"}, "request": {"price": 2.0}, "request_id": "r1"}
        first = json.loads(call(app, "POST", "/predict", body)[2])
        world.clock.advance(1_000_000)  # later: the features may have moved
        again = json.loads(call(app, "POST", "/predict", body)[2])
        assert again == first
        other = {**body, "request": {"price": 3.0}}
        status, field, reason = error_of(call(app, "POST", "/predict", other))
        assert (status, field) == (409, "request_id")
        assert "another request" in reason
        batch = {"requests": [body, {"entities": {"user": "u2"}, "request_id": "r2"},
                              {"entities": {"user": "u2"}, "request_id": "r2"}]}
        answers = json.loads(call(app, "POST", "/predict", batch)[2])["predictions"]
        assert answers[0] == first
        assert answers[1] == answers[2]
        clash = {"requests": [{"entities": {"user": "u2"}, "request_id": "r3"},
                              {"entities": {"user": "u3"}, "request_id": "r3"}]}
        assert error_of(call(app, "POST", "/predict", clash))[:2] == (
            409, "requests[1].request_id")
        assert app.predictor.repeats == 3
    logged = [rid for f in world.log.replay("predictions")
              for rid in f.batch.column("request_id").to_pylist()]
    assert sorted(logged) == ["r1", "r2"]  # each answered, and logged, once


def test_the_openapi_document_marks_required_fields_and_400s(app: ServingApp) -> None:
    spec = json.loads(call(app, "GET", "/openapi.json")[2])
    schemas = spec["components"]["schemas"]
    assert schemas["PredictRequest"]["required"] == ["entities"]
    assert schemas["PredictBatch"]["required"] == ["requests"]
    assert schemas["OutcomeRequest"]["required"] == ["entity"]
    assert schemas["PredictRequest"]["properties"]["request_id"]["anyOf"][0]["maxLength"] == 128
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert {s["$ref"].rsplit("/", 1)[1] for s in body["schema"]["oneOf"]} == {
        "PredictRequest", "PredictBatch"}
    for path, method in [("/predict", "post"), ("/outcomes", "post"), ("/decide", "post"),
                         ("/admin/promote", "post"), ("/admin/policy", "put")]:
        responses = spec["paths"][path][method]["responses"]
        assert {"400", "422"} <= set(responses), path
    assert "409" in spec["paths"]["/predict"]["post"]["responses"]
    assert "405" in spec["paths"]["/health"]["get"]["responses"]


def test_an_unknown_request_value_is_refused_and_an_unknown_entity_served(
        app: ServingApp) -> None:
    status, field, reason = error_of(call(app, "POST", "/predict", {
        "entities": {"user": "u1"}, "request": {"prize": 2.5, "device": "ios"}}))
    assert (status, field) == (422, "request.prize")
    assert "unknown request value" in reason
    assert "price" in reason
    status, field, _ = error_of(call(app, "POST", "/predict", {"requests": [
        {"entities": {"user": "u1"}, "request": {"price": 2.5}},
        {"entities": {"user": "u2"}, "request": {"price": 2.5, "colour": "red"}}]}))
    assert (status, field) == (422, "requests[1].request.colour")
    # a user never seen is a cold start, not an error: served, and said to be unknown
    status, _, body = call(app, "POST", "/predict", {
        "entities": {"user": "never-seen"}, "request": {"price": 2.5, "device": "ios"}})
    assert status == 200
    assert json.loads(body)["unknown_entity"] is True
