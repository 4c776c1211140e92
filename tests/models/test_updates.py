"""Model updates: applying the update of a live model to its checkpoint gives that model.

Every adapter of the contract suite: the checkpoint (saved, then loaded as a server loads
a version) with the update applied predicts what the live model predicts and saves the
same bytes (for the deterministic ones), whatever was learnt before and after the
checkpoint; a model without ``partial_fit`` is refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.errors import ModelArtifactError, NotContinualError
from headwater.models import LogisticRegression, Model, load_model
from headwater.models.updates import (
    Update,
    UpdateMaker,
    apply_update,
    check_continual,
    pack_arrays,
    unpack_arrays,
)
from tests.models.adapters import ADAPTERS, Adapter, batch, require, rows, target

LINEAR = Adapter("linear-logistic", lambda: LogisticRegression(block=4), classifier=True)


def _saved_bytes(model: Model, directory: Path) -> dict[str, str]:
    model.save(directory)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir())}


def _checkpointed(adapter: Adapter, before: int, after: int, tmp_path: Path,
                  seed: int = 3) -> tuple[Model, Model, Update, dict[str, Any]]:
    """(the checkpoint as a server loads it, the live model, its update, the data)."""
    data = batch(before + after + 20, seed, categorical=adapter.categorical)
    y = target(data, adapter.classifier)
    live = UpdateMaker(adapter.build())
    if before:
        live.model.learn(rows(data, 0, before), y[:before])
    live.model.save(tmp_path / "checkpoint")
    served = load_model(tmp_path / "checkpoint", trusted=True)
    live.checkpoint()
    live.model.learn(rows(data, before, before + after), y[before:before + after])
    return served, live.model, live.update(), data


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_checkpoint_with_the_update_is_the_live_model(adapter: Adapter,
                                                          tmp_path: Path) -> None:
    served, live, update, data = _checkpointed(adapter, 30, 25, tmp_path)
    updated = apply_update(served, update)
    assert updated is not served
    np.testing.assert_array_equal(updated.predict(data), live.predict(data))
    assert [updated.predict_one({k: v[i] for k, v in data.items()}) for i in range(10)] == [
        live.predict_one({k: v[i] for k, v in data.items()}) for i in range(10)]
    if getattr(type(live), "deterministic", False):
        assert (_saved_bytes(updated, tmp_path / "a") == _saved_bytes(live, tmp_path / "b"))


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_checkpoint_is_left_as_it_was(adapter: Adapter, tmp_path: Path) -> None:
    served, _, update, data = _checkpointed(adapter, 30, 25, tmp_path)
    before = served.predict(data).copy()
    apply_update(served, update)
    np.testing.assert_array_equal(served.predict(data), before)


def test_the_linear_model_sends_deltas_and_a_fresh_one_a_snapshot(tmp_path: Path) -> None:
    _, _, update, _ = _checkpointed(LINEAR, 30, 25, tmp_path)
    assert update.kind == "delta"
    _, _, first, _ = _checkpointed(LINEAR, 0, 25, tmp_path / "fresh")
    assert first.kind == "snapshot"  # the checkpoint had learnt nothing: no delta


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.integers(1, 300), steps=st.lists(st.integers(1, 90), min_size=1, max_size=5),
       block=st.sampled_from([1, 4, 128]), categorical=st.booleans(),
       seed=st.integers(0, 1_000))
def test_every_update_of_a_stream_applies_to_its_checkpoint(
        tmp_path_factory: pytest.TempPathFactory, before: int, steps: list[int], block: int,
        categorical: bool, seed: int) -> None:
    """Updates are cumulative: each one, alone, turns the checkpoint into the live model
    of that moment, exactly (same predictions, same saved bytes)."""
    tmp = tmp_path_factory.mktemp("updates")
    data = batch(before + sum(steps), seed, categorical=categorical)
    y = target(data, True)
    live = UpdateMaker(LogisticRegression(block=block))
    live.model.learn(rows(data, 0, before), y[:before])
    live.model.save(tmp / "checkpoint")
    checkpoint = load_model(tmp / "checkpoint")
    live.checkpoint()
    at = before
    for n in steps:
        live.model.learn(rows(data, at, at + n), y[at:at + n])
        at += n
        updated = apply_update(checkpoint, live.update())
        np.testing.assert_array_equal(updated.predict(data), live.model.predict(data))
        assert _saved_bytes(updated, tmp / f"u{at}") == _saved_bytes(live.model, tmp / f"l{at}")


def test_a_model_without_partial_fit_cannot_be_continual() -> None:
    require("sklearn")
    from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]

    from headwater.models.sklearn import SklearnModel

    with pytest.raises(NotContinualError, match="RandomForestClassifier has no partial_fit"):
        UpdateMaker(SklearnModel(RandomForestClassifier()))
    check_continual(LogisticRegression())  # the built-in one can


def test_an_update_that_does_not_fit_its_base_is_refused(tmp_path: Path) -> None:
    served, _, update, _ = _checkpointed(LINEAR, 30, 25, tmp_path)
    with pytest.raises(ModelArtifactError, match="unreadable arrays"):
        apply_update(served, Update("delta", b"not msgpack"))
    arrays = unpack_arrays(update.payload)
    arrays["idx"] = np.array([10**9])
    with pytest.raises(ModelArtifactError, match="without coordinates"):
        apply_update(served, Update("delta", pack_arrays(arrays)))
    with pytest.raises(ModelArtifactError, match="a delta cannot apply"):
        apply_update(LogisticRegression(), update)
    with pytest.raises(ModelArtifactError, match="not a snapshot"):
        apply_update(served, Update("snapshot", b"\x01"))
