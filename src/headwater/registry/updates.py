"""The ``model_updates`` topic: the stream of states between two registered versions.

Versions are checkpoints; between them a continual trainer appends **model updates**
(:mod:`headwater.models.updates`) here, and servers follow the topic. One event names
the model (the key), the ``base`` version it updates (the checkpoint), the update's kind
and bytes, and the exact slice of training examples it learnt since that checkpoint
(topics, partitions, offset ranges: a :class:`~headwater.registry.TrainingSlice` as
JSON). Updates are cumulative: an update replaces the one before it on the same base.
A served state is (version, update offset), where the offset is the update's position in
this topic's one partition; a version served as registered has no update.

>>> from headwater.models.updates import Update
>>> event = ModelUpdate("churn", 3, Update("delta", b"..."), TrainingSlice(examples=2), 10)
>>> decode(encode([event]).append_column("_offset", pa.array([7])))[0].offset
7
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec
import pyarrow as pa

from headwater.errors import ModelArtifactError, TopicExistsError, UnknownTopicError
from headwater.log import Log, Schema
from headwater.log.schema import OFFSET
from headwater.models.updates import KINDS, Update, UpdateKind
from headwater.registry.lineage import TrainingSlice

__all__ = ["MODEL_UPDATES_SCHEMA", "MODEL_UPDATES_TOPIC", "ModelUpdate", "decode", "encode",
           "ensure_updates_topic"]

#: The default topic of model updates.
MODEL_UPDATES_TOPIC: Final = "model_updates"
#: One update of one model (see the module docstring).
MODEL_UPDATES_SCHEMA: Final = Schema.of(
    {"model": "string", "base": "int64", "kind": "string", "payload": "binary",
     "training": "string", "examples": "int64", "ts": "timestamp"},
    key="model", event_time="ts")


@dataclass(frozen=True, slots=True)
class ModelUpdate:
    """One update: of ``model``'s version ``base``, learnt on ``training``, made at
    ``ts`` (µs); ``offset`` is its position in the topic once read (``None`` before)."""

    model: str
    base: int
    update: Update
    training: TrainingSlice
    ts: int
    offset: int | None = None


def ensure_updates_topic(log: Log, topic: str = MODEL_UPDATES_TOPIC) -> None:
    """Create the updates topic (one partition: updates are read in order) if missing."""
    try:
        schema = log.topic(topic).schema
    except UnknownTopicError:
        log.ensure_topic(topic, MODEL_UPDATES_SCHEMA, partitions=1)
        return
    if schema != MODEL_UPDATES_SCHEMA:
        raise TopicExistsError(f"topic {topic!r} exists with another schema than a model "
                               "updates topic's; choose another topic for updates")


def encode(updates: Sequence[ModelUpdate]) -> pa.RecordBatch:
    """Updates as a batch of the topic's schema."""
    return pa.record_batch({
        "model": pa.array([u.model for u in updates], pa.string()),
        "base": pa.array([u.base for u in updates], pa.int64()),
        "kind": pa.array([u.update.kind for u in updates], pa.string()),
        "payload": pa.array([u.update.payload for u in updates], pa.binary()),
        "training": pa.array([msgspec.json.encode(u.training).decode() for u in updates],
                             pa.string()),
        "examples": pa.array([u.training.examples for u in updates], pa.int64()),
        "ts": pa.array([u.ts for u in updates], pa.int64()).cast(pa.timestamp("us", "UTC")),
    }, schema=MODEL_UPDATES_SCHEMA.arrow_schema())


def decode(batch: pa.RecordBatch | pa.Table) -> list[ModelUpdate]:
    """The updates of a batch read from the topic (with its ``_offset`` column)."""
    columns = batch.to_pydict()
    out = []
    for i, kind in enumerate(columns["kind"]):
        if kind not in KINDS:
            raise ModelArtifactError("update", f"unknown kind {kind!r}; known: {list(KINDS)}")
        try:
            training = msgspec.json.decode(columns["training"][i], type=TrainingSlice)
        except msgspec.DecodeError as exc:
            raise ModelArtifactError("update.training", str(exc)) from exc
        ts = columns["ts"][i]
        out.append(ModelUpdate(
            columns["model"][i], columns["base"][i],
            Update(_kind(kind), columns["payload"][i]), training,
            ts if isinstance(ts, int) else _micros(ts),
            columns[OFFSET][i] if OFFSET in columns else None))
    return out


def _kind(kind: str) -> UpdateKind:
    return "delta" if kind == "delta" else "snapshot"


def _micros(ts: object) -> int:
    from headwater.time import to_micros

    return to_micros(ts)  # type: ignore[arg-type]
