"""The OpenAPI 3.1 description of the prediction service, served at ``/openapi.json``.

The paths are written here; the body schemas are generated from the msgspec structs
of :mod:`headwater.serving.messages`, so they cannot drift from what the app decodes:
required fields are listed as ``required`` and size caps as ``maxLength``. Every
operation documents its errors, 400 (not JSON, or a duplicate key) included; the
server itself may also answer 408 (a request not received whole in time) and 503 (over
its connection limit), in the same error shape.

>>> spec = openapi()
>>> spec["openapi"], sorted(spec["paths"])[:3]
('3.1.0', ['/admin/policy', '/admin/promote', '/admin/rollback'])
"""

from __future__ import annotations

from typing import Any

import msgspec

from headwater import __version__
from headwater.serving.messages import (
    AdminPolicy,
    AdminPromote,
    AdminRollback,
    BatchResponse,
    DecideBody,
    Decided,
    ErrorBody,
    OutcomeRequest,
    OutcomesAck,
    OutcomesBatch,
    PredictBatch,
    Prediction,
    PredictRequest,
)

__all__ = ["openapi"]

_REF = "#/components/schemas/{name}"


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(name=schema)}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json("ErrorBody")}


def _either(*names: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"oneOf": [
        {"$ref": _REF.format(name=name)} for name in names]}}}


_BAD_BODY = "The body is not JSON, or an object in it repeats a key."


def openapi(title: str = "Headwater prediction service", version: str = __version__
            ) -> dict[str, Any]:
    """The OpenAPI document, as JSON-able values."""
    _, components = msgspec.json.schema_components(
        (PredictRequest, PredictBatch, Prediction, BatchResponse, OutcomeRequest, OutcomesBatch,
         OutcomesAck, ErrorBody, AdminPromote, AdminRollback, AdminPolicy, DecideBody, Decided),
        ref_template=_REF)
    text = {"text/plain": {"schema": {"type": "string"}}}
    status = {"application/json": {"schema": {"type": "object"}}}
    not_allowed = {"405": _error("The endpoint does not take this method (see Allow).")}
    admin_errors = {"400": _error(_BAD_BODY),
                    "401": _error("No or a wrong bearer token."),
                    "403": _error("Admin endpoints are off: no admin token is configured."),
                    "404": _error("Unknown model, version or alias."),
                    "409": _error("The alias cannot be moved so."),
                    "422": _error("A field is invalid (named in the error)."), **not_allowed}

    def get(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {**responses, **not_allowed}}}

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Errors are {\"error\": {\"field\": ..., \"reason\": ...}}. "
                                "The server answers 408 to a request not received whole "
                                "within its read timeout, and 503 to a connection over its "
                                "limit, in the same shape."},
        "paths": {
            "/predict": {"post": {
                "summary": "Score one request, or a batch given as {\"requests\": [...]}. A "
                           "request id names one prediction: sent again with the same request "
                           "it gets the first answer (not scored or logged again); with "
                           "another request, 409.",
                "requestBody": {"required": True,
                                "content": _either("PredictRequest", "PredictBatch")},
                "responses": {
                    "200": {"description": "A Prediction, or a BatchResponse for a batch.",
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"$ref": _REF.format(name="Prediction")},
                                {"$ref": _REF.format(name="BatchResponse")}]}}}},
                    "400": _error(_BAD_BODY),
                    "409": _error("The request id was used for another request."),
                    "413": _error("The body is too large."),
                    "422": _error("A field is invalid, too long, or of a kind the model does "
                                  "not read (named in the error); or the batch is over the "
                                  "server's limit."),
                    "503": _error("No model version can answer."), **not_allowed,
                }}},
            "/outcomes": {"post": {
                "summary": "Append outcomes (one, or a batch given as {\"outcomes\": [...]}) "
                           "to the outcomes topic; answered once they are in the log. "
                           "Idempotent: an outcome is identified by its request_id (else by "
                           "entity, ts and label), and one already appended is counted under "
                           "duplicates, not appended again.",
                "requestBody": {"required": True,
                                "content": _either("OutcomeRequest", "OutcomesBatch")},
                "responses": {
                    "200": {"description": "What was appended.", "content": _json("OutcomesAck")},
                    "400": _error(_BAD_BODY),
                    "404": _error("This server takes no outcomes."),
                    "409": _error("The request already has another outcome."),
                    "413": _error("The body is too large."),
                    "422": _error("A field is invalid (named in the error), or the batch is "
                                  "over the server's limit."),
                    "503": _error("The log could not take the outcomes."), **not_allowed,
                }}},
            "/decide": {"post": {
                "summary": "A contextual bandit's action for a context, with its propensity "
                           "(logged on the decisions topic).",
                "requestBody": {"required": True, "content": _json("DecideBody")},
                "responses": {"200": {"description": "The decision.",
                                      "content": _json("Decided")},
                              "400": _error(_BAD_BODY),
                              "404": _error("No contextual policy is served here."),
                              "422": _error("A field is invalid (named in the error)."),
                              **not_allowed}}},
            "/health": get("The process is up.",
                           {"200": {"description": "Up.", "content": status}}),
            "/ready": get("Models and features are loaded.", {
                "200": {"description": "Ready.", "content": status},
                "503": {"description": "Not ready yet.", "content": status}}),
            "/metrics": get("Prometheus metrics (text format).",
                            {"200": {"description": "The metrics.", "content": text}}),
            "/models": get("Versions loaded, aliases and routing policy.",
                           {"200": {"description": "The deployment.", "content": status}}),
            "/openapi.json": get("This document.",
                                 {"200": {"description": "OpenAPI 3.1.", "content": status}}),
            "/admin/promote": {"post": {
                "summary": "Point an alias at a version (recorded), then reload.",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": _json("AdminPromote")},
                "responses": {"200": {"description": "The move and the deployment.",
                                      "content": status}, **admin_errors}}},
            "/admin/policy": {"put": {
                "summary": "Route with another policy from now on (champion, shadow, split, "
                           "canary, or a bandit: thompson, gaussian_thompson, ucb1).",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": _json("AdminPolicy")},
                "responses": {"200": {"description": "The deployment.", "content": status},
                              **admin_errors,
                              "422": _error("The policy is invalid (field named).")}}},
            "/admin/rollback": {"post": {
                "summary": "Undo the latest move of an alias (recorded), then reload.",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": _json("AdminRollback")},
                "responses": {"200": {"description": "The move and the deployment.",
                                      "content": status}, **admin_errors}}},
        },
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
