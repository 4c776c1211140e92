"""What a joiner's step writes to disk follows what the step read, not how many
predictions are open: counted in bytes written (the kernel's count), never in time."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from headwater.labels import OUTCOMES_SCHEMA
from headwater.labels.join import JoinRule
from headwater.labels.joiner import LabelJoiner
from headwater.log import Log
from headwater.serving.prediction_log import PREDICTIONS_SCHEMA, PREDICTIONS_TOPIC
from headwater.testing import ManualClock, MemoryBackend
from tests.labels.test_joiner import outcomes, predictions

T0 = 1_700_000_000_000_000
HOUR = 3_600_000_000
IO = Path("/proc/self/io")


def written() -> int:
    """Bytes this process has passed to write calls so far (Linux)."""
    for line in IO.read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def bytes_per_step(tmp_path: Path, open_predictions: int, steps: int) -> tuple[list[int], int]:
    """Open ``open_predictions`` predictions, then run ``steps`` steps of 50 new
    predictions and 50 outcomes each (closing 50 open ones): the bytes each step wrote,
    and the size of the state then (its snapshot)."""
    clock = ManualClock(T0)
    log = Log(MemoryBackend(clock=clock), clock=clock)  # the log itself writes no file
    log.create_topic(PREDICTIONS_TOPIC, PREDICTIONS_SCHEMA)
    log.create_topic("outcomes", OUTCOMES_SCHEMA)
    n = open_predictions
    for lo in range(0, n, 10_000):
        hi = min(lo + 10_000, n)
        log.append(PREDICTIONS_TOPIC, predictions([f"r{i}" for i in range(lo, hi)],
                                                  [f"u{i % 5000}" for i in range(lo, hi)],
                                                  [T0 + i for i in range(lo, hi)]))
    state = tmp_path / f"state-{n}"
    joiner = LabelJoiner(log, JoinRule(window=HOUR), state_dir=state, clock=clock,
                         fsync="never", compact_bytes=256 << 10)
    while joiner.step().predictions:
        pass
    assert joiner.open_requests == n
    per_step = []
    for k in range(steps):
        new = range(n + 50 * k, n + 50 * (k + 1))
        log.append(PREDICTIONS_TOPIC, predictions([f"r{i}" for i in new],
                                                  [f"u{i % 5000}" for i in new],
                                                  [T0 + n + i for i in new]))
        closed = range(50 * k, 50 * (k + 1))  # the oldest open ones get their labels
        log.append("outcomes", outcomes([f"r{i}" for i in closed],
                                        [f"u{i % 5000}" for i in closed],
                                        [1.0] * 50, [T0 + 2 * n + 50 * k] * 50))
        before = written()
        assert joiner.step().examples == 50
        per_step.append(written() - before)
    assert joiner.open_requests == n
    joiner.close()
    return per_step, (state / "partition-0" / "snapshot").stat().st_size


@pytest.mark.skipif(not IO.exists(), reason="counts bytes written through /proc/self/io")
def test_bytes_written_per_step_do_not_grow_with_open_predictions(tmp_path: Path) -> None:
    """A step writes its record (what it read); now and then, once the records have
    outgrown the state, the state is written whole instead of them (at most as much
    again, amortised). A hundred times the open predictions change neither."""
    few, few_state = bytes_per_step(tmp_path, 500, steps=200)
    many, many_state = bytes_per_step(tmp_path, 50_000, steps=200)
    record = statistics.median(few)
    assert abs(statistics.median(many) - record) < 0.05 * record  # the same record
    assert record < many_state / 100  # where writing the state each step would cost it all
    for steps, state in ((few, few_state), (many, many_state)):
        compactions = [b for b in steps if b > 3 * record]
        # each one rewrote the state once the records since the last one had outgrown it
        assert len(compactions) <= 1 + sum(steps) // state
        assert sum(steps) <= 2 * record * len(steps) + state  # amortised: twice the records

