"""The requests and responses of the prediction service, as frozen msgspec structs.

They are the in-process API of :class:`~headwater.serving.predictor.Predictor` and the
JSON bodies of the HTTP app, validated at decode time: a bad body is refused with the
path of the offending field (``entities.user``), never guessed at.

Sizes are capped, so that one request cannot make the service keep, echo and log
megabytes: an entity key at most :data:`MAX_KEY_CHARS` characters, a request id
:data:`MAX_ID_CHARS`, a name (of an entity or a request value) :data:`MAX_NAME_CHARS`, a
string request value :data:`MAX_TEXT_CHARS`; over a cap, the error names the field and
the limit (``Expected `str` of length <= 256``).

A request value is a JSON number, string, boolean or null (missing). The values a
model reads are checked against the kinds it declares
(:func:`headwater.serving.inputs.input_kinds`): a numeric input takes a finite number
that fits a float64 (``true`` is not a number; 10^400 is out of range), a categorical
input takes a string (send ``"94107"``, not ``94107``, so ``1`` and ``1.0`` cannot
become two categories). The error names ``request.<name>``.

>>> import msgspec
>>> msgspec.json.decode(b'{"entities": {"user": "u1"}, "request": {"amount": 3.5}}',
...                     type=PredictRequest)
PredictRequest(entities={'user': 'u1'}, request={'amount': 3.5}, request_id=None)
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

__all__ = [
    "MAX_ID_CHARS",
    "MAX_KEY_CHARS",
    "MAX_NAME_CHARS",
    "MAX_TEXT_CHARS",
    "AdminPolicy",
    "AdminPromote",
    "AdminRollback",
    "BatchResponse",
    "DecideBody",
    "Decided",
    "EntityKey",
    "ErrorBody",
    "ErrorDetail",
    "Name",
    "OutcomeRequest",
    "OutcomesAck",
    "OutcomesBatch",
    "OutcomesBody",
    "PredictBatch",
    "PredictBody",
    "PredictRequest",
    "Prediction",
    "RequestId",
    "RequestValue",
]

#: The longest entity key, request id, name and string request value (characters).
MAX_KEY_CHARS: Final = 256
MAX_ID_CHARS: Final = 128
MAX_NAME_CHARS: Final = 128
MAX_TEXT_CHARS: Final = 1024

#: An entity key: 1 to :data:`MAX_KEY_CHARS` characters, or an integer, which names the
#: same entity as its decimal text (``42`` is ``"42"``: the engine keeps the keys of an
#: integer key column as their text, see :func:`headwater.features.online.entity_key`).
EntityKey = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_CHARS)] | int
#: A request id: 1 to :data:`MAX_ID_CHARS` characters.
RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
#: The name of an entity, a request value or an action: 1 to :data:`MAX_NAME_CHARS`.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
_Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]

#: A value passed with a request: a number, a string, a boolean or null (missing).
RequestValue = float | int | _Text | bool | None


class PredictRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One prediction request: the entity keys (entity name → key), the request values
    and an optional request id (one is made up when it is missing)."""

    entities: dict[Name, EntityKey]
    request: dict[Name, RequestValue] = {}
    request_id: RequestId | None = None


class PredictBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /predict``: one request, or a batch in ``requests``."""

    entities: dict[Name, EntityKey] | None = None
    request: dict[Name, RequestValue] = {}
    request_id: RequestId | None = None
    requests: list[PredictRequest] | None = None


class PredictBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /predict`` with a batch: the requests, answered in their order (at most
    the server's ``--max-batch``). Decoded as :class:`PredictBody`; this is its shape in
    the OpenAPI document."""

    requests: list[PredictRequest]


class Prediction(msgspec.Struct, frozen=True, gc=False):
    """The answer to one request.

    ``arm`` is the policy arm (alias) the request was routed to and ``version`` the
    model version that answered. ``unknown_entity`` says that the online store had no
    live value for an entity (never seen, or every value past its TTL); ``missing``
    names the inputs filled by the model's defaults; ``fallback`` says that another
    version than the arm's current one answered (it raised, or the arm has none);
    ``update`` is the offset of the model update the version served with (``None``: the
    version as registered).
    """

    request_id: str
    score: float
    model: str
    version: int
    arm: str
    unknown_entity: bool = False
    missing: tuple[str, ...] = ()
    fallback: bool = False
    update: int | None = None


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

    actions: list[Name]
    context: dict[Name, Any] = {}  # numbers, checked by name when decided
    entities: dict[Name, EntityKey] = {}
    request_id: RequestId | None = None


class Decided(msgspec.Struct, frozen=True):
    """The answer of ``POST /decide``: the action and the probability it was chosen with
    (logged on the decisions topic under ``request_id``; send outcomes with that id)."""

    request_id: str
    action: str
    propensity: float
    policy: str


class OutcomeRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One outcome sent to ``POST /outcomes``: what happened after a prediction.

    ``entity`` is the key of the entity the prediction was about; ``request_id`` the id
    of the prediction it answers, when the client knows it; ``label`` an explicit label
    (null for an event such as a click, which the label joiner's window rule labels);
    ``ts`` when it happened, ISO 8601 with an offset (default: when the server received
    it; required without a ``request_id``, so that a retry can be recognised).
    """

    entity: EntityKey
    request_id: RequestId | None = None
    label: float | None = None
    ts: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class OutcomesBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of ``POST /outcomes``: one outcome, or a batch in ``outcomes``."""

    entity: EntityKey | None = None
    request_id: RequestId | None = None
    label: float | None = None
    ts: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    outcomes: list[OutcomeRequest] | None = None


class OutcomesBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /outcomes`` with a batch (at most the server's ``--max-batch``). Decoded as
    :class:`OutcomesBody`; this is its shape in the OpenAPI document."""

    outcomes: list[OutcomeRequest]


class OutcomesAck(msgspec.Struct, frozen=True):
    """The answer of ``POST /outcomes``, sent once the outcomes are in the log:
    ``appended`` new outcomes, and ``duplicates`` already appended before (a retry),
    which were not appended again."""

    appended: int
    duplicates: int


class AdminPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``PUT /admin/policy``: route with the policy ``policy`` describes from now on
    (a :data:`headwater.routing.PolicySpec` as JSON, read by
    :func:`headwater.routing.parse_spec`: its errors name the arm of a bad weight and list
    the kinds)."""

    policy: dict[str, Any]
    reason: str
    actor: str = "headwater-serve"


class AdminRollback(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /admin/rollback``: undo the latest move of ``alias``."""

    reason: str
    alias: str = "champion"
    actor: str = "headwater-serve"
