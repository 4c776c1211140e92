"""The public surface is deliberate: these names, and no accidental others."""

from __future__ import annotations

import importlib
import sys

import pytest

import headwater
import headwater.errors
import headwater.features
import headwater.labels
import headwater.learning
import headwater.log
import headwater.orchestrator
import headwater.system
import headwater.testing
import headwater.time
from headwater.errors import ConfigError, MissingExtraError

PUBLIC: dict[object, list[str]] = {
    headwater: ["Clock", "HeadwaterError", "Log", "ManualClock", "Schema", "SystemClock",
                "__version__", "open_log"],
    headwater.testing: ["ManualClock", "MemoryBackend", "MemoryOnlineStore",
                        "MemoryRegistryBackend"],
    headwater.labels: ["LATE_OUTCOMES_SCHEMA", "LATE_OUTCOMES_TOPIC", "OUTCOMES_SCHEMA",
                       "OUTCOMES_TOPIC", "TRAINING_EXAMPLES_SCHEMA", "TRAINING_EXAMPLES_TOPIC",
                       "JoinRule", "LabelJoiner", "LabelSource", "decode_features"],
    headwater.learning: ["AnyOf", "Cost", "Daily", "Drift", "Every", "ExampleSlice", "Fire", "Gate",
                         "Guard", "Observation", "Performance", "Published", "RateLimited",
                         "Strategy", "Trainer", "TrainerLease", "Trigger", "Verdict", "Volume",
                         "examples_hash", "read_examples", "reproduce", "score_then_learn",
                         "slice_end"],
    headwater.orchestrator: ["Component", "RunLock", "Supervisor"],
    headwater.system: ["COMPONENTS", "DEFAULT_RULE", "Serving", "System", "SystemConfig",
                       "first_version"],
    headwater.features: ["Aggregation", "DerivedFeature", "Entity", "Feature", "FeatureEngine",
                         "FeatureReader", "FeatureSet",
                         "Filter", "Lifetime", "Queries", "RequestSource", "Sliding", "Sources",
                         "StreamSource", "TableSource", "Tumbling", "Window", "backfill",
                         "feature_values",
                         "make", "model_inputs", "point_in_time", "training_frame"],
}


@pytest.mark.parametrize("module", list(PUBLIC), ids=lambda m: m.__name__)
def test_exported_members(module: object) -> None:
    assert sorted(module.__all__) == sorted(PUBLIC[module])  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", [headwater, headwater.log, headwater.errors, headwater.time,
                                    headwater.testing, headwater.labels, headwater.learning,
                                    headwater.orchestrator, headwater.features,
                                    headwater.system],
                         ids=lambda m: m.__name__)
def test_all_names_exist_and_are_documented(module: object) -> None:
    assert module.__doc__
    for name in module.__all__:  # type: ignore[attr-defined]
        assert hasattr(module, name), name


def test_importing_headwater_imports_no_server_client() -> None:
    for name in [m for m in sys.modules if m.startswith(("redis", "confluent_kafka"))]:
        del sys.modules[name]
    importlib.reload(headwater)
    importlib.reload(headwater.log)
    assert not any(m.startswith(("redis", "confluent_kafka")) for m in sys.modules)


def test_missing_extra_names_the_extra() -> None:
    error = MissingExtraError("The Redis log backend", "redis", "redis")
    assert "pip install 'headwater[redis]'" in str(error)
    assert isinstance(error, ConfigError)
    assert isinstance(error, ImportError)


def test_unknown_log_scheme() -> None:
    with pytest.raises(ConfigError, match="unknown scheme"):
        headwater.open_log("ftp://somewhere")
