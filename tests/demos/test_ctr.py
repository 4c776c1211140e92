"""The click-through demo: clicks become natural labels exactly once, silence a 0."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from headwater.demos.ctr import MODEL, CtrLoop
from headwater.labels import TRAINING_EXAMPLES_TOPIC


def test_clicks_are_the_positives_and_silence_the_negatives(tmp_path: Path) -> None:
    loop = CtrLoop(tmp_path / "ctr", sessions=200, users=30, impressions=5)
    try:
        stats = loop.run()
        table = pa.Table.from_batches([f.batch for f in loop.log.replay(TRAINING_EXAMPLES_TOPIC)])
        served = table.filter(table.column("served"))
        assert served.num_rows == stats.impressions == 1_000
        labels = served.column("label").to_pylist()
        sources = served.column("source").to_pylist()
        assert sum(labels) == stats.clicks > 0
        assert {(y, s) for y, s in zip(labels, sources, strict=True)} == {
            (1.0, "outcome"), (0.0, "timeout")}
        assert set(table.column("arm").to_pylist()) == {"continual", "static"}
        versions = loop.registry.versions(MODEL)
        assert any(v.lineage.created_by.trainer == "static" for v in versions)
        assert any(v.lineage.parent is not None for v in versions)  # continual updates
        page = loop.report().to_html()
        assert "Cold start" in page
        assert "<svg" in page
    finally:
        loop.close()
