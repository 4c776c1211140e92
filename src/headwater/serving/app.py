"""The HTTP interface: a lean ASGI app, no framework, msgspec for JSON.

Endpoints: ``POST /predict`` (one request, or ``{"requests": [...]}``), ``POST /outcomes``
(one outcome, or ``{"outcomes": [...]}``, appended to the outcomes topic once each:
:mod:`headwater.serving.outcomes`), ``POST /decide`` (a contextual bandit's action for a
context, when the app serves one), ``GET /health``, ``GET /ready`` (503 until a version
of the policy's first arm is loaded), ``GET /metrics`` (Prometheus text), ``GET
/models``, ``GET /openapi.json``, and ``POST /admin/promote``, ``POST /admin/rollback``
and ``PUT /admin/policy`` (route with another policy, live), which need
``Authorization: Bearer <token>`` and are refused (403) when no token is configured.

Errors are ``{"error": {"field": ..., "reason": ...}}``; this layer, and only this one,
maps them to status codes: a body that is not JSON, or holds an object with a duplicate
key, is 400 (:mod:`headwater.serving.bodies`); a field of the wrong type, missing,
unknown or over its size limit is 422 naming its path (``entities.user``,
``requests[0].request.amount``), and so is a batch over ``max_batch`` requests; a
request id reused for another request is 409, and so is an outcome naming another
entity than the one its (remembered) request id was predicted for; a label outside the
served model's label space (0 or 1 for a classifier) is 422; a body over ``max_body_bytes`` is 413;
a method an endpoint does not take is 405 with ``Allow``; an unknown model, version or
alias 404; an alias move that cannot be made 409 (a target version that would not load,
too: the reason says why); no version able to answer 503, with the reason each arm does
not serve its alias's version (``GET /ready`` gives it too).

Predictions run inline on the event loop: the path is tens of microseconds of CPU with
an in-process online store, less than handing it to a thread would cost. With a
networked online store (Redis) a request's feature reads are awaited, never waited on
in a blocking call, and go to the store in one round trip with those of the other
requests in flight (:meth:`Predictor.predict_async`). A body over
``offload_bytes`` (a batch of more than a hundred requests or so) is decoded, scored and
encoded in one worker thread instead, so that a large batch never holds the loop:
``/health``, ``/ready`` and single requests are answered while batches run, one at a
time, beside them. Outcomes (an append to the log, which waits for the disk or the
server) and admin actions (the registry, loading models) run in threads too.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

import msgspec

from headwater.errors import (
    AliasError,
    ConflictError,
    HeadwaterError,
    ModelError,
    RegistryError,
    UnknownAliasError,
    UnknownModelError,
    UnknownVersionError,
    ValidationError,
)
from headwater.features.online import entity_key
from headwater.models.features import is_binary, labels
from headwater.registry import ModelRegistry
from headwater.routing import build, check_arms, parse_spec
from headwater.serving.bodies import BodyError, decode, field_of
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
    OutcomeRequest,
    OutcomesBody,
    PredictBody,
)
from headwater.serving.metrics import CONTENT_TYPE, ServingMetrics
from headwater.serving.openapi import openapi
from headwater.serving.predictor import Predictor

if TYPE_CHECKING:
    from headwater.serving.actions import ActionService
    from headwater.serving.outcomes import OutcomeSink

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
_OUTCOMES: Final = msgspec.json.Decoder(OutcomesBody)
#: The methods each endpoint takes (the ``Allow`` header of a 405).
_ALLOW: Final = {"/predict": b"POST", "/outcomes": b"POST", "/decide": b"POST",
                 "/health": b"GET, HEAD", "/ready": b"GET, HEAD", "/metrics": b"GET, HEAD",
                 "/models": b"GET, HEAD", "/openapi.json": b"GET, HEAD",
                 "/admin/promote": b"POST", "/admin/rollback": b"POST",
                 "/admin/policy": b"PUT"}


def _error(status: int, field: str, reason: str) -> _Response:
    return status, _JSON, _ENCODE(ErrorBody(ErrorDetail(field, reason)))


class ServingApp:
    """The ASGI application around a predictor and its deployment.

    ``registry`` enables the admin endpoints together with ``admin_token``; ``outcomes``
    enables ``POST /outcomes``. ``max_batch`` caps the requests (or outcomes) of one
    batch; a body over ``offload_bytes`` is handled in the worker thread.
    """

    def __init__(self, predictor: Predictor, deployment: Deployment, *,
                 registry: ModelRegistry | None = None, admin_token: str | None = None,
                 metrics: ServingMetrics | None = None, max_body_bytes: int = 1 << 20,
                 on_startup: Callable[[], None] | None = None,
                 on_shutdown: Callable[[], None] | None = None,
                 actions: ActionService | None = None, outcomes: OutcomeSink | None = None,
                 max_batch: int = 1_000, offload_bytes: int = 16 << 10) -> None:
        self.predictor = predictor
        self.outcomes = outcomes
        self.max_batch = max_batch
        self.offload_bytes = offload_bytes
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="headwater-batch")
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
                body = await self._body(receive)
                if len(body) > self.offload_bytes:
                    response = await asyncio.get_running_loop().run_in_executor(
                        self._worker, self._predict, body)
                elif self.predictor.reads is not None:
                    response = await self._predict_awaiting_reads(body)
                else:
                    response = self._predict(body)
            elif path == "/outcomes" and method == "POST":
                response = await asyncio.to_thread(self._outcomes, await self._body(receive))
            elif path == "/decide" and method == "POST":
                response = self._decide(await self._body(receive))
            elif path in self._get and method in ("GET", "HEAD"):
                response = self._get[path]()
            elif ((path in ("/admin/promote", "/admin/rollback") and method == "POST")
                  or (path == "/admin/policy" and method == "PUT")):
                response = await self._admin(path, scope, await self._body(receive))
            elif path in _ALLOW:
                response = _error(405, "method", f"{method} is not allowed on {path} (allowed: "
                                  f"{_ALLOW[path].decode()})")
            else:
                response = _error(404, "path", f"no endpoint {path}")
        except _TooLargeError:
            response = _error(413, "body", f"larger than {self.max_body_bytes} bytes")
        except Exception as exc:
            response = self._failure(exc)
        status, content_type, body = response
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        if status == 405:
            headers.append((b"allow", _ALLOW[path]))
        await send({"type": "http.response.start", "status": status, "headers": headers})
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
        decoded = decode(_DECIDE, body)
        rid, decision = self.actions.decide(decoded.actions, decoded.context,
                                            entities=decoded.entities,
                                            request_id=decoded.request_id)
        return 200, _JSON, _ENCODE(Decided(rid, decision.action, decision.propensity,
                                           decision.policy))

    def _predict(self, body: bytes) -> _Response:
        decoded = decode(_BODY, body)
        if decoded.requests is not None:
            if decoded.entities is not None or decoded.request or decoded.request_id:
                return _error(422, "requests", "a batch holds its requests only")
            if len(decoded.requests) > self.max_batch:
                return _error(422, "requests", f"a batch holds at most {self.max_batch} "
                              f"requests, got {len(decoded.requests)}: split it")
            batch = self.predictor.predict_batch(decoded.requests)
            return 200, _JSON, _ENCODE(BatchResponse(batch))
        if decoded.entities is None:
            return _error(422, "entities", "required (or a batch in requests)")
        prediction = self.predictor.predict(decoded.entities, decoded.request,
                                            request_id=decoded.request_id)
        return 200, _JSON, _ENCODE(prediction)

    async def _predict_awaiting_reads(self, body: bytes) -> _Response:
        """:meth:`_predict` over a networked online store: one request's reads are
        awaited (batched with the other requests'), a batch runs in the worker thread."""
        decoded = decode(_BODY, body)
        if decoded.requests is not None or decoded.entities is None:
            return await asyncio.get_running_loop().run_in_executor(
                self._worker, self._predict, body)
        prediction = await self.predictor.predict_async(decoded.entities, decoded.request,
                                                        request_id=decoded.request_id)
        return 200, _JSON, _ENCODE(prediction)

    def _outcomes(self, body: bytes) -> _Response:
        if self.outcomes is None:
            return _error(404, "path", "outcomes are not taken here (/outcomes is off)")
        decoded = decode(_OUTCOMES, body)
        if decoded.outcomes is not None:
            if (decoded.entity is not None or decoded.request_id is not None
                    or decoded.label is not None or decoded.ts is not None):
                return _error(422, "outcomes", "a batch holds its outcomes only")
            if len(decoded.outcomes) > self.max_batch:
                return _error(422, "outcomes", f"a batch holds at most {self.max_batch} "
                              f"outcomes, got {len(decoded.outcomes)}: split it")
            self._check_outcomes(decoded.outcomes, "outcomes")
            ack = self.outcomes.append(decoded.outcomes)
        elif decoded.entity is None:
            return _error(422, "entity", "required (or a batch in outcomes)")
        else:
            one = [OutcomeRequest(decoded.entity, decoded.request_id, decoded.label, decoded.ts)]
            self._check_outcomes(one, "")
            ack = self.outcomes.append(one, field="")
        return 200, _JSON, _ENCODE(ack)

    def _check_outcomes(self, outcomes: Sequence[OutcomeRequest], field: str) -> None:
        """Refuse, before anything is appended, a label outside the served model's label
        space (0 or 1 for a classifier: the rule its learning applies, :func:`~headwater.
        models.features.labels`) and an outcome naming another entity than the one a
        remembered request id was predicted for."""
        snapshot = self.deployment.snapshot
        served = snapshot.model_for(snapshot.policy.arms[0])
        binary = served is not None and is_binary(served.base)
        for i, outcome in enumerate(outcomes):
            named = f"{field}[{i}]." if field else ""
            if outcome.label is not None:
                try:
                    labels([outcome.label], 1, binary=binary)
                except ValidationError:
                    kind = (f"0 or 1 (model {self.deployment.name!r} is a binary classifier)"
                            if binary else "a finite number")
                    raise ValidationError(f"{named}label", f"expected {kind}, got "
                                          f"{outcome.label!r}") from None
            if outcome.request_id is None:
                continue
            predicted = self.predictor.entity_of(outcome.request_id)
            if predicted is not None and predicted != entity_key(
                    outcome.entity, field=f"{named}entity"):
                raise ConflictError(f"{named}request_id", f"request {outcome.request_id!r} "
                                    f"was predicted for entity {predicted!r}, not "
                                    f"{entity_key(outcome.entity)!r}")

    def _failure(self, exc: Exception) -> _Response:
        if isinstance(exc, msgspec.ValidationError):  # a DecodeError too: test it first
            detail = field_of(exc)
            return _error(422, detail.field, detail.reason)
        if isinstance(exc, msgspec.DecodeError | BodyError):
            return _error(400, "body", exc.reason if isinstance(exc, BodyError) else str(exc))
        if isinstance(exc, ModelError) and not isinstance(exc, ValidationError):
            return _error(503, "model", self._explained(str(exc)))
        if isinstance(exc, ConflictError):
            return _error(409, exc.field, exc.reason)
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
        deployment = self.deployment
        first = deployment.snapshot.policy.arms[0]
        return 503, _JSON, _ENCODE({"ready": False, "reason": deployment.problems.get(first)
                                    or deployment.last_error or "no model version loaded yet",
                                    "problems": deployment.problems})

    def _explained(self, reason: str) -> str:
        """``reason``, followed by why arms do not serve their aliases' versions."""
        problems = dict.fromkeys(self.deployment.problems.values())
        return f"{reason}: {'; '.join(problems)}" if problems else reason

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
            "updates_applied": self.deployment.updates_applied,
            "updates_ignored": self.deployment.updates_ignored,
            "updates_failed": self.deployment.updates_failed,
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
            change = decode(_POLICY, body)
            policy = build(parse_spec(change.policy))
            check_arms(policy, await asyncio.to_thread(registry.aliases, name), model=name)
            await asyncio.to_thread(self.deployment.reload, policy)
            self.policy_changes.append((change.actor, change.reason, policy.describe()))
            return 200, _JSON, _ENCODE({"models": self.deployment.snapshot.describe()})
        if path == "/admin/promote":
            promote = decode(_PROMOTE, body)
            move = await asyncio.to_thread(registry.promote, name, promote.version,
                                           promote.alias, actor=promote.actor,
                                           reason=promote.reason)
        else:
            rollback = decode(_ROLLBACK, body)
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
                await asyncio.to_thread(self._worker.shutdown)
                if self.predictor.reads is not None:
                    await self.predictor.reads.close()
                if self.on_shutdown is not None:
                    await asyncio.to_thread(self.on_shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return


class _TooLargeError(Exception):
    """The request body is over the limit."""


_KNOWN: Final = frozenset(_ALLOW)
