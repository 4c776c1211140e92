"""``headwater demo --json`` as a user runs it: a separate process, its figures read back.

The demo runs on its own embedded log and model store in its directory (it is a replay
on a simulated clock, whatever backends the home names), so it is run once here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headwater.config import Settings
from headwater.labels import TRAINING_EXAMPLES_TOPIC
from headwater.log import open_log
from tests.processes import headwater

ROWS = 1_500  # about a month: a week for the static model, three to judge on

FLAT = ("continual_accuracy", "continual_auc", "ideal_accuracy", "ideal_auc",
        "nochange_accuracy", "static_auc", "stateless_daily_auc", "stateless_cpu_s",
        "continual_cpu_s", "continual_reverts")


def test_headwater_demo_json_prints_the_flat_figures(tmp_path: Path) -> None:
    done = headwater(tmp_path, "demo", "--dir", str(tmp_path / "demo"), "--rows", str(ROWS),
                     "--json", timeout=600)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert set(FLAT) <= set(figures)
    for key in FLAT:
        assert isinstance(figures[key], int | float), key
        assert math.isfinite(figures[key]), key
    strategies = figures["strategies"]
    assert figures["rows"] == ROWS
    assert set(strategies) == {"static", "stateless", "stateful", "continual", "ideal"}
    assert figures["continual_auc"] == strategies["continual"]["auc"]
    assert figures["stateless_daily_auc"] == strategies["stateless"]["auc"]
    assert figures["stateless_cpu_s"] == strategies["stateless"]["cpu_s"]
    assert figures["nochange_accuracy"] == figures["no_change_accuracy"]
    # the static model reads features that mean the same thing all along: it ranks well
    assert figures["static_auc"] > 0.85
    assert figures["continual_auc"] > 0.9
    assert 0.5 < figures["nochange_accuracy"] < figures["continual_accuracy"]
    # the ideal is the ceiling of the same model on the same features
    assert figures["ideal_auc"] >= figures["continual_auc"] - 0.005
    assert figures["ideal_accuracy"] >= figures["continual_accuracy"] - 0.01
    assert figures["continual_cpu_s"] > 0
    assert figures["stateless_cpu_s"] > 0
    assert figures["continual_reverts"] >= 0
    assert figures["continual_rows_learnt"] == ROWS - 1
    assert Path(figures["report"]).exists()

    with open_log(str(tmp_path / "demo" / "elec2" / "log"), settings=Settings()) as log:
        table = pa.Table.from_batches([f.batch for f in log.replay(TRAINING_EXAMPLES_TOPIC)])
    static = table.filter(pc.equal(table.column("arm"), "static"))
    scores = static.column("score").to_numpy()[-500:]
    assert np.std(scores) > 0.1  # not one constant answer
    served = [json.loads(f) for f in static.column("features").to_pylist()[-500:]]
    assert all("date" not in row for row in served)
    assert {"last_label", "price_vs_1d", "price_change", "period", "day"} <= set(served[0])
