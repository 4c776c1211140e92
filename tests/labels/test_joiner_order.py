"""Two servers append their predictions to one partition in batches, so a partition's
offset order is not its time order. An outcome appended after its prediction is joined to
it however the batches interleave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from headwater.labels.join import JoinRule
from headwater.labels.joiner import LabelJoiner
from headwater.log import Log
from headwater.log.embedded import EmbeddedBackend
from headwater.log.records import Fetched
from headwater.serving.prediction_log import PREDICTIONS_TOPIC
from headwater.testing import ManualClock
from tests.labels.test_joiner import SECOND, T0, examples, outcomes, predictions, setup_topics

MS = 1_000


def late(log: Log) -> list[dict[str, Any]]:
    if "outcomes.late" not in {t.name for t in log.topics()}:
        return []
    return [r for f in log.replay("outcomes.late") for r in f.batch.to_pylist()]


class _Interleaved(Log):
    """A log where, right after the joiner first reads the predictions to their end, the
    other processes act: server A's batch lands and the outcome of its request is
    appended, before the joiner looks at the outcomes."""

    between: list[tuple[str, pa.RecordBatch]]

    def read(self, topic: str, partition: int, offset: int = 0,
             max_events: int = 10_000) -> Fetched:
        fetched = super().read(topic, partition, offset, max_events)
        if topic == PREDICTIONS_TOPIC and self.between:
            for name, batch in self.between:
                self.append(name, batch)
            self.between = []
        return fetched


def test_a_prediction_logged_while_the_joiner_steps_is_joined(tmp_path: Path) -> None:
    log = _Interleaved(EmbeddedBackend(tmp_path / "log", fsync="never"))
    log.between = []
    setup_topics(log)
    joiner = LabelJoiner(log, JoinRule(window=600 * SECOND), state_dir=tmp_path / "j",
                         clock=ManualClock(T0))
    log.append(PREDICTIONS_TOPIC, predictions(["b-1"], ["v"], [T0 + 30 * MS]))
    log.between = [(PREDICTIONS_TOPIC, predictions(["a-1"], ["u"], [T0])),
                   ("outcomes", outcomes(["a-1"], ["u"], [1.0], [T0 + 1 * MS]))]
    for _ in range(3):
        joiner.step()
    assert log.between == []  # the other processes did act between the two reads
    assert [r["request_id"] for r in examples(log)] == ["a-1"]
    assert late(log) == []
