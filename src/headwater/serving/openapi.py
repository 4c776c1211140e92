"""The OpenAPI 3.1 description of the prediction service, served at ``/openapi.json``.

The paths are written here; the body schemas are generated from the msgspec structs
of :mod:`headwater.serving.messages`, so they cannot drift from what the app decodes.

>>> spec = openapi()
>>> spec["openapi"], sorted(spec["paths"])[:3]
('3.1.0', ['/admin/policy', '/admin/promote', '/admin/rollback'])
"""

from __future__ import annotations

from typing import Any

import msgspec

from headwater.serving.messages import (
    AdminPolicy,
    AdminPromote,
    AdminRollback,
    BatchResponse,
    DecideBody,
    Decided,
    ErrorBody,
    PredictBody,
    Prediction,
)

__all__ = ["openapi"]

_REF = "#/components/schemas/{name}"


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(name=schema)}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _json("ErrorBody")}


def openapi(title: str = "Headwater prediction service", version: str = "0.1.0"
            ) -> dict[str, Any]:
    """The OpenAPI document, as JSON-able values."""
    _, components = msgspec.json.schema_components(
        (PredictBody, Prediction, BatchResponse, ErrorBody, AdminPromote, AdminRollback,
         AdminPolicy, DecideBody, Decided),
        ref_template=_REF)
    text = {"text/plain": {"schema": {"type": "string"}}}
    status = {"application/json": {"schema": {"type": "object"}}}
    admin_errors = {"401": _error("No or a wrong bearer token."),
                    "403": _error("Admin endpoints are off: no admin token is configured."),
                    "404": _error("Unknown model, version or alias."),
                    "409": _error("The alias cannot be moved so."),
                    "422": _error("A field is invalid (named in the error).")}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": {
            "/predict": {"post": {
                "summary": "Score one request, or a batch given as {\"requests\": [...]}.",
                "requestBody": {"required": True, "content": _json("PredictBody")},
                "responses": {
                    "200": {"description": "A Prediction, or a BatchResponse for a batch.",
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"$ref": _REF.format(name="Prediction")},
                                {"$ref": _REF.format(name="BatchResponse")}]}}}},
                    "400": _error("The body is not JSON."),
                    "413": _error("The body is too large."),
                    "422": _error("A field is invalid (named in the error)."),
                    "503": _error("No model version can answer."),
                }}},
            "/decide": {"post": {
                "summary": "A contextual bandit's action for a context, with its propensity "
                           "(logged on the decisions topic).",
                "requestBody": {"required": True, "content": _json("DecideBody")},
                "responses": {"200": {"description": "The decision.",
                                      "content": _json("Decided")},
                              "404": _error("No contextual policy is served here."),
                              "422": _error("A field is invalid (named in the error).")}}},
            "/health": {"get": {"summary": "The process is up.",
                                "responses": {"200": {"description": "Up.", "content": status}}}},
            "/ready": {"get": {"summary": "Models and features are loaded.", "responses": {
                "200": {"description": "Ready.", "content": status},
                "503": {"description": "Not ready yet.", "content": status}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (text format).",
                                 "responses": {"200": {"description": "The metrics.",
                                                       "content": text}}}},
            "/models": {"get": {"summary": "Versions loaded, aliases and routing policy.",
                                "responses": {"200": {"description": "The deployment.",
                                                      "content": status}}}},
            "/openapi.json": {"get": {"summary": "This document.", "responses": {
                "200": {"description": "OpenAPI 3.1.", "content": status}}}},
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
                              "422": _error("The policy is invalid (field named)."),
                              **admin_errors}}},
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
