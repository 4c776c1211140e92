"""The requests and responses of the prediction service, as frozen msgspec structs.

They are the in-process API of :class:`~headwater.serving.predictor.Predictor` and the
JSON bodies of the HTTP app, validated at decode time: a bad body is refused with the
path of the offending field (``entities.user``), never guessed at.

>>> import msgspec
>>> msgspec.json.decode(b'{"entities": {"user": "u1"}, "request": {"amount": 3.5}}',
...                     type=PredictRequest)
PredictRequest(entities={'user': 'u1'}, request={'amount': 3.5}, request_id=None)
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "AdminPolicy",
    "AdminPromote",
    "AdminRollback",
    "BatchResponse",
    "DecideBody",
    "Decided",
    "ErrorBody",
    "ErrorDetail",
    "PredictBody",
    "PredictRequest",
    "Prediction",
    "RequestValue",
]

#: A value passed with a request: a number, a string, a boolean or null (missing).
RequestValue = float | int | str | bool | None


class PredictRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One prediction request: the entity keys (entity name → key; an integer key is the
    same as its decimal text), the request values and an optional request id (one is made
    up when it is missing)."""

    entities: dict[str, str | int]
    request: dict[str, RequestValue] = {}
    request_id: str | None = None


class PredictBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /predict``: one request, or a batch in ``requests``."""

    entities: dict[str, str | int] | None = None
    request: dict[str, RequestValue] = {}
    request_id: str | None = None
    requests: list[PredictRequest] | None = None


class Prediction(msgspec.Struct, frozen=True, gc=False):
    """The answer to one request.

    ``arm`` is the policy arm (alias) the request was routed to and ``version`` the
    model version that answered. ``unknown_entity`` says that the online store had no
    live value for an entity (never seen, or every value past its TTL); ``missing``
    names the inputs filled by the model's defaults; ``fallback`` says that another
    version than the arm's current one answered (it raised, or the arm has none).
    """

    request_id: str
    score: float
    model: str
    version: int
    arm: str
    unknown_entity: bool = False
    missing: tuple[str, ...] = ()
    fallback: bool = False


class BatchResponse(msgspec.Struct, frozen=True, gc=False):
    """The answers to a batch, in the order of its requests."""

    predictions: list[Prediction]


class ErrorDetail(msgspec.Struct, frozen=True):
    """What was wrong: the field's path (``entities.user``) and why."""

    field: str
    reason: str


class ErrorBody(msgspec.Struct, frozen=True):
    """Every error response: ``{"error": {"field": ..., "reason": ...}}``."""

    error: ErrorDetail


class AdminPromote(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /admin/promote``: point ``alias`` at ``version``; who and why are recorded."""

    version: int
    reason: str
    alias: str = "champion"
    actor: str = "headwater-serve"


class DecideBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /decide``: choose one of ``actions`` for this context (the entities' online
    features join the context when the server has a feature set)."""

    actions: list[str]
    context: dict[str, Any] = {}  # numbers, checked by name when decided
    entities: dict[str, str | int] = {}
    request_id: str | None = None


class Decided(msgspec.Struct, frozen=True):
    """The answer of ``POST /decide``: the action and the probability it was chosen with
    (logged on the decisions topic under ``request_id``; send outcomes with that id)."""

    request_id: str
    action: str
    propensity: float
    policy: str


class AdminPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``PUT /admin/policy``: route with the policy ``policy`` describes from now on
    (:func:`headwater.serving.policy_spec.policy_from_spec`)."""

    policy: dict[str, Any]
    reason: str
    actor: str = "headwater-serve"


class AdminRollback(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /admin/rollback``: undo the latest move of ``alias``."""

    reason: str
    alias: str = "champion"
    actor: str = "headwater-serve"
