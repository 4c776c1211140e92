"""The trust rule, on every backend: ``ModelRegistry.load`` verifies, then loads
code-running artifacts only after the operator opted in; aliases move only to versions
that load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headwater.errors import (
    AliasTargetError,
    UntrustedVersionError,
    ValidationError,
    VersionLoadError,
)
from headwater.models import LogisticRegression, load_model
from headwater.registry import ModelRegistry, TrustChange
from headwater.time import ManualClock
from tests.models.adapters import require
from tests.registry.artifacts import (
    gradient_boosting,
    linear,
    malicious_artifact,
    river_pipeline,
    rows,
    tamper,
)
from tests.registry.conftest import MakeArtifact
from tests.registry.harness import START_US, Harness


def test_trust_is_granted_once_recorded_and_revocable(registry: ModelRegistry,
                                                      clock: ManualClock) -> None:
    assert registry.trust_state() is None
    assert not registry.trusts("pickle")
    assert registry.revoke_trust(actor="ops", reason="nothing to revoke") is None
    granted = registry.trust("pickle", actor="ada", reason="our trainers write River models")
    assert granted == TrustChange(kind="pickle", trusted=True, actor="ada",
                                  reason="our trainers write River models", at=START_US,
                                  seq=granted.seq)
    assert registry.trusts()
    clock.advance(1_000_000)
    assert registry.trust(actor="bob", reason="again") == granted  # already: nothing recorded
    revoked = registry.revoke_trust(actor="bob", reason="the store was opened to a vendor")
    assert revoked is not None
    assert (revoked.trusted, revoked.actor, revoked.at) == (False, "bob", START_US + 1_000_000)
    assert revoked.seq > granted.seq
    assert not registry.trusts()
    assert registry.trust_state() == revoked
    assert registry.trust_history() == [granted, revoked]
    with pytest.raises(ValidationError) as raised:
        registry.trust(actor=" ", reason="r")
    assert raised.value.field == "actor"
    with pytest.raises(ValidationError) as raised:
        registry.trust("everything", actor="a", reason="r")  # type: ignore[arg-type]
    assert raised.value.field == "kind"


def test_trust_survives_a_restart(harness: Harness, tmp_path: Path) -> None:
    from headwater.registry import LocalArtifacts

    backend = harness.open()
    ModelRegistry(backend, LocalArtifacts(tmp_path / "a")).trust(actor="ada", reason="r")
    again = ModelRegistry(harness.reopen(backend), LocalArtifacts(tmp_path / "a"))
    state = again.trust_state()
    assert state is not None
    assert (state.trusted, state.actor, state.reason) == (True, "ada", "r")


def test_safe_formats_load_without_opt_in(registry: ModelRegistry, tmp_path: Path) -> None:
    version = registry.register("churn", linear(tmp_path / "linear"))
    loaded = registry.load("churn", version.version)
    assert isinstance(loaded.model, LogisticRegression)
    assert loaded.version == version
    batch, _ = rows(5)
    np.testing.assert_array_equal(loaded.model.predict(batch),
                                  load_model(tmp_path / "linear").predict(batch))
    require("torch")
    from headwater.models.torch import TorchModel

    network = TorchModel(hidden=[4])
    network.learn(*rows())
    network.save(tmp_path / "torch")
    registry.register("net", tmp_path / "torch")
    assert isinstance(registry.load("net", 1).model, TorchModel)


def test_a_pickle_based_version_loads_only_after_opt_in(registry: ModelRegistry,
                                                         tmp_path: Path) -> None:
    require("river")
    registry.register("churn", river_pipeline(tmp_path / "river"))
    with pytest.raises(UntrustedVersionError) as raised:
        registry.load("churn", 1)
    message = str(raised.value)
    assert message.startswith("version 1 of churn cannot load: format 'river-pickle' is "
                              "loaded with pickle")
    assert "this registry does not trust pickle-based artifacts" in message
    assert "headwater models trust --pickle" in message
    registry.trust(actor="ada", reason="we train River models")
    batch, _ = rows(10)
    expected = load_model(tmp_path / "river", trusted=True).predict(batch)
    np.testing.assert_array_equal(registry.load("churn", 1).model.predict(batch), expected)
    registry.revoke_trust(actor="ada", reason="no more")
    with pytest.raises(UntrustedVersionError):
        registry.load("churn", 1)


def test_skops_types_outside_its_trusted_list_need_the_opt_in(registry: ModelRegistry,
                                                              tmp_path: Path) -> None:
    require("sklearn")
    registry.register("gbm", gradient_boosting(tmp_path / "gbm"))
    with pytest.raises(UntrustedVersionError, match=r"sklearn\.tree\._tree\.Tree"):
        registry.load("gbm", 1)
    registry.trust(actor="ada", reason="our own tree models")
    batch, _ = rows(10)
    scores = registry.load("gbm", 1).model.predict(batch)
    assert len(set(np.round(scores, 6))) > 1


def test_a_malicious_pickle_never_runs_without_opt_in(registry: ModelRegistry,
                                                      tmp_path: Path) -> None:
    marker = tmp_path / "the-pickle-ran"
    registry.register("churn", malicious_artifact(tmp_path / "evil", marker))
    with pytest.raises(UntrustedVersionError):
        registry.load("churn", 1)
    with pytest.raises(AliasTargetError, match="does not trust pickle-based artifacts"):
        registry.promote("churn", 1, actor="mallory", reason="please")
    assert registry.aliases("churn") == {}
    assert not marker.exists()


def test_promote_refuses_a_tampered_version(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.register("churn", linear(tmp_path / "v1"))
    registry.register("churn", linear(tmp_path / "v2", seed=1))
    registry.promote("churn", 1, actor="ada", reason="first")
    tamper(registry, "churn", 2, "state.npz")
    with pytest.raises(AliasTargetError) as raised:
        registry.promote("churn", 2, actor="ada", reason="better")
    message = str(raised.value)
    assert message.startswith("alias 'champion' of model 'churn' was not moved: version 2 "
                              "of churn cannot load:")
    assert "does not match its recorded SHA-256" in message
    assert "state.npz" in message
    assert isinstance(raised.value.__cause__, VersionLoadError)
    assert registry.aliases("churn") == {"champion": 1}
    assert len(registry.history("churn")) == 1
    with pytest.raises(VersionLoadError, match="does not match its recorded SHA-256"):
        registry.load("churn", 2)


def test_rollback_refuses_a_target_that_no_longer_verifies(registry: ModelRegistry,
                                                           make_artifact: MakeArtifact) -> None:
    registry.register("churn", make_artifact("one"))  # plain files: verified by hash
    registry.register("churn", make_artifact("two"))
    registry.promote("churn", 1, actor="ada", reason="first")
    registry.promote("churn", 2, actor="ada", reason="second")
    tamper(registry, "churn", 1, "weights.bin")
    with pytest.raises(AliasTargetError, match="does not match its recorded SHA-256"):
        registry.rollback("churn", actor="ada", reason="v2 is worse")
    assert registry.aliases("churn") == {"champion": 2}


def test_a_version_that_is_not_a_loadable_model_is_not_promoted(
        registry: ModelRegistry, tmp_path: Path) -> None:
    directory = linear(tmp_path / "broken")
    manifest = directory / "headwater-model.json"
    manifest.write_text(manifest.read_text().replace('"headwater-linear"', '"mystery"'))
    registry.register("churn", directory)
    with pytest.raises(AliasTargetError, match="unknown format 'mystery'"):
        registry.promote("churn", 1, actor="ada", reason="r")
