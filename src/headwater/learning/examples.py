"""Training examples read back from the log: a slice becomes columns, labels and lineage.

The training-examples topic (:mod:`headwater.labels.schema`) holds each prediction's
input *as served*, as a JSON object, which :func:`headwater.labels.decode_features`
turns into the columnar batch every model reads. :func:`read_examples` reads a slice
(offset ranges per partition) in the log's order, with the
:class:`~headwater.registry.TrainingSlice` that records exactly what was read: offsets,
event-time range, count and a content hash of the examples. Training and reproducing a
version call the same functions, so they see the same rows.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute

from headwater.labels.schema import TRAINING_EXAMPLES_TOPIC
from headwater.labels.served import decode_features
from headwater.log import Log
from headwater.registry import OffsetRange, TopicSlice, TrainingSlice

__all__ = ["ExampleSlice", "examples_hash", "read_examples", "slice_end"]

@dataclass(frozen=True)
class ExampleSlice:
    """A slice of training examples, columnar, in the order they were read."""

    features: dict[str, npt.NDArray[Any]]
    y: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float64]
    versions: npt.NDArray[np.int64]
    label_time: npt.NDArray[np.int64]
    prediction_time: npt.NDArray[np.int64]
    slice: TrainingSlice
    #: Examples read but left out because another model served them, per model.
    others: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: npt.NDArray[Any] | builtins.slice) -> ExampleSlice:
        """The examples at ``rows`` (the slice record is kept as it is)."""
        return ExampleSlice({k: v[rows] for k, v in self.features.items()}, self.y[rows],
                        self.scores[rows], self.versions[rows], self.label_time[rows],
                        self.prediction_time[rows], self.slice, self.others)


def examples_hash(request_ids: Sequence[str], versions: Sequence[int], labels: Sequence[float],
                  features: Sequence[bytes]) -> str:
    """SHA-256 over the examples in order: request id, version, label and the features'
    bytes of each, length-prefixed so no two different slices share a hash."""
    h = hashlib.sha256()
    for rid, version, label, blob in zip(request_ids, versions, labels, features, strict=True):
        key = rid.encode()
        h.update(b"%d:%s%d:%r:%d:" % (len(key), key, version, float(label), len(blob)))
        h.update(blob)
    return h.hexdigest()


def read_examples(log: Log, start: Mapping[int, int] | None = None,
                  stop: Mapping[int, int] | None = None, *,
                  topic: str = TRAINING_EXAMPLES_TOPIC, arm: str | None = None,
                  model: str | None = None) -> ExampleSlice:
    """The examples of ``topic`` in ``[start[p], stop[p])`` of each partition ``p``
    (defaults: from the first kept offset, to the end), partition after partition.

    Each request has one row per version that scored it; the rows kept are those of the
    routing ``arm`` (served or shadow), or with ``arm=None`` those of the version that
    answered. Their features and label are the same; the score and version differ. With
    ``model``, only the examples a version of that model scored are kept (the others are
    counted in :attr:`ExampleSlice.others`). The returned slice records the ranges
    actually read.
    """
    partitions = log.topic(topic).partitions
    tables: list[pa.Table] = []
    ranges: list[OffsetRange] = []
    for p in range(partitions):
        first = (start or {}).get(p, log.start_offsets(topic)[p])
        last = (stop or {}).get(p, log.end_offsets(topic)[p])
        if last <= first:
            continue
        tables.append(log.read_table(topic, [p], start=first, stop=last))
        ranges.append(OffsetRange(partition=p, start=first, end=first + tables[-1].num_rows))
    table = (pa.concat_tables(tables) if tables
             else log.topic(topic).schema.stored_schema().empty_table())
    if arm is None:
        table = table.filter(table.column("served"))
    else:
        table = table.filter(pa.compute.equal(table.column("arm"), arm))
    others: dict[str, int] = {}
    if model is not None:
        ours = pa.compute.equal(table.column("model"), model)
        if not pa.compute.all(ours).as_py():
            counts = table.filter(pa.compute.invert(ours)).column("model").value_counts()
            others = {str(c["values"]): int(c["counts"]) for c in counts.to_pylist()}
            table = table.filter(ours)
    features = table.column("features").to_pylist()
    request_ids = table.column("request_id").to_pylist()
    versions = table.column("version").to_numpy()
    y = table.column("label").to_numpy()
    label_time = table.column("label_time").cast(pa.int64()).to_numpy()
    examples_slice = TrainingSlice(
        topics=(TopicSlice(topic=topic, ranges=tuple(ranges)),),
        event_time_start=int(label_time.min()) if len(label_time) else None,
        event_time_end=int(label_time.max()) + 1 if len(label_time) else None,
        examples=len(y),
        examples_sha256=examples_hash(request_ids, versions.tolist(), y.tolist(), features),
    )
    return ExampleSlice(decode_features(features), y.astype(np.float64),
                    table.column("score").to_numpy().astype(np.float64),
                    versions.astype(np.int64), label_time,
                    table.column("prediction_time").cast(pa.int64()).to_numpy(), examples_slice,
                    others)


def slice_end(examples_slice: TrainingSlice, topic: str = TRAINING_EXAMPLES_TOPIC
              ) -> dict[int, int]:
    """Where a slice of ``topic`` ended, per partition: where the next one starts."""
    for part in examples_slice.topics:
        if part.topic == topic:
            return {r.partition: r.end for r in part.ranges}
    return {}
