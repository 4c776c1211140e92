"""The PyTorch adapter beyond the shared contract: its artifact, its hyper-parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from headwater.errors import ModelArtifactError, ValidationError
from headwater.models import load_model
from tests.models.adapters import batch, require, target

require("torch")

from headwater.models.torch import TorchModel  # noqa: E402


def _trained(**params: Any) -> tuple[TorchModel, dict[str, Any], Any]:
    model = TorchModel(hidden=[4, 3], activation="tanh", lr=0.05, **params)
    features = batch(40, 3, categorical=False)
    y = target(features, True)
    model.learn(features, y)
    return model, features, y


def test_the_artifact_is_safetensors_and_loads_untrusted(tmp_path: Path) -> None:
    model, features, _ = _trained()
    model.save(tmp_path)
    manifest = json.loads((tmp_path / "headwater-model.json").read_text())
    assert manifest["format"] == "torch-safetensors"
    assert list(manifest["files"]) == ["weights.safetensors"]
    header = (tmp_path / "weights.safetensors").read_bytes()
    names = json.loads(header[8: 8 + int.from_bytes(header[:8], "little")])
    assert {"net.0.weight", "net.2.bias", "net.4.weight", "optimizer.0.exp_avg"} <= set(names)
    loaded = load_model(tmp_path)  # no trusted=True: nothing is unpickled
    np.testing.assert_array_equal(loaded.predict(features), model.predict(features))


def test_saving_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    model, _, _ = _trained(optimizer="sgd", momentum=0.9)
    model.save(tmp_path / "a")
    model.save(tmp_path / "b")
    assert (tmp_path / "a" / "weights.safetensors").read_bytes() == (
        tmp_path / "b" / "weights.safetensors").read_bytes()


def test_sample_weights_count() -> None:
    features = batch(40, 3, categorical=False)
    y = target(features, True)
    plain, weighted = TorchModel(), TorchModel()
    plain.learn(features, y)
    weighted.learn(features, y, sample_weight=np.where(y == 1, 5.0, 0.1))
    assert weighted.predict(features).mean() > plain.predict(features).mean()


@pytest.mark.parametrize(("params", "field"), [
    ({"hidden": [0]}, "hidden"), ({"hidden": "8"}, "hidden"), ({"activation": "gelu"},
                                                                "activation"),
    ({"task": "ranking"}, "task"), ({"optimizer": "lbfgs"}, "optimizer"), ({"lr": 0.0}, "lr"),
    ({"momentum": -1.0}, "momentum"), ({"epochs": 0}, "epochs"), ({"batch_size": True},
                                                                   "batch_size"),
])
def test_bad_hyperparameters_are_named(params: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        TorchModel(**params)
    assert raised.value.field == field


def test_categorical_columns_are_refused() -> None:
    with pytest.raises(ValidationError, match="numeric columns only") as raised:
        TorchModel().learn({"x": np.ones(2), "city": np.array(["a", "b"])}, np.array([0, 1]))
    assert raised.value.field == "city"


def test_a_bad_artifact_is_named(tmp_path: Path) -> None:
    model, _, _ = _trained()
    model.save(tmp_path)
    manifest_path = tmp_path / "headwater-model.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["params"]["hidden"] = [5]  # weights no longer fit the network
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelArtifactError, match="does not fit the network"):
        load_model(tmp_path)
    manifest["params"]["hidden"] = "x"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelArtifactError, match="bad hyper-parameters"):
        load_model(tmp_path)
    manifest["params"]["hidden"] = [4, 3]
    manifest_path.write_text(json.dumps(manifest))
    (tmp_path / "weights.safetensors").write_bytes(b"not tensors")
    with pytest.raises(ModelArtifactError, match="sha256"):
        load_model(tmp_path)


def test_weights_without_their_input_columns_are_refused(tmp_path: Path) -> None:
    model, _, _ = _trained()
    model.save(tmp_path)
    manifest_path = tmp_path / "headwater-model.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["features"] = None  # a network whose inputs are unknown must not answer 0.5
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ModelArtifactError, match="names no input columns"):
        load_model(tmp_path)
    untrained = TorchModel(hidden=[4])
    untrained.save(tmp_path / "untrained")  # no network yet: nothing learnt, neutral
    assert load_model(tmp_path / "untrained").predict_one({"a": 1.0}) == 0.5
