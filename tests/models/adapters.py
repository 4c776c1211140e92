"""The adapters the contract suite runs against, and the data it feeds them."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from headwater.models import LinearRegression, LogisticRegression, Model
from tests.extras import REQUIRE_EXTRAS, require_extra


@dataclass(frozen=True)
class Adapter:
    """How to build one adapter, and what it promises."""

    name: str
    build: Callable[[], Model]
    classifier: bool
    #: learning a batch equals learning its rows one batch each (to rounding)
    row_equivalent: bool = True
    #: save -> load needs trusted=True (pickle)
    needs_trust: bool = False
    #: reads string (categorical) columns
    categorical: bool = True


def _river() -> Model:
    from river import compose, linear_model, preprocessing

    from headwater.models.river import RiverModel

    return RiverModel(compose.Pipeline(preprocessing.StandardScaler(),
                                       linear_model.LogisticRegression()))


def _sklearn() -> Model:
    from sklearn.linear_model import SGDClassifier  # type: ignore[import-untyped]

    from headwater.models.sklearn import SklearnModel

    return SklearnModel(SGDClassifier(loss="log_loss", random_state=0))


def _torch() -> Model:
    from headwater.models.torch import TorchModel

    return TorchModel(hidden=[8], lr=0.05, epochs=5, batch_size=8)


def _torch_regression() -> Model:
    from headwater.models.torch import TorchModel

    return TorchModel(task="regression", optimizer="sgd", lr=0.005, momentum=0.5, epochs=10,
                      batch_size=2)


def _has(module: str) -> bool:
    return REQUIRE_EXTRAS or importlib.util.find_spec(module) is not None


ADAPTERS = [
    pytest.param(Adapter("linear-logistic", lambda: LogisticRegression(block=4),
                         classifier=True), id="linear-logistic"),
    pytest.param(Adapter("linear-regression", lambda: LinearRegression(alpha=0.5, block=4),
                         classifier=False), id="linear-regression"),
    pytest.param(Adapter("river-logistic", _river, classifier=True, needs_trust=True,
                         categorical=False),
                 id="river-logistic",
                 marks=pytest.mark.skipif(not _has("river"), reason="river not installed")),
    pytest.param(Adapter("sklearn-sgd", _sklearn, classifier=True, row_equivalent=False,
                         categorical=False),
                 id="sklearn-sgd",
                 marks=pytest.mark.skipif(not _has("sklearn"),
                                          reason="scikit-learn not installed")),
    pytest.param(Adapter("torch-mlp", _torch, classifier=True, row_equivalent=False,
                         categorical=False),
                 id="torch-mlp",
                 marks=pytest.mark.skipif(not _has("torch"), reason="torch not installed")),
    pytest.param(Adapter("torch-regression", _torch_regression, classifier=False,
                         row_equivalent=False, categorical=False),
                 id="torch-regression",
                 marks=pytest.mark.skipif(not _has("torch"), reason="torch not installed")),
]


def batch(n: int, seed: int, *, categorical: bool = True) -> dict[str, npt.NDArray[Any]]:
    """A small batch with a learnable signal in ``a`` (and ``city`` when categorical)."""
    rng = np.random.default_rng(seed)
    out: dict[str, npt.NDArray[Any]] = {
        "a": rng.normal(size=n), "b": rng.uniform(-5, 5, size=n),
        "c": rng.integers(0, 10, size=n)}
    if categorical:
        out["city"] = rng.choice(np.array(["oslo", "lima", "pune"]), size=n)
    return out


def target(features: dict[str, npt.NDArray[Any]], classifier: bool) -> npt.NDArray[Any]:
    signal = 2.0 * features["a"] - 0.3 * features["b"]
    if "city" in features:
        signal = signal + (features["city"] == "oslo")
    return (signal > 0).astype(np.int64) if classifier else signal


def rows(features: dict[str, npt.NDArray[Any]], start: int, stop: int) -> dict[str, Any]:
    return {k: v[start:stop] for k, v in features.items()}


def require(module: str) -> None:
    """Skip the test when ``module`` is not installed, or fail it under
    ``HEADWATER_REQUIRE_EXTRAS=1``."""
    require_extra(module)
