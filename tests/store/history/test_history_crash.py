"""SIGKILL a writer that also compacts, at random moments; recover as the engine does.

The child writes checkpoints (each spanning three day partitions) and compacts every
few; it prints a checkpoint's number once ``write`` returned (the engine would commit
its offsets then). After each kill: every acknowledged checkpoint is in the history
exactly once, whatever the kill interrupted; ``discard_after`` with the last acknowledged
checkpoint removes the rest, and the next child resumes after it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from headwater.store.history import FeatureHistory

ROOT = Path(__file__).resolve().parents[3]
ROWS = 40  # per checkpoint

CHILD = f"""
import sys
from headwater.store.history import FeatureHistory
from tests.store.history.helpers import DAY, rows

history = FeatureHistory(sys.argv[1])
for c in range(int(sys.argv[2]), 10**6):
    n = {ROWS}
    history.write("s", rows(["abcd"[i % 4] for i in range(n)],
                            [(c % 5) * DAY + (i % 3) * DAY + i for i in range(n)],
                            [c * n + i for i in range(n)]), checkpoint=c, task="s-0")
    print(c, flush=True)
    if c % 3 == 2:
        history.compact("s")
"""


def run_until_killed(root: Path, start: int, rng: random.Random) -> int:
    """Start a child at checkpoint ``start``, kill it at a random moment; the last
    acknowledged checkpoint (``start - 1`` if none)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(start)],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    acked, wanted = start - 1, rng.randint(1, 8)
    for line in child.stdout:
        acked = int(line)
        if acked - start + 1 >= wanted:
            break
    time.sleep(rng.uniform(0, 0.05))  # land somewhere inside the next write or compaction
    child.send_signal(signal.SIGKILL)
    for line in child.stdout:  # acknowledgements printed before the kill landed
        acked = int(line)
    child.wait()
    return acked


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_a_killed_writer_recovers_to_exactly_its_acknowledged_checkpoints(
        tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    acked = -1
    for _ in range(6):
        acked = run_until_killed(tmp_path, acked + 1, rng)
        history = FeatureHistory(tmp_path)
        counts = Counter(o // ROWS for o in history.scan("s").column("_offset").to_pylist())
        for c in range(acked + 1):  # acknowledged: whole, once
            assert counts[c] == ROWS, (c, counts[c])
        history.discard_after("s", "s-0", acked)
        counts = Counter(o // ROWS for o in history.scan("s").column("_offset").to_pylist())
        assert counts == Counter(dict.fromkeys(range(acked + 1), ROWS))
        assert not list(tmp_path.rglob(".s-0-*.tmp"))
    history.compact("s")
    assert sorted(history.scan("s").column("_offset").to_pylist()) == list(
        range((acked + 1) * ROWS))
