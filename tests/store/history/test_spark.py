"""The point-in-time join on Spark (mapInArrow, one entity bucket per task) equals the
local join, on random histories and queries."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.errors import ValidationError
from headwater.features.pointintime import Mode, Queries
from headwater.store.history import FeatureHistory
from tests.extras import import_without
from tests.features.test_engine import FEATURES
from tests.features.test_pointintime import same
from tests.models.adapters import require
from tests.store.history.helpers import rows


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    require("pyspark")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors run Headwater
    session = (SparkSession.builder.master("local[2]").appName("headwater-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@settings(max_examples=15)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e", "f"]), st.integers(0, 300),
                          st.integers(-3, 9)), max_size=50),
       st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "e", "f", "z"]),
                          st.integers(-10, 320)), min_size=1, max_size=25),
       st.integers(1, 6), st.sampled_from(["known_at", "event_time"]))
def test_spark_equals_the_local_join(spark: Any, events: list[tuple[str, int, int]],
                                     queries: list[tuple[str, int]], buckets: int,
                                     mode: Mode) -> None:
    from headwater.store.history.spark import values_at

    table = rows([e[0] for e in events], [e[1] for e in events], list(range(len(events))),
                 appended=[e[1] + (e[2] % 4) * 7 for e in events],
                 x=pa.array([float(e[2]) for e in events], pa.float64()))
    with tempfile.TemporaryDirectory() as root:
        history = FeatureHistory(root, buckets=buckets)
        for c, first in enumerate(range(0, max(len(events), 1), 15)):
            history.write("clicks", table.slice(first, 15), checkpoint=c, task="clicks-0")
        keys = [q[0] for q in queries]
        times = [q[1] for q in queries]
        want = history.values_at(FEATURES, "clicks", Queries(pa.array(keys), np.array(times)),
                                 mode=mode)
        frame = spark.createDataFrame([(i, k, t) for i, (k, t) in enumerate(queries)],
                                      "row long, entity string, time long")
        got = values_at(frame, root, FEATURES, "clicks", mode=mode).toArrow().sort_by("row")
    assert got.column("row").to_pylist() == list(range(len(queries)))
    for f in FEATURES:
        for i, (g, w) in enumerate(zip(got.column(f.name).to_pylist(),
                                       want.column(f.name).to_pylist(), strict=True)):
            assert same(g, w), (f.name, i, g, w)


def test_timestamps_and_integer_keys(spark: Any, tmp_path: Any) -> None:
    from headwater.store.history.spark import values_at

    second = 1_000_000
    start = 1_714_521_600 * second  # 2024-05-01T00:00:00Z
    history = FeatureHistory(tmp_path, buckets=3)
    history.write("clicks", rows([7, 7, 8], [start, start + 5 * second, start + 9 * second],
                                 [0, 1, 2], x=[1.0, 2.0, 4.0]), checkpoint=0, task="clicks-0")
    at = datetime(2024, 5, 1, 0, 0, 6, tzinfo=UTC)
    frame = spark.createDataFrame([(7, at), (8, at), (9, at)], "user long, at timestamp")
    chosen = [FEATURES[0], FEATURES[3]]  # count, last(x)
    got = values_at(frame, str(tmp_path), chosen, "clicks", entity="user",
                    time="at").toArrow().sort_by("user")
    assert got.column("last_x").to_pylist() == [2.0, None, None]
    want = history.values_at(chosen, "clicks", Queries(pa.array([7, 8, 9]),
                                                       np.full(3, start + 6 * second)))
    assert got.column("n_total").to_pylist() == want.column("n_total").to_pylist()
    with pytest.raises(ValidationError, match="no column 'when'"):
        values_at(frame, str(tmp_path), FEATURES, "clicks", entity="user", time="when")


def test_a_missing_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    error = import_without(monkeypatch, "headwater.store.history.spark", "pyspark",
                           "pyspark.sql")
    assert "pip install 'headwater[spark]'" in str(error)
