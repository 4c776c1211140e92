"""Optional extras: River, scikit-learn and PyTorch are imported only when used, and a
missing one says which extra to install. The package's public surface is pinned."""

from __future__ import annotations

import importlib
import sys

import pytest

import headwater.models
from headwater.errors import MissingExtraError
from tests.extras import import_without, require_extra

PUBLIC = ["BUILTINS", "FORMATS", "FeatureSchema", "Features", "LinearRegression",
          "LogisticRegression", "Model", "build_model", "from_arrow", "load_model", "read_model"]


def test_exported_members() -> None:
    assert sorted(headwater.models.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(headwater.models, name), name


def test_importing_models_imports_no_optional_library(
        monkeypatch: pytest.MonkeyPatch) -> None:
    libraries = ("river", "sklearn", "skops", "torch", "safetensors")
    for name in [m for m in sys.modules if m.startswith((*libraries, "headwater.models"))]:
        monkeypatch.delitem(sys.modules, name)
    importlib.import_module("headwater.models")
    assert not any(m.startswith(libraries) for m in sys.modules)


@pytest.mark.parametrize(("module", "missing", "message"), [
    ("headwater.models.river", "river",
     "The River model adapter needs the 'river' package: pip install 'headwater[river]'"),
    ("headwater.models.sklearn", "sklearn",
     "The scikit-learn model adapter needs the 'scikit-learn' package: "
     "pip install 'headwater[sklearn]'"),
    ("headwater.models.torch", "torch",
     "The PyTorch model adapter needs the 'torch' package: pip install 'headwater[torch]'"),
])
def test_a_missing_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch, module: str,
                                               missing: str, message: str) -> None:
    error = import_without(monkeypatch, module, missing)
    assert str(error) == message
    assert error.extra == module.rsplit(".", 1)[1]
    assert isinstance(error, ImportError)


def test_loading_a_river_artifact_without_river(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: object) -> None:
    import json
    from pathlib import Path

    directory = Path(str(tmp_path))
    (directory / "headwater-model.json").write_text(json.dumps({
        "format": "river-pickle", "format_version": 1, "adapter": "RiverModel",
        "params": {}, "features": None}))
    monkeypatch.setitem(sys.modules, "river", None)
    monkeypatch.delitem(sys.modules, "headwater.models.river", raising=False)
    with pytest.raises(MissingExtraError, match=r"headwater\[river\]"):
        headwater.models.load_model(directory, trusted=True)


def test_sklearn_without_skops_pickles_and_needs_trust(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: object) -> None:
    require_extra("sklearn", "sklearn")
    from pathlib import Path

    import numpy as np
    from sklearn.linear_model import SGDRegressor  # type: ignore[import-untyped]

    from headwater.errors import UntrustedArtifactError

    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    monkeypatch.delitem(sys.modules, "headwater.models.sklearn", raising=False)
    module = importlib.import_module("headwater.models.sklearn")
    assert module.SklearnModel.format == "sklearn-pickle"
    model = module.SklearnModel(SGDRegressor(random_state=0))
    features = {"x": np.linspace(-1, 1, 50)}
    model.learn(features, 3 * features["x"])
    model.save(Path(str(tmp_path)))
    with pytest.raises(UntrustedArtifactError):
        headwater.models.load_model(Path(str(tmp_path)))
    loaded = headwater.models.load_model(Path(str(tmp_path)), trusted=True)
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))


def test_loading_a_torch_artifact_without_torch(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: object) -> None:
    import json
    from pathlib import Path

    directory = Path(str(tmp_path))
    (directory / "headwater-model.json").write_text(json.dumps({
        "format": "torch-safetensors", "format_version": 1, "adapter": "TorchModel",
        "params": {}, "features": None}))
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.delitem(sys.modules, "headwater.models.torch", raising=False)
    with pytest.raises(MissingExtraError, match=r"headwater\[torch\]"):
        headwater.models.load_model(directory)
