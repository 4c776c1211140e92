"""The Elec2 loop: every prediction is labelled once, lineage says what happened, and the
scorecard is what the log recorded."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from headwater.datasets import elec2
from headwater.demos.elec2 import MODEL, STRATEGIES, Elec2Loop
from headwater.demos.scorecard import build_report
from headwater.evaluation.arms import score_strategies
from headwater.labels import TRAINING_EXAMPLES_TOPIC
from headwater.models.metrics import accuracy

ROWS = 1_200  # 25 days


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Elec2Loop:
    done = Elec2Loop(tmp_path_factory.mktemp("elec2") / "loop", rows=ROWS)
    done.run()
    return done


def test_every_prediction_becomes_one_example_per_arm_with_the_true_label(loop: Elec2Loop
                                                                          ) -> None:
    table = pa.Table.from_batches([f.batch for f in loop.log.replay(TRAINING_EXAMPLES_TOPIC)])
    assert table.num_rows == len(STRATEGIES) * (ROWS - 1)  # the last row's label never came
    labels = elec2.load(limit=ROWS).column("label").to_numpy()
    for arm in STRATEGIES:
        rows = table.filter(pa.compute.equal(table.column("arm"), arm))
        ids = [int(r.split("-")[1]) for r in rows.column("request_id").to_pylist()]
        assert sorted(ids) == list(range(ROWS - 1))
        assert rows.column("label").to_numpy().tolist() == labels[ids].astype(float).tolist()
        assert set(rows.column("source").to_pylist()) == {"explicit"}
    served = table.filter(table.column("served"))
    assert set(served.column("arm").to_pylist()) == {"continual"}


def test_lineage_records_each_strategy(loop: Elec2Loop) -> None:
    versions = loop.registry.versions(MODEL)
    by = {name: [v for v in versions if v.lineage.created_by.trainer == name]
          for name in STRATEGIES}
    static = by["static"]
    assert len(static) == 1
    assert static[0].lineage.parent is None
    training = static[0].lineage.training
    assert training is not None
    assert training.event_time_end is not None
    assert training.event_time_end <= loop.static_until  # the first week only
    assert all(v.lineage.parent is None for v in by["stateless"])
    assert all(v.lineage.created_by.trigger == "time" for v in by["stateless"])
    stateful = [v for v in by["stateful"] if v.status != "rejected"]
    assert len(stateful) >= 20
    for older, newer in itertools.pairwise(stateful):
        assert newer.lineage.parent == older.version  # each day updates the last one
    continual = by["continual"]
    assert len(continual) > len(stateful)
    for v in continual:
        assert {"rows", "cpu_s", "wall_s"} <= set(v.lineage.metrics)
    slices = [v.lineage.training for v in continual]
    ends = [s.topics[0].ranges[0].end for s in slices if s is not None and s.topics[0].ranges]
    assert ends == sorted(ends)


def test_the_scorecard_is_what_the_log_recorded(loop: Elec2Loop, tmp_path: Path) -> None:
    costs = {name: trainer.cost for name, trainer in loop.trainers.items()}
    scores = score_strategies(loop.log, loop.registry, MODEL, list(STRATEGIES), costs,
                              start=loop.static_until)
    labels = loop.labels()
    first = int(np.searchsorted(loop._times, loop.static_until))
    for s in scores.strategies:
        assert s.examples == ROWS - 1 - first
        _when, y, scored = scores.series[s.name]
        assert y.tolist() == labels[first:ROWS - 1].tolist()
        assert s.accuracy == accuracy(y, scored)
    assert scores.no_change_accuracy == pytest.approx(
        float(np.mean(labels[first + 1:ROWS - 1] == labels[first:ROWS - 2])))
    continual = next(s for s in scores.strategies if s.name == "continual")
    static = next(s for s in scores.strategies if s.name == "static")
    assert continual.cost.rows > static.cost.rows
    report = build_report(scores, loop.registry, MODEL, rows=ROWS, wall_s=1.0)
    report.write(tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "<svg" in page
    assert "continual" in page



def test_a_stateful_version_of_the_loop_reproduces_from_the_log(loop: Elec2Loop) -> None:
    from headwater.learning import reproduce

    versions = [v for v in loop.registry.versions(MODEL)
                if v.lineage.created_by.trainer == "stateful" and v.lineage.parent is not None]
    version = versions[-1]
    assert version.lineage.created_by.arm == "stateful"
    result = reproduce(loop.registry, loop.log, MODEL, version.version)
    assert result.matches, result.failed


def test_the_ideal_learns_the_served_features_on_arrival(loop: Elec2Loop, tmp_path: Path
                                                         ) -> None:
    scores = score_strategies(loop.log, loop.registry, MODEL, list(STRATEGIES),
                              {name: t.cost for name, t in loop.trainers.items()},
                              start=loop.static_until)
    ideal, (when, y, scored) = loop.ideal()
    continual_when, continual_y, _ = scores.series["continual"]
    assert ideal.examples == len(continual_y)
    assert when.tolist() == continual_when.tolist()
    assert y.tolist() == continual_y.tolist()
    assert ideal.cost.rows == ROWS - 1  # every label, from the first
    assert ideal.accuracy == accuracy(y, scored)
    assert np.std(scored) > 0.1
    report = build_report(replace(scores, strategies=[*scores.strategies, ideal],
                                  series={**scores.series, "ideal": (when, y, scored)}),
                          loop.registry, MODEL, rows=ROWS, wall_s=1.0)
    report.write(tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "the same model and features learning each label" in page
    assert "no change" in page  # the baseline over time, beside the strategies
