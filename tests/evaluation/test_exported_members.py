"""The public surface of headwater.evaluation is deliberate: these names, no others."""

from __future__ import annotations

import headwater.evaluation

PUBLIC = [
    "DEFAULT_STEPS", "MAE", "METRICS", "RMSE", "ROCAUC", "ABResult", "Accuracy", "ArmStats",
    "ArmWindow", "BacktestResult", "CanaryController", "CanaryRamp", "CanaryReplay",
    "CanaryWatch", "Check", "Decision", "Examples", "Fold", "FoldResult", "Guardrails",
    "Interval", "KappaTemporal", "Learner", "LogLoss", "MixtureSPRT", "Paired",
    "PrequentialResult", "ShadowResult", "Step", "StreamingMetric", "ab_test",
    "apply_over_http", "assign", "backtest", "check_features", "check_fold",
    "examples_at", "higher_is_better", "ks", "make_metric", "pair",
    "paired_difference", "prequential", "psi", "replay_canary", "restore_metric",
    "shadow_compare", "walk_forward",
]


def test_exported_members() -> None:
    assert sorted(headwater.evaluation.__all__) == sorted(PUBLIC)


def test_all_names_exist_and_the_package_is_documented() -> None:
    assert headwater.evaluation.__doc__
    for name in headwater.evaluation.__all__:
        assert hasattr(headwater.evaluation, name), name
