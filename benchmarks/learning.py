"""Benchmark of online learning on Elec2: the built-in linear model against River.

Prints one JSON object to stdout (progress goes to stderr). Both contenders read the
same features — the 8 numeric columns ``date`` … ``transfer`` of the packaged Elec2,
the set River's ``datasets.Elec2`` yields — in row order, in the same run:

- **ours**: :class:`headwater.models.LogisticRegression` (FTRL-Proximal with online
  standardisation; hyper-parameters in ``model.params``), learning the stream in
  batches of ``--batch-size`` rows with per-row semantics;
- **River**: ``compose.Pipeline(preprocessing.StandardScaler(),
  linear_model.LogisticRegression())`` (defaults) learning with ``learn_one`` per row,
  over dicts built before the clock starts.

Figures:

- ``learn_rows_per_s`` / ``river_learn_rows_per_s`` / ``learn_vs_river``: learning the
  whole stream from a fresh model; each contender's best wall time over ``--rounds``
  interleaved rounds (the machine is shared: the minimum is the least disturbed run);
  the ratio is River's time over ours; ``learn_vs_river_cpu`` the same with CPU time
  (``time.process_time``), which other processes on the machine disturb less.
- ``auc``, ``accuracy``, ``log_loss``, ``kappa_temporal``: prequential (test-then-train,
  row by row) evaluation of ours via ``predict_learn``, which scores each row just
  before learning it; ``river_*`` the same for River (``predict_proba_one`` then
  ``learn_one``). ``kappa_temporal`` is the gain over predicting the previous label.
  AUC is exact (:func:`headwater.models.metrics.roc_auc`).
- ``defaults``: ours with default hyper-parameters; ``per_row_exact``: ours with
  ``block=1`` (rates refreshed every row: exactly FTRL-Proximal), to show what the
  default blocks of rows cost in quality.
- ``last_label``: ours with one more feature, the previous row's label (a legal
  streaming feature: Elec2's label is known 30 minutes later, when the next row comes).
- ``predict_one_us`` / ``river_predict_one_us``: one single-row prediction from a dict.

Usage::

    .venv/bin/python benchmarks/learning.py
    .venv/bin/python benchmarks/learning.py --rounds 3 --batch-size 45312
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from headwater.datasets import elec2
from headwater.models import LogisticRegression, from_arrow
from headwater.models.metrics import accuracy, log_loss, roc_auc

FEATURES = ["date", "day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand",
            "transfer"]
#: The benchmarked configuration: fast rates and forgetting for a drifting stream.
PARAMS: dict[str, Any] = {"alpha": 3.0, "decay": 0.99}

Columns = dict[str, npt.NDArray[Any]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()

    table = elec2.load()
    columns = from_arrow(table, FEATURES)
    y = table.column("label").to_numpy()
    rows = [dict(zip(FEATURES, values, strict=True))
            for values in zip(*(columns[name].astype(float).tolist() for name in FEATURES),
                              strict=True)]
    labels = [bool(v) for v in y.tolist()]
    n = len(y)
    river = _river()
    if river is None:
        sys.exit("River is needed for the baseline: pip install river")

    ours_s: list[float] = []
    river_s: list[float] = []
    ours_cpu: list[float] = []
    river_cpu: list[float] = []
    for round_ in range(args.rounds):
        _log(f"round {round_ + 1}/{args.rounds}")
        contenders: list[tuple[list[float], list[float], Callable[[], None]]] = [
            (ours_s, ours_cpu, lambda: _learn_ours(columns, y, args.batch_size)),
            (river_s, river_cpu, lambda: _learn_river(river(), rows, labels))]
        for wall, cpu, run in contenders if round_ % 2 == 0 else contenders[::-1]:
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)

    scores = _prequential(LogisticRegression(**PARAMS), columns, y, args.batch_size)
    river_scores = _prequential_river(river(), rows, labels)
    no_change = np.r_[0, y[:-1]]
    with_label = dict(columns, last_label=no_change)
    exact = LogisticRegression(**PARAMS, block=1)
    start = time.perf_counter()
    exact_scores = _prequential(exact, columns, y, args.batch_size)
    exact_rate = n / (time.perf_counter() - start)

    trained = LogisticRegression(**PARAMS)
    trained.learn(columns, y)
    river_trained = river()
    for x, label in zip(rows, labels, strict=True):
        river_trained.learn_one(x, label)
    report: dict[str, Any] = {
        "dataset": "elec2", "rows": n, "features": FEATURES, "batch_size": args.batch_size,
        "rounds": args.rounds,
        "model": {"adapter": "headwater.models.LogisticRegression",
                  "params": trained.params()},
        "river_model": "compose.Pipeline(preprocessing.StandardScaler(), "
                       "linear_model.LogisticRegression())",
        "learn_rows_per_s": round(n / min(ours_s)),
        "river_learn_rows_per_s": round(n / min(river_s)),
        "learn_vs_river": round(min(river_s) / min(ours_s), 2),
        "learn_vs_river_cpu": round(min(river_cpu) / min(ours_cpu), 2),
        **_quality(y, scores),
        **{f"river_{k}": v for k, v in _quality(y, river_scores).items()},
        "no_change_accuracy": round(accuracy(y, no_change), 4),
        "defaults": _quality(y, _prequential(LogisticRegression(), columns, y, args.batch_size)),
        "per_row_exact": {"block": 1, **_quality(y, exact_scores),
                          "learn_rows_per_s": round(exact_rate)},
        "last_label": _quality(y, _prequential(LogisticRegression(**PARAMS), with_label, y,
                                               args.batch_size)),
        "predict_one_us": _per_call_us(lambda x: trained.predict_one(x), rows),
        "river_predict_one_us": _per_call_us(lambda x: river_trained.predict_proba_one(x),
                                             rows),
    }
    print(json.dumps(report, indent=2))


def _river() -> Callable[[], Any] | None:
    try:
        from river import compose, linear_model, preprocessing
    except ImportError:
        return None
    return lambda: compose.Pipeline(preprocessing.StandardScaler(),
                                    linear_model.LogisticRegression())


def _learn_ours(columns: Columns, y: npt.NDArray[Any], batch_size: int) -> None:
    model = LogisticRegression(**PARAMS)
    for start in range(0, len(y), batch_size):
        model.learn({k: v[start: start + batch_size] for k, v in columns.items()},
                    y[start: start + batch_size])


def _learn_river(model: Any, rows: list[dict[str, float]], labels: list[bool]) -> None:
    learn = model.learn_one
    for x, label in zip(rows, labels, strict=True):
        learn(x, label)


def _prequential(model: LogisticRegression, columns: Columns, y: npt.NDArray[Any],
                 batch_size: int) -> npt.NDArray[np.float64]:
    parts = [model.predict_learn({k: v[start: start + batch_size] for k, v in columns.items()},
                                 y[start: start + batch_size])
             for start in range(0, len(y), batch_size)]
    return np.concatenate(parts)


def _prequential_river(model: Any, rows: list[dict[str, float]],
                       labels: list[bool]) -> npt.NDArray[np.float64]:
    scores = []
    for x, label in zip(rows, labels, strict=True):
        scores.append(model.predict_proba_one(x).get(True, 0.0))
        model.learn_one(x, label)
    return np.asarray(scores)


def _quality(y: npt.NDArray[Any], scores: npt.NDArray[np.float64]) -> dict[str, float]:
    hits = accuracy(y, scores)
    baseline = accuracy(y[1:], y[:-1].astype(float))  # predict the previous label
    return {"auc": round(roc_auc(y, scores), 4), "accuracy": round(hits, 4),
            "log_loss": round(log_loss(y, scores), 4),
            "kappa_temporal": round((hits - baseline) / (1.0 - baseline), 4)}


def _per_call_us(call: Callable[[dict[str, float]], object],
                 rows: list[dict[str, float]]) -> float:
    sample = rows[:5000]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for x in sample:
            call(x)
        best = min(best, time.perf_counter() - start)
    return round(best / len(sample) * 1e6, 2)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
