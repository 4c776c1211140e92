"""Training slices: read the examples a slice of the log holds, and describe a slice.

A :class:`~headwater.registry.TrainingSlice` names offset ranges of topics. Its
examples are the rows of those ranges in *slice order* — by event time, ties broken by
the slice's topic order, then partition, then offset — decoded by
:func:`headwater.models.examples.examples_from_batch` (the topic's key and event-time
columns are not features). A trainer calls :func:`training_slice` to read its ranges
and get both the examples to learn and the lineage slice to record; ``headwater
models reproduce`` calls :func:`read_slice` on the recorded slice and gets the same
examples back, as long as the log still holds them.

>>> from headwater.log import Log, Schema
>>> from headwater.testing import MemoryBackend
>>> log = Log(MemoryBackend())
>>> _ = log.create_topic("examples", Schema.of(
...     {"user": "string", "x": "float64", "label": "float64", "ts": "timestamp"},
...     key="user", event_time="ts"))
>>> _ = log.append("examples", [
...     {"user": "ada", "x": 2.0, "label": 1.0, "ts": "2024-01-01T00:00:01Z"},
...     {"user": "bob", "x": -1.0, "label": 0.0, "ts": "2024-01-01T00:00:00Z"}])
>>> training, examples = training_slice(log, {"examples": {0: (0, 2)}})
>>> examples.features["x"].tolist(), training.examples
([-1.0, 2.0], 2)
>>> read_slice(log, training).examples_sha256 == training.examples_sha256
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import OffsetOutOfRangeError, ValidationError
from headwater.log import Log
from headwater.models.examples import Examples, examples_from_batch, examples_sha256
from headwater.registry.lineage import OffsetRange, TopicSlice, TrainingSlice

__all__ = ["SliceData", "read_slice", "training_slice"]


class SliceData(NamedTuple):
    """What a slice of the log holds now: its examples, their hash, and the event-time
    range of its rows (``[start, end)``, ``None`` when it has none)."""

    examples: Examples
    examples_sha256: str
    event_time_start: int | None
    event_time_end: int | None


def read_slice(log: Log, training: TrainingSlice, *, label: str = "label") -> SliceData:
    """Read the examples of ``training`` from ``log``, in slice order.

    A range the log no longer holds whole (removed by retention, or past the end)
    raises :class:`~headwater.errors.OffsetOutOfRangeError`; topics of different schemas
    a :class:`~headwater.errors.ValidationError`.
    """
    tables: list[pa.Table] = []
    times: list[npt.NDArray[np.int64]] = []
    schema = None
    exclude: tuple[str, ...] = ()
    for topic in training.topics:
        info = log.topic(topic.topic)
        if schema is None:
            schema = info.schema
            exclude = tuple(n for n in (schema.key, schema.event_time) if n is not None)
        elif info.schema != schema:
            raise ValidationError(f"training.topics.{topic.topic}", "a slice's topics must "
                                  "share one schema")
        for r in topic.ranges:
            batches = [f.batch for f in log.replay(topic.topic, [r.partition], start=r.start,
                                                   stop=r.end)]
            got = sum(b.num_rows for b in batches)
            first = batches[0].column("_offset")[0].as_py() if got else None
            if got != r.end - r.start or (got and first != r.start):
                start, end = log.backend.offsets(topic.topic, r.partition)
                raise OffsetOutOfRangeError(
                    f"topic {topic.topic!r} partition {r.partition}: offsets {r.start}..{r.end} "
                    f"are not all in the log (it holds {start}..{end})")
            if got:
                table = pa.Table.from_batches(batches)
                tables.append(table)
                times.append(_micros(table.column(info.schema.event_time)))
    if not tables:
        return SliceData(Examples({}, np.zeros(0)), examples_sha256(Examples({}, np.zeros(0))),
                         None, None)
    rows = pa.concat_tables(tables)
    event_times = np.concatenate(times)
    order = np.argsort(event_times, kind="stable")
    examples = examples_from_batch(rows.take(pa.array(order)), label=label, exclude=exclude)
    return SliceData(examples, examples_sha256(examples), int(event_times.min()),
                     int(event_times.max()) + 1)


def training_slice(log: Log, ranges: Mapping[str, Mapping[int, tuple[int, int]]], *,
                   label: str = "label") -> tuple[TrainingSlice, Examples]:
    """The lineage slice of ``ranges`` (topic → partition → ``(start, end)`` offsets) and
    its examples, for a trainer to learn them and record where they came from."""
    training = TrainingSlice(topics=tuple(
        TopicSlice(topic=topic, ranges=tuple(
            OffsetRange(partition=p, start=start, end=end)
            for p, (start, end) in sorted(by_partition.items())))
        for topic, by_partition in ranges.items()))
    data = read_slice(log, training, label=label)
    training = TrainingSlice(topics=training.topics, event_time_start=data.event_time_start,
                             event_time_end=data.event_time_end, examples=data.examples.rows,
                             examples_sha256=data.examples_sha256)
    return training, data.examples


def _micros(column: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    return np.asarray(column.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
