"""Reproduce a served state (version, update): rebuild it from the log, check what it served.

A server that applies a continual trainer's updates serves the state (version, update
offset), and logs it with each prediction. :func:`reproduce_served` rebuilds that state
twice and compares:

- **from the log**: the version's artifact from the model store with the update read from
  the ``model_updates`` topic applied (:func:`headwater.models.updates.apply_update`),
  as the server built it. It rescores every logged prediction served with that state
  (the model input as served, from the predictions topic) and compares with the logged
  score: they are equal, to the bit, or the served state is not what the log says.
- **by replay**: the version's model learning the update's recorded slice of training
  examples with the trainers' own loop (:func:`~headwater.learning.score_then_learn`),
  scored on the same rows; it agrees with the state to rounding (the trainer learnt the
  slice in the steps the examples arrived in, the replay in ``batch_rows`` steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError
from headwater.labels.schema import PREDICTIONS_TOPIC
from headwater.learning.examples import read_examples
from headwater.learning.score_then_learn import BATCH_ROWS, score_then_learn
from headwater.log import Log
from headwater.models.updates import apply_update
from headwater.registry import ModelRegistry
from headwater.registry.updates import MODEL_UPDATES_TOPIC, ModelUpdate, decode

__all__ = ["ServedReproduction", "reproduce_served"]


@dataclass(frozen=True)
class ServedReproduction:
    """What :func:`reproduce_served` found.

    ``predictions``: logged predictions served with the state; ``max_score_gap``: the
    largest difference between a logged score and the state rebuilt from the log;
    ``examples``: the examples of the update's slice replayed; ``replay_max_gap``: the
    largest difference between the replayed model and the state, on the logged rows (on
    the slice's own rows when none was logged). ``matches`` when the first gap is 0 and
    the second within ``tolerance``.
    """

    model: str
    version: int
    update: int
    predictions: int
    max_score_gap: float
    examples: int
    replay_max_gap: float
    tolerance: float

    @property
    def matches(self) -> bool:
        return self.max_score_gap == 0.0 and self.replay_max_gap <= self.tolerance


def reproduce_served(registry: ModelRegistry, log: Log, name: str, ref: int | str,
                     update: int, *, predictions_topic: str = PREDICTIONS_TOPIC,
                     updates_topic: str = MODEL_UPDATES_TOPIC, tolerance: float = 1e-6,
                     batch_rows: int | None = None) -> ServedReproduction:
    """Rebuild (version ``ref``, update at offset ``update``) of ``name`` and check it (see
    the module docstring). An offset that holds no update of that version is a
    :class:`~headwater.errors.ValidationError` naming ``update``."""
    version = registry.get(name, ref)
    found = _update_at(log, updates_topic, update)
    if found.model != name or found.base != version.version:
        raise ValidationError("update", f"the update at offset {update} of {updates_topic!r} "
                                        f"is of {found.model} v{found.base}, not of {name} "
                                        f"v{version.version}")
    state = apply_update(registry.load(name, version.version).model, found.update)
    rows, scores = _served_with(log, predictions_topic, name, version.version, update,
                                since=found.ts)
    gap = _max_gap(np.array([state.predict_one(r) for r in rows]), np.array(scores))
    replayed = registry.load(name, version.version).model
    creator = version.lineage.created_by
    features, y = _slice(log, found, arm=creator.arm, model=creator.examples_of or name)
    score_then_learn(replayed, features, y, batch_rows=batch_rows or creator.batch_rows
                     or BATCH_ROWS)
    if rows:
        replay_gap = _max_gap(np.array([replayed.predict_one(r) for r in rows]),
                              np.array([state.predict_one(r) for r in rows]))
    else:
        replay_gap = _max_gap(replayed.predict(features), state.predict(features))
    return ServedReproduction(name, version.version, update, len(rows), gap, len(y),
                              replay_gap, tolerance)


def _update_at(log: Log, topic: str, offset: int) -> ModelUpdate:
    start, end = log.start_offsets(topic)[0], log.end_offsets(topic)[0]
    if not start <= offset < end:
        raise ValidationError("update", f"offset {offset} is not in topic {topic!r} (it holds "
                                        f"{start}..{end - 1})")
    return decode(log.read(topic, 0, offset, 1).batch)[0]


def _served_with(log: Log, topic: str, name: str, version: int, update: int, *, since: int
                 ) -> tuple[list[dict[str, Any]], list[float]]:
    """The model inputs and scores of the predictions served with (version, update)."""
    rows: list[dict[str, Any]] = []
    scores: list[float] = []
    partitions = log.topic(topic).partitions
    for p in range(partitions):
        first = log.seek(topic, p, event_time=since)
        for fetched in log.replay(topic, [p], start=first):
            table = fetched.batch.to_pydict()
            if "update" not in table:  # written by an earlier version: no updates served
                break
            for i, state in enumerate(table["update"]):
                if (state == update and table["version"][i] == version
                        and table["model"][i] == name):
                    rows.append(msgspec.json.decode(table["features"][i]))
                    scores.append(table["score"][i])
    return rows, scores


def _slice(log: Log, update: ModelUpdate, *, arm: str | None, model: str
           ) -> tuple[dict[str, npt.NDArray[Any]], npt.NDArray[Any]]:
    """The examples of the update's recorded slice, topic after topic."""
    features: dict[str, list[npt.NDArray[Any]]] = {}
    ys = []
    for topic in update.training.topics:
        partitions = log.topic(topic.topic).partitions
        start = dict.fromkeys(range(partitions), 0)
        stop = dict.fromkeys(range(partitions), 0)
        for r in topic.ranges:
            start[r.partition], stop[r.partition] = r.start, r.end
        part = read_examples(log, start, stop, topic=topic.topic, arm=arm, model=model)
        for column, values in part.features.items():
            features.setdefault(column, []).append(values)
        ys.append(part.y)
    y = np.concatenate(ys) if ys else np.zeros(0)
    return {k: np.concatenate(v) for k, v in features.items()}, y


def _max_gap(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    return float(np.max(np.abs(a - b))) if len(a) else 0.0

