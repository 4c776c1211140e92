"""Evaluation in production: is a model version good enough to serve, and is it better?

Nothing changes what is served without evidence. The evidence comes in stages, each a
module with a sans-I/O core that reads columnar examples and returns a result that can
describe itself as a :class:`~headwater.reports.Report`:

- :mod:`~headwater.evaluation.metrics`: streaming metrics (accuracy, log loss, exact
  ROC AUC, kappa-temporal, MAE, RMSE), cumulative or over the last N examples;
- :mod:`~headwater.evaluation.backtest`: train on one period of the log, test on the
  next, walk-forward, with features as known at prediction time and leaks refused;
- :mod:`~headwater.evaluation.prequential`: test-then-train with the labels' delay (the
  promotion gate that judges on such scores is :class:`headwater.learning.Gate`);
- :mod:`~headwater.evaluation.shadow`: a challenger scored in the shadow of the
  champion: agreement and metric differences with intervals;
- :mod:`~headwater.evaluation.ab`: a sticky A/B split with a sequential test
  (:mod:`~headwater.stats.sequential`) that is safe to peek at;
- :mod:`~headwater.evaluation.canary_watch`: a canary watched live from the log, driving a
  running server through its admin API (``headwater eval rollout``);
- :mod:`~headwater.evaluation.canary`: a ramp with guardrails
  (:mod:`~headwater.evaluation.guardrails`, :mod:`~headwater.evaluation.drift`) and
  automatic rollback through the registry and the serving policy.

>>> import numpy as np
>>> metric = make_metric("roc_auc", window=3)
>>> metric.update(np.array([0, 1, 1, 0]), np.array([0.9, 0.2, 0.8, 0.3]))
>>> metric.value, metric.count  # the last three: 0.8 beats 0.3, 0.2 does not
(0.5, 3)
"""

from headwater.evaluation.ab import ABResult, ArmStats, Decision, ab_test, assign
from headwater.evaluation.backtest import (
    BacktestResult,
    Fold,
    FoldResult,
    backtest,
    check_features,
    check_fold,
    examples_at,
    walk_forward,
)
from headwater.evaluation.canary import (
    DEFAULT_STEPS,
    CanaryController,
    CanaryRamp,
    CanaryReplay,
    Step,
    replay_canary,
)
from headwater.evaluation.canary_watch import CanaryWatch, apply_over_http
from headwater.evaluation.drift import ks, psi
from headwater.evaluation.examples import Examples
from headwater.evaluation.guardrails import ArmWindow, Check, Guardrails
from headwater.evaluation.intervals import Interval, paired_difference
from headwater.evaluation.metrics import (
    MAE,
    METRICS,
    RMSE,
    ROCAUC,
    Accuracy,
    KappaTemporal,
    LogLoss,
    StreamingMetric,
    higher_is_better,
    make_metric,
    restore_metric,
)
from headwater.evaluation.prequential import (
    Learner,
    PrequentialResult,
    prequential,
)
from headwater.evaluation.shadow import Paired, ShadowResult, pair, shadow_compare
from headwater.stats.sequential import MixtureSPRT

__all__ = [
    "DEFAULT_STEPS",
    "MAE",
    "METRICS",
    "RMSE",
    "ROCAUC",
    "ABResult",
    "Accuracy",
    "ArmStats",
    "ArmWindow",
    "BacktestResult",
    "CanaryController",
    "CanaryRamp",
    "CanaryReplay",
    "CanaryWatch",
    "Check",
    "Decision",
    "Examples",
    "Fold",
    "FoldResult",
    "Guardrails",
    "Interval",
    "KappaTemporal",
    "Learner",
    "LogLoss",
    "MixtureSPRT",
    "Paired",
    "PrequentialResult",
    "ShadowResult",
    "Step",
    "StreamingMetric",
    "ab_test",
    "apply_over_http",
    "assign",
    "backtest",
    "check_features",
    "check_fold",
    "examples_at",
    "higher_is_better",
    "ks",
    "make_metric",
    "pair",
    "paired_difference",
    "prequential",
    "psi",
    "replay_canary",
    "restore_metric",
    "shadow_compare",
    "walk_forward",
]
