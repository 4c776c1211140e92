"""The HTTP interface: a lean ASGI app, no framework, msgspec for JSON.

Endpoints: ``POST /predict`` (one request, or ``{"requests": [...]}``), ``POST /decide``
(a contextual bandit's action for a context, when the app serves one), ``GET /health``,
``GET /ready`` (503 until a version of the policy's first arm is loaded), ``GET /metrics``
(Prometheus text), ``GET /models``, ``GET /openapi.json``, and ``POST /admin/promote``,
``POST /admin/rollback`` and ``PUT /admin/policy`` (route with another policy, live),
which need ``Authorization: Bearer <token>`` and are refused (403) when no token is
configured.

Errors are ``{"error": {"field": ..., "reason": ...}}``; this layer, and only this one,
maps them to status codes: a body that is not JSON is 400; a field of the wrong type,
missing or unknown is 422 naming its path (``entities.user``,
``requests[0].entities``); a body over ``max_body_bytes`` is 413; an unknown model,
version or alias 404; an alias move that cannot be made 409; no version able to answer
503.

Predictions run inline on the event loop: the path is tens of microseconds of CPU with
an in-process online store, less than handing it to a thread would cost. (A store
behind a network round trip would want a thread pool here.) Admin actions, which touch
the registry and load models, run in a thread.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final

import msgspec

from headwater.errors import (
    AliasError,
    HeadwaterError,
    ModelError,
    RegistryError,
    UnknownAliasError,
    UnknownModelError,
    UnknownVersionError,
    ValidationError,
)
from headwater.registry import ModelRegistry
from headwater.serving.deployment import Deployment
from headwater.serving.messages import (
    AdminPolicy,
    AdminPromote,
    AdminRollback,
    BatchResponse,
    DecideBody,
    Decided,
    ErrorBody,
    ErrorDetail,
    PredictBody,
)
from headwater.serving.metrics import CONTENT_TYPE, ServingMetrics
from headwater.serving.openapi import openapi
from headwater.serving.policy_spec import check_arms, policy_from_spec
from headwater.serving.predictor import Predictor

if TYPE_CHECKING:
    from headwater.serving.actions import ActionService

__all__ = ["Scope", "ServingApp", "field_of"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_Response = tuple[int, bytes, bytes]  # status, content type, body

_LOG: Final = logging.getLogger("headwater.serving")
_JSON: Final = b"application/json"
_ENCODE: Final = msgspec.json.Encoder().encode
_BODY: Final = msgspec.json.Decoder(PredictBody)
_PROMOTE: Final = msgspec.json.Decoder(AdminPromote)
_ROLLBACK: Final = msgspec.json.Decoder(AdminRollback)
_POLICY: Final = msgspec.json.Decoder(AdminPolicy)
_DECIDE: Final = msgspec.json.Decoder(DecideBody)
_AT: Final = re.compile(r" - at `\$(.*)`$")
_NAMED: Final = re.compile(r"field `([^`]*)`")


def field_of(exc: msgspec.ValidationError) -> ErrorDetail:
    """The field path and reason of a msgspec validation error.

    >>> try:
    ...     msgspec.json.decode(b'{"entities": 3}', type=PredictBody)
    ... except msgspec.ValidationError as exc:
    ...     field_of(exc)
    ErrorDetail(field='entities', reason='Expected `object | null`, got `int`')
    """
    text = str(exc)
    match = _AT.search(text)
    path = match.group(1).lstrip(".") if match else ""
    reason = text[: match.start()] if match else text
    named = _NAMED.search(reason)
    if named:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return ErrorDetail(path or "body", reason)


def _error(status: int, field: str, reason: str) -> _Response:
    return status, _JSON, _ENCODE(ErrorBody(ErrorDetail(field, reason)))


class ServingApp:
    """The ASGI application around a predictor and its deployment.

    ``registry`` enables the admin endpoints together with ``admin_token``.
    """

    def __init__(self, predictor: Predictor, deployment: Deployment, *,
                 registry: ModelRegistry | None = None, admin_token: str | None = None,
                 metrics: ServingMetrics | None = None, max_body_bytes: int = 1 << 20,
                 on_startup: Callable[[], None] | None = None,
                 on_shutdown: Callable[[], None] | None = None,
                 actions: ActionService | None = None) -> None:
        self.predictor = predictor
        self.actions = actions
        self.deployment = deployment
        self.registry = registry
        self.admin_token = admin_token or None
        #: Every live change of the routing policy: who, why, and the policy set.
        self.policy_changes: list[tuple[str, str, dict[str, Any]]] = []
        self.metrics = metrics or ServingMetrics(predictor, deployment)
        self.max_body_bytes = max_body_bytes
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        self._openapi = _ENCODE(openapi())
        self._get: dict[str, Callable[[], _Response]] = {
            "/health": self._health, "/ready": self._ready, "/metrics": self._metrics,
            "/models": self._models, "/openapi.json": lambda: (200, _JSON, self._openapi)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        started = time.perf_counter()  # a duration, not a timestamp: no Clock needed
        method, path = scope["method"], scope["path"]
        try:
            if path == "/predict" and method == "POST":
                response = self._predict(await self._body(receive))
            elif path == "/decide" and method == "POST":
                response = self._decide(await self._body(receive))
            elif path in self._get and method in ("GET", "HEAD"):
                response = self._get[path]()
            elif ((path in ("/admin/promote", "/admin/rollback") and method == "POST")
                  or (path == "/admin/policy" and method == "PUT")):
                response = await self._admin(path, scope, await self._body(receive))
            elif (path in self._get or path in ("/predict", "/decide")
                  or path.startswith("/admin/")):
                response = _error(405, "method", f"{method} is not allowed on {path}")
            else:
                response = _error(404, "path", f"no endpoint {path}")
        except _TooLargeError:
            response = _error(413, "body", f"larger than {self.max_body_bytes} bytes")
        except Exception as exc:
            response = self._failure(exc)
        status, content_type, body = response
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", content_type),
                                (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        self.metrics.observe(path if path in _KNOWN else "other", status,
                             time.perf_counter() - started)

    async def _body(self, receive: Receive) -> bytes:
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False) and len(body) <= self.max_body_bytes:
            return body
        while message.get("more_body", False):
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                raise _TooLargeError
        if len(body) > self.max_body_bytes:
            raise _TooLargeError
        return body

    def _decide(self, body: bytes) -> _Response:
        if self.actions is None:
            return _error(404, "path", "no contextual policy is served here (/decide is off)")
        decoded = _DECIDE.decode(body)
        rid, decision = self.actions.decide(decoded.actions, decoded.context,
                                            entities=decoded.entities,
                                            request_id=decoded.request_id)
        return 200, _JSON, _ENCODE(Decided(rid, decision.action, decision.propensity,
                                           decision.policy))

    def _predict(self, body: bytes) -> _Response:
        decoded = _BODY.decode(body)
        if decoded.requests is not None:
            if decoded.entities is not None or decoded.request or decoded.request_id:
                return _error(422, "requests", "a batch holds its requests only")
            batch = self.predictor.predict_batch(decoded.requests)
            return 200, _JSON, _ENCODE(BatchResponse(batch))
        if decoded.entities is None:
            return _error(422, "entities", "required (or a batch in requests)")
        prediction = self.predictor.predict(decoded.entities, decoded.request,
                                            request_id=decoded.request_id)
        return 200, _JSON, _ENCODE(prediction)

    def _failure(self, exc: Exception) -> _Response:
        if isinstance(exc, msgspec.ValidationError):  # a DecodeError too: test it first
            detail = field_of(exc)
            return _error(422, detail.field, detail.reason)
        if isinstance(exc, msgspec.DecodeError):
            return _error(400, "body", str(exc))
        if isinstance(exc, ModelError) and not isinstance(exc, ValidationError):
            return _error(503, "model", str(exc))
        if isinstance(exc, ValidationError):
            return _error(422, exc.field, exc.reason)
        if isinstance(exc, UnknownModelError | UnknownVersionError | UnknownAliasError):
            return _error(404, "ref", str(exc))
        if isinstance(exc, AliasError):
            return _error(409, "alias", str(exc))
        if isinstance(exc, RegistryError | HeadwaterError):
            return _error(503, "service", str(exc))
        _LOG.exception("unexpected error")
        return _error(500, "service", f"{type(exc).__name__}: {exc}")

    def _health(self) -> _Response:
        return 200, _JSON, b'{"status":"ok"}'

    def _ready(self) -> _Response:
        if self.predictor.ready:
            return 200, _JSON, b'{"ready":true}'
        return 503, _JSON, _ENCODE({"ready": False, "reason": self.deployment.last_error
                                    or "no model version loaded yet"})

    def _metrics(self) -> _Response:
        return 200, CONTENT_TYPE.encode(), self.metrics.render()

    def _models(self) -> _Response:
        snapshot = self.deployment.snapshot
        try:
            aliases: dict[str, int] | None = self.deployment.source.aliases(self.deployment.name)
        except HeadwaterError:
            aliases = None
        return 200, _JSON, _ENCODE({
            "model": self.deployment.name, "aliases": aliases, **snapshot.describe(),
            "swaps": self.deployment.swaps, "load_errors": self.deployment.load_errors,
            "last_error": self.deployment.last_error})

    async def _admin(self, path: str, scope: Scope, body: bytes) -> _Response:
        if self.admin_token is None or self.registry is None:
            return _error(403, "authorization", "admin endpoints are off: no admin token "
                          "is configured")
        given = b""
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                given = value
        expected = b"Bearer " + self.admin_token.encode()
        if not hmac.compare_digest(given, expected):
            return _error(401, "authorization", "a valid bearer token is required")
        registry, name = self.registry, self.deployment.name
        if path == "/admin/policy":
            change = _POLICY.decode(body)
            policy = policy_from_spec(change.policy)
            check_arms(policy, await asyncio.to_thread(registry.aliases, name), model=name)
            await asyncio.to_thread(self.deployment.reload, policy)
            self.policy_changes.append((change.actor, change.reason, policy.describe()))
            return 200, _JSON, _ENCODE({"models": self.deployment.snapshot.describe()})
        if path == "/admin/promote":
            promote = _PROMOTE.decode(body)
            move = await asyncio.to_thread(registry.promote, name, promote.version,
                                           promote.alias, actor=promote.actor,
                                           reason=promote.reason)
        else:
            rollback = _ROLLBACK.decode(body)
            move = await asyncio.to_thread(registry.rollback, name, rollback.alias,
                                           actor=rollback.actor, reason=rollback.reason)
        await asyncio.to_thread(self.deployment.reload)
        return 200, _JSON, _ENCODE({"move": move, "models": self.deployment.snapshot.describe()})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.on_startup is not None:
                        await asyncio.to_thread(self.on_startup)
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.on_shutdown is not None:
                    await asyncio.to_thread(self.on_shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return


class _TooLargeError(Exception):
    """The request body is over the limit."""


_KNOWN: Final = frozenset({"/predict", "/decide", "/health", "/ready", "/metrics", "/models",
                           "/openapi.json", "/admin/promote", "/admin/rollback",
                           "/admin/policy"})
