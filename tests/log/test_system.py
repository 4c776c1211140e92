"""The catalogue of system topics: schemas derived from row structs, one encoder, one
ensure."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import SchemaError, TopicExistsError
from headwater.log import Log, Schema
from headwater.log.system import (
    DECISIONS,
    LATE_OUTCOMES,
    OUTCOMES,
    PREDICTIONS,
    SYSTEM_TOPICS,
    TRAINING_EXAMPLES,
    DecisionRow,
    ExampleRow,
    LateOutcomeRow,
    OutcomeRow,
    PredictionRow,
    SystemTopic,
)
from headwater.testing import MemoryBackend

TIMES = st.integers(-(1 << 50), 1 << 50)
TEXT = st.text(st.characters(codec="utf-8", exclude_characters=","), max_size=8)
NAMES = st.lists(st.text(st.characters(codec="utf-8", exclude_characters=","), min_size=1,
                         max_size=5), max_size=3).map(tuple)
FLOATS = st.floats(allow_nan=False, allow_infinity=False)


def rows_of(topic: SystemTopic[Any], table: pa.Table) -> list[Any]:
    """The rows of a table read back, decoded by the row struct's field types."""
    hints = typing.get_type_hints(topic.row, include_extras=True)
    table = table.select(list(topic.schema.names))
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.int64()))
    out = []
    for record in table.to_pylist():
        values = {}
        for name, value in record.items():
            if "tuple" in str(hints[name]):
                value = tuple(value.split(",")) if value else ()
            values[name] = value
        out.append(topic.row(**values))
    return out


PREDICTION = st.builds(PredictionRow, TEXT, TEXT, st.binary(max_size=8), TEXT,
                       st.integers(0, 1 << 40), FLOATS, TEXT, st.booleans(), NAMES, TIMES,
                       FLOATS, FLOATS, NAMES, st.none() | st.integers(0, 1 << 40))
DECISION = st.builds(DecisionRow, TEXT, TEXT, st.binary(max_size=8), st.binary(max_size=8),
                     TEXT, FLOATS, TEXT, TIMES)
OUTCOME = st.builds(OutcomeRow, st.none() | TEXT, TEXT, st.none() | FLOATS, TIMES)
EXAMPLE = st.builds(ExampleRow, TEXT, TEXT, st.binary(max_size=8), TEXT,
                    st.integers(0, 1 << 40), FLOATS, TEXT, st.booleans(), FLOATS, TEXT,
                    TIMES, TIMES)
LATE = st.builds(LateOutcomeRow, st.none() | TEXT, TEXT, st.none() | FLOATS, TIMES, TEXT,
                 st.none() | TIMES)
STRATEGIES = {PREDICTIONS.name: PREDICTION, DECISIONS.name: DECISION, OUTCOMES.name: OUTCOME,
              TRAINING_EXAMPLES.name: EXAMPLE, LATE_OUTCOMES.name: LATE}


@pytest.mark.parametrize("topic", SYSTEM_TOPICS, ids=lambda t: t.name)
@given(data=st.data())
def test_rows_appended_read_back_equal(topic: SystemTopic[Any], data: st.DataObject) -> None:
    rows = data.draw(st.lists(STRATEGIES[topic.name], max_size=20))
    log = Log(MemoryBackend())
    topic.ensure(log, partitions=2)
    batch = topic.encode(rows)
    assert batch.schema == topic.schema.arrow_schema()
    result = log.append(topic.name, batch)
    assert result.accepted == len(rows)
    back = rows_of(topic, log.read_table(topic.name))
    assert sorted(back, key=msgspec.json.encode) == sorted(rows, key=msgspec.json.encode)


def test_the_derived_schemas_are_those_topics_were_created_with() -> None:
    """Topics created before the catalogue are compared by schema: the derived ones must
    be the very schemas written out by hand before."""
    predictions = {
        "request_id": "string", "entity": "string", "features": "binary", "model": "string",
        "version": "int64", "score": "float64", "arm": "string", "served": "bool",
        "missing": "string", "ts": "timestamp", "propensity": "float64",
        "latency_ms": "float64"}
    assert PREDICTIONS.schema == Schema.of(
        {**predictions, "defaulted": "string", "update": "int64", "entities": "string"},
        key="entity", event_time="ts", nullable=("update", "entities"))
    assert PREDICTIONS.earlier == (
        Schema.of(predictions, key="entity", event_time="ts"),
        Schema.of({**predictions, "defaulted": "string"}, key="entity", event_time="ts"),
        Schema.of({**predictions, "defaulted": "string", "update": "int64"}, key="entity",
                  event_time="ts", nullable=("update",)))
    assert DECISIONS.schema == Schema.of(
        {"request_id": "string", "entity": "string", "context": "binary",
         "actions": "binary", "action": "string", "propensity": "float64",
         "policy": "string", "ts": "timestamp"}, key="entity", event_time="ts")
    assert OUTCOMES.schema == Schema.of(
        {"request_id": "string", "entity": "string", "label": "float64", "ts": "timestamp"},
        key="entity", event_time="ts", nullable=("request_id", "label"))
    assert TRAINING_EXAMPLES.schema == Schema.of(
        {"request_id": "string", "entity": "string", "features": "binary", "model": "string",
         "version": "int64", "score": "float64", "arm": "string", "served": "bool",
         "label": "float64", "source": "string", "prediction_time": "timestamp",
         "label_time": "timestamp"}, key="entity", event_time="label_time")
    assert LATE_OUTCOMES.schema == Schema.of(
        {"request_id": "string", "entity": "string", "label": "float64", "ts": "timestamp",
         "reason": "string", "prediction_time": "timestamp"},
        key="entity", event_time="ts", nullable=("request_id", "label", "prediction_time"))


def test_a_field_added_at_the_end_with_a_default_is_in_schema_and_batch() -> None:
    class Wider(DecisionRow, frozen=True):
        served_offset: int = -1

    wider = SystemTopic("wider", Wider, event_time="ts", key="entity")
    assert wider.schema.names[-1] == "served_offset"
    batch = wider.encode([Wider("r", "e", b"{}", b"[]", "a", 1.0, "p", 0)])
    assert batch.column("served_offset").to_pylist() == [-1]


def test_ensure_creates_checks_and_keeps_earlier_topics_readable() -> None:
    log = Log(MemoryBackend())
    PREDICTIONS.ensure(log)
    PREDICTIONS.ensure(log)
    assert log.topic("predictions").schema == PREDICTIONS.schema
    log.create_topic("old", PREDICTIONS.earlier[0])
    with pytest.raises(TopicExistsError, match="earlier version of Headwater"):
        PREDICTIONS.ensure(log, "old")
    PREDICTIONS.ensure(log, "old", readable=True)
    with pytest.raises(TopicExistsError, match="another schema than a decisions topic's"):
        DECISIONS.ensure(log, "predictions")


def test_a_row_field_of_an_unstorable_type_is_refused() -> None:
    class Bad(msgspec.Struct, frozen=True):
        ts: int
        tags: list[str]

    with pytest.raises(SchemaError, match=r"Bad\.tags"):
        _ = SystemTopic("bad", Bad, event_time="ts", key="ts").schema
