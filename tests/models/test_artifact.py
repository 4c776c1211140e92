"""Saved models: the manifest, the format registry, and every way an artifact can be bad."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import ModelArtifactError, UntrustedArtifactError, ValidationError
from headwater.models import FORMATS, LinearRegression, LogisticRegression, load_model
from headwater.models.artifact import MANIFEST, load_arrays, save_arrays
from tests.extras import require_extra
from tests.models.adapters import batch, target


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    model = LogisticRegression(hash_bits=4)
    features = batch(40, 0)
    model.learn(features, target(features, True))
    model.save(tmp_path)
    return tmp_path


def _manifest(directory: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / MANIFEST).read_text())
    return loaded


def _rewrite(directory: Path, **changes: Any) -> None:
    (directory / MANIFEST).write_text(json.dumps(_manifest(directory) | changes))


def test_the_manifest_says_what_the_artifact_is(saved: Path) -> None:
    manifest = _manifest(saved)
    assert manifest["format"] == "headwater-linear"
    assert manifest["format_version"] == 1
    assert manifest["adapter"] == "LogisticRegression"
    assert manifest["features"] == ["a", "b", "c", "city"]
    assert manifest["params"]["hash_bits"] == 4
    assert set(manifest["files"]) == {"state.npz"}
    assert len(manifest["files"]["state.npz"]) == 64


def test_a_directory_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(ModelArtifactError, match="not a saved model") as raised:
        load_model(tmp_path)
    assert raised.value.field == str(tmp_path / MANIFEST)
    assert isinstance(raised.value, ValidationError)


def test_a_manifest_that_is_not_json(saved: Path) -> None:
    (saved / MANIFEST).write_text("{not json")
    with pytest.raises(ModelArtifactError, match="invalid manifest") as raised:
        load_model(saved)
    assert raised.value.path == str(saved / MANIFEST)


def test_a_manifest_field_of_the_wrong_type_is_named(saved: Path) -> None:
    _rewrite(saved, format_version="one")
    with pytest.raises(ModelArtifactError, match=r"\$\.format_version"):
        load_model(saved)


def test_an_unknown_format_is_refused_without_importing_anything(saved: Path) -> None:
    _rewrite(saved, format="os.system", adapter="os.system")
    with pytest.raises(ModelArtifactError, match=r"unknown format 'os\.system'"):
        load_model(saved)


def test_an_unknown_adapter_is_refused(saved: Path) -> None:
    _rewrite(saved, adapter="subprocess.Popen")
    with pytest.raises(ModelArtifactError, match=r"unknown adapter 'subprocess\.Popen'"):
        load_model(saved)


def test_an_unsupported_format_version(saved: Path) -> None:
    _rewrite(saved, format_version=99)
    with pytest.raises(ModelArtifactError, match="format version 99"):
        load_model(saved)


def test_bad_params(saved: Path) -> None:
    _rewrite(saved, params={"alpha": -1.0})
    with pytest.raises(ModelArtifactError, match=r"bad params.*alpha"):
        load_model(saved)
    _rewrite(saved, params={"learning_rate": 1.0})
    with pytest.raises(ModelArtifactError, match="bad params"):
        load_model(saved)


def test_a_missing_weight_file_is_named(saved: Path) -> None:
    (saved / "state.npz").unlink()
    with pytest.raises(ModelArtifactError, match="missing weight file") as raised:
        load_model(saved)
    assert raised.value.path == str(saved / "state.npz")


def test_altered_weights_fail_the_hash_check(saved: Path) -> None:
    data = bytearray((saved / "state.npz").read_bytes())
    data[-1] ^= 0xFF
    (saved / "state.npz").write_bytes(bytes(data))
    with pytest.raises(ModelArtifactError, match="sha256") as raised:
        load_model(saved)
    assert raised.value.path == str(saved / "state.npz")


def _replace_state(directory: Path, data: bytes) -> None:
    import hashlib

    (directory / "state.npz").write_bytes(data)
    _rewrite(directory, files={"state.npz": hashlib.sha256(data).hexdigest()})


def test_weights_that_are_not_an_npz(saved: Path) -> None:
    _replace_state(saved, b"garbage")
    with pytest.raises(ModelArtifactError, match=r"not a readable \.npz"):
        load_model(saved)


def test_weights_holding_a_pickle_are_refused(saved: Path, tmp_path: Path) -> None:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, z=np.array([object()], dtype=object))
    _replace_state(saved, buffer.getvalue())
    with pytest.raises(ModelArtifactError, match=r"not a readable \.npz"):
        load_model(saved)


def test_weights_of_the_wrong_shape(saved: Path) -> None:
    import io

    with np.load(saved / "state.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["w"] = arrays["w"][:-1]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _replace_state(saved, buffer.getvalue())
    with pytest.raises(ModelArtifactError, match="array 'w' has shape"):
        load_model(saved)


def test_loading_as_the_wrong_class(saved: Path) -> None:
    with pytest.raises(ModelArtifactError, match="holds a LogisticRegression"):
        LinearRegression.load(saved)


def test_a_pickle_artifact_needs_trust_before_anything_is_unpickled(tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self) -> tuple[Any, ...]:
            return (pytest.fail, ("unpickled without trust",))

    data = pickle.dumps(Boom())
    import hashlib

    (tmp_path / "estimator.pkl").write_bytes(data)
    (tmp_path / MANIFEST).write_text(json.dumps({
        "format": "sklearn-pickle", "format_version": 1, "adapter": "SklearnModel",
        "params": {}, "features": None,
        "files": {"estimator.pkl": hashlib.sha256(data).hexdigest()}}))
    require_extra("sklearn", "sklearn")
    with pytest.raises(UntrustedArtifactError, match="trusted=True"):
        load_model(tmp_path)


def test_the_formats_are_a_fixed_table() -> None:
    assert sorted(FORMATS) == ["headwater-linear", "river-pickle", "sklearn-pickle",
                               "sklearn-skops", "torch-safetensors"]
    with pytest.raises(TypeError):
        FORMATS["mine"] = FORMATS["headwater-linear"]  # type: ignore[index]


def test_saving_again_replaces_the_artifact(saved: Path) -> None:
    model = LinearRegression()
    features = batch(10, 1)
    model.learn(features, target(features, False))
    model.save(saved)
    assert isinstance(load_model(saved), LinearRegression)
    assert not list(saved.glob(".*.tmp"))


@given(st.lists(st.tuples(st.sampled_from(["f8", "f4", "i8"]), st.integers(0, 9_000),
                          st.floats(0.0, 1.0)), min_size=1, max_size=4),
       st.integers(0, 2**32 - 1))
def test_saved_arrays_read_back_equal_dense_or_sparse(
        specs: list[tuple[str, int, float]], seed: int) -> None:
    """Whatever share of an array is zero, the arrays read back are the arrays saved
    (long ones mostly of one value go as the entries that differ), and nothing is
    compressed."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for i, (dtype, size, share) in enumerate(specs):
        values = rng.normal(size=size) * 100
        values[rng.random(size) >= share] = 0.0 if i % 2 else 0.5
        arrays[f"a{i}"] = values.astype(dtype)
    data = save_arrays(arrays)
    back = load_arrays(data, "state.npz", dict.fromkeys(arrays, ("fi", 1)))
    assert set(back) == set(arrays)
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype
        np.testing.assert_array_equal(back[name], array)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}


def test_a_wide_model_saves_its_hashed_weights_sparse_and_loads_the_same(
        tmp_path: Path) -> None:
    model = LogisticRegression()  # 2**18 hashed weights
    features = batch(200, 0)
    model.learn(features, target(features, True))
    model.save(tmp_path)
    with np.load(tmp_path / "state.npz") as npz:
        assert "w@index" in npz.files
        assert "w" not in npz.files
    assert (tmp_path / "state.npz").stat().st_size < 2**18  # not 2**18 x 8 bytes x 7
    again = load_model(tmp_path)
    np.testing.assert_array_equal(again.predict(features), model.predict(features))


def test_an_artifact_saved_compressed_still_loads(saved: Path) -> None:
    with np.load(saved / "state.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    _replace_state(saved, buffer.getvalue())
    assert load_model(saved).predict(batch(5, 1)).shape == (5,)


def test_sparse_parts_that_do_not_fit_are_named() -> None:
    parts = {"w@index": np.array([3, 70_000]), "w@values": np.array([1.0, 2.0]),
             "w@size": np.int64(8), "w@fill": np.float64(0.0)}
    buffer = io.BytesIO()
    np.savez(buffer, **parts)  # type: ignore[arg-type]
    with pytest.raises(ModelArtifactError, match="'w': an index outside"):
        load_arrays(buffer.getvalue(), "state.npz", {"w": ("f", 1)})
    del parts["w@size"]
    buffer = io.BytesIO()
    np.savez(buffer, **parts)  # type: ignore[arg-type]
    with pytest.raises(ModelArtifactError, match="missing"):
        load_arrays(buffer.getvalue(), "state.npz", {"w": ("f", 1)})
