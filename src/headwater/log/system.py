"""The system topics: the topics Headwater's own components write, in one catalogue.

Each :class:`SystemTopic` names a default topic and its row: a frozen msgspec struct whose
fields, in order, are the topic's fields. The topic's :class:`~headwater.log.Schema` is
derived from that struct (``str`` → string, ``bytes`` → binary, ``int`` → int64,
``float`` → float64, ``bool`` → bool, :data:`Micros` → timestamp, :data:`Names` → a
comma-separated string, ``X | None`` → a nullable field), and :meth:`SystemTopic.encode`
turns rows into one Arrow batch by field name, so a field added to a row (at the end,
with a default) is in the schema and in every batch at once.

- ``predictions`` (:class:`PredictionRow`): one event per scored model version, written by
  :class:`headwater.serving.PredictionLog`;
- ``decisions`` (:class:`DecisionRow`): one event per contextual decision, written by
  :class:`headwater.bandits.DecisionLog`;
- ``outcomes`` (:class:`OutcomeRow`), ``training_examples`` (:class:`ExampleRow`) and
  ``outcomes.late`` (:class:`LateOutcomeRow`): the label loop
  (:mod:`headwater.labels.schema` says what each holds).

A component calls :meth:`SystemTopic.ensure` at start-up for a topic it writes (or reads).
A topic created by an earlier version of Headwater, whose schema is one of the topic's
``earlier`` schemas, stays readable (``readable=True``) but is not written to.

>>> from headwater.testing import ManualClock, MemoryBackend
>>> from headwater.log import Log
>>> log = Log(MemoryBackend(clock=ManualClock(0)))
>>> DECISIONS.ensure(log)
>>> row = DecisionRow("r-1", "user-1", b'{"hour":3.0}', b'["down","up"]', "up", 0.9,
...                   "linucb", 0)
>>> _ = log.append("decisions", DECISIONS.encode([row]))
>>> log.read_table("decisions").column("propensity").to_pylist()
[0.9]
>>> PREDICTIONS.schema.field("missing").type, PREDICTIONS.schema.event_time
('string', 'ts')
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Final, Generic, TypeVar

import msgspec
import pyarrow as pa

from headwater.errors import SchemaError, TopicExistsError, UnknownTopicError
from headwater.log.log import Log
from headwater.log.schema import Schema

__all__ = [
    "DECISIONS",
    "LATE_OUTCOMES",
    "OUTCOMES",
    "PREDICTIONS",
    "SYSTEM_TOPICS",
    "TRAINING_EXAMPLES",
    "DecisionRow",
    "ExampleRow",
    "LateOutcomeRow",
    "Micros",
    "Names",
    "OutcomeRow",
    "PredictionRow",
    "SystemTopic",
]

#: A time in µs since the Unix epoch (UTC), stored as a timestamp.
Micros = Annotated[int, msgspec.Meta(extra={"type": "timestamp"})]
#: Names, stored as one comma-separated string (empty when there are none).
Names = Annotated[tuple[str, ...], msgspec.Meta(extra={"type": "names"})]


class PredictionRow(msgspec.Struct, frozen=True):
    """One scored model version of a request, as logged (``headwater.serving``).

    ``features`` is the model input as served (a JSON object); ``missing`` the inputs the
    model's neutral defaults filled; ``propensity`` the probability the routing policy
    gave ``arm`` (1 for a shadow); ``latency_ms`` how long the prediction took in the
    service; ``defaulted`` the features whose value is their definition's default;
    ``update`` the offset of the model update the version served with.
    """

    request_id: str
    entity: str
    features: bytes
    model: str
    version: int
    score: float
    arm: str
    served: bool
    missing: Names
    ts: Micros
    propensity: float = 1.0
    latency_ms: float = 0.0
    defaulted: Names = ()
    #: The offset of the model update the version served with (``None``: as registered).
    update: int | None = None
    #: The request's key of every entity, a JSON object of entity name to key (``entity``
    #: is the one it was routed by; ``None`` when the writer did not give them).
    entities: str | None = None


class DecisionRow(msgspec.Struct, frozen=True):
    """One contextual decision, as logged (``headwater.bandits``): the context the policy
    saw (JSON: an object for a named context, an array for a vector), the actions it
    could choose from (a JSON array), the action chosen and its propensity."""

    request_id: str
    entity: str
    context: bytes
    actions: bytes
    action: str
    propensity: float
    policy: str
    ts: Micros


class OutcomeRow(msgspec.Struct, frozen=True):
    """One outcome: ``request_id`` and ``label`` may be null."""

    request_id: str | None
    entity: str
    label: float | None
    ts: Micros


class ExampleRow(msgspec.Struct, frozen=True):
    """One logged prediction joined with its label."""

    request_id: str
    entity: str
    features: bytes
    model: str
    version: int
    score: float
    arm: str
    served: bool
    label: float
    source: str
    prediction_time: Micros
    label_time: Micros


class LateOutcomeRow(msgspec.Struct, frozen=True):
    """An outcome kept aside: too late for its prediction's window, or matched nothing."""

    request_id: str | None
    entity: str
    label: float | None
    ts: Micros
    reason: str
    prediction_time: Micros | None


R = TypeVar("R", bound=msgspec.Struct)

_TYPES: Final[dict[object, str]] = {
    str: "string", bytes: "binary", int: "int64", float: "float64", bool: "bool"}


@dataclasses.dataclass(frozen=True, eq=False)
class SystemTopic(Generic[R]):
    """A system topic: its default name, its row struct, its key and event-time fields,
    and the schemas earlier versions of Headwater gave it (still readable)."""

    name: str
    row: type[R]
    event_time: str
    key: str
    earlier: tuple[Schema, ...] = ()
    #: What to do with a topic of an earlier schema, said when a writer refuses it.
    upgrade: str = ""
    #: What a field added since an earlier schema says (for that refusal).
    fields_say: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def _fields(self) -> tuple[tuple[str, str, bool], ...]:
        """(name, field type, nullable) of each field of the row, in order."""
        hints = typing.get_type_hints(self.row, include_extras=True)
        return tuple(_field(self.row, name, hints[name])
                     for name in self.row.__struct_fields__)

    @functools.cached_property
    def schema(self) -> Schema:
        """The topic's schema, derived from the row struct."""
        return Schema.of({name: kind if kind != "names" else "string"
                          for name, kind, _ in self._fields},
                         key=self.key, event_time=self.event_time,
                         nullable=tuple(name for name, _, null in self._fields if null))

    @functools.cached_property
    def _columns(self) -> tuple[tuple[Callable[[Any], Any], pa.DataType, str], ...]:
        arrow = self.schema.arrow_schema()
        return tuple((operator.attrgetter(name), arrow.field(name).type, kind)
                     for name, kind, _ in self._fields)

    def encode(self, rows: Sequence[R]) -> pa.RecordBatch:
        """``rows`` as one record batch of the topic's schema."""
        columns = []
        for get, type_, kind in self._columns:
            values = [get(row) for row in rows]
            if kind == "names":
                values = [",".join(v) for v in values]
            columns.append(pa.array(values, type_))
        return pa.record_batch(columns, schema=self.schema.arrow_schema())

    def ensure(self, log: Log, topic: str | None = None, *, partitions: int = 1,
               readable: bool = False) -> None:
        """Create ``topic`` (default: :attr:`name`) if it is missing. An existing one must
        have the current schema, or with ``readable`` (what a reader calls) one of the
        ``earlier`` schemas; :class:`~headwater.errors.TopicExistsError` otherwise, saying
        what to do with a topic an earlier version created."""
        topic = self.name if topic is None else topic
        try:
            schema = log.topic(topic).schema
        except UnknownTopicError:
            log.ensure_topic(topic, self.schema, partitions=partitions)
            return
        if schema == self.schema or (readable and schema in self.earlier):
            return
        if schema in self.earlier:
            missing = next(n for n in self.schema.names if n not in schema.names)
            why = f", which {self.fields_say[missing]}" if missing in self.fields_say else ""
            raise TopicExistsError(
                f"topic {topic!r} was created by an earlier version of Headwater: its events "
                f"have no {missing!r} field{why}{self.upgrade}")
        raise TopicExistsError(f"topic {topic!r} exists with another schema than a "
                               f"{self.name} topic's; choose another topic for {self.name}")


def _field(row: type, name: str, hint: Any) -> tuple[str, str, bool]:
    """(name, field type, nullable) of one annotated field of a row struct."""
    nullable = False
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        nullable, hint = True, rest[0] if len(rest) == 1 else hint
    if typing.get_origin(hint) is Annotated:
        base, *metas = typing.get_args(hint)
        for meta in metas:
            if isinstance(meta, msgspec.Meta) and meta.extra:
                return name, meta.extra["type"], nullable
        hint = base
    if hint not in _TYPES:
        raise SchemaError(f"{row.__name__}.{name}", f"a system topic holds no {hint!r}")
    return name, _TYPES[hint], nullable


_EARLIER_FIELDS: Final = {
    "request_id": "string", "entity": "string", "features": "binary", "model": "string",
    "version": "int64", "score": "float64", "arm": "string", "served": "bool",
    "missing": "string", "ts": "timestamp", "propensity": "float64", "latency_ms": "float64"}

#: Predictions: one event per scored model version (the returned one and every shadow).
PREDICTIONS: Final = SystemTopic(
    "predictions", PredictionRow, event_time="ts", key="entity",
    earlier=(Schema.of(_EARLIER_FIELDS, key="entity", event_time="ts"),
             Schema.of({**_EARLIER_FIELDS, "defaulted": "string"}, key="entity",
                       event_time="ts"),
             Schema.of({**_EARLIER_FIELDS, "defaulted": "string", "update": "int64"},
                       key="entity", event_time="ts", nullable=("update",))),
    fields_say={"defaulted": "says which feature values were filled by their default",
                "update": "says which model update served each prediction",
                "entities": "names every entity key of the request"},
    upgrade=", so new predictions are not logged to it. Its events stay readable (labels, "
    "evaluation, replay); log new predictions to another topic: headwater serve "
    "--predictions-topic NAME, and join them with headwater labels run --predictions NAME")
#: Decisions: one event per contextual decision.
DECISIONS: Final = SystemTopic("decisions", DecisionRow, event_time="ts", key="entity")
#: Outcomes: what happened after a prediction.
OUTCOMES: Final = SystemTopic("outcomes", OutcomeRow, event_time="ts", key="entity")
#: Training examples: logged predictions joined with their labels.
TRAINING_EXAMPLES: Final = SystemTopic("training_examples", ExampleRow,
                                       event_time="label_time", key="entity")
#: Outcomes that came too late or matched no prediction.
LATE_OUTCOMES: Final = SystemTopic("outcomes.late", LateOutcomeRow, event_time="ts",
                                   key="entity")

#: Every system topic.
SYSTEM_TOPICS: Final[tuple[SystemTopic[Any], ...]] = (
    PREDICTIONS, DECISIONS, OUTCOMES, TRAINING_EXAMPLES, LATE_OUTCOMES)
