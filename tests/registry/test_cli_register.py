"""``headwater models register | trust | promote`` as separate processes: the loop's first
version by hand, the operator's opt-in to pickle-based artifacts, promotions refused
with the reason."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from headwater.models import LogisticRegression, load_model
from headwater.registry import hash_directory, open_registry
from tests.models.adapters import require
from tests.processes import headwater
from tests.registry.artifacts import linear, malicious_pickle, rows, tamper


def test_register_an_untrained_builtin_model_and_promote_it(tmp_path: Path) -> None:
    done = headwater(tmp_path, "models", "register", "churn", "--builtin", "logistic",
                     "--param", "alpha=0.1", "--param", "hash_bits=10", "--promote",
                     "--actor", "ada", "--reason", "start the loop")
    assert done.returncode == 0, done.stderr
    assert "registered churn v1 (headwater-linear) from an untrained built-in logistic model" \
        in done.stdout
    assert "churn champion → v1" in done.stdout
    with open_registry(tmp_path / "registry") as registry:
        version = registry.get("churn", "champion")
        assert version.version == 1
        assert version.parent is None
        assert version.lineage.hyperparameters["alpha"] == 0.1
        assert version.lineage.hyperparameters["hash_bits"] == 10
        creator = version.lineage.created_by
        assert (creator.trainer, creator.trigger) == ("register-cli", "initial")
        assert creator.reason == ("registered by hand by ada from an untrained built-in "
                                  "logistic model: start the loop")
        assert [(m.actor, m.reason) for m in registry.history("churn")] == [
            ("ada", "start the loop")]
        model = registry.load("churn", 1).model
        assert isinstance(model, LogisticRegression)
        assert model.params()["alpha"] == 0.1
        assert model.predict_one({"amount": 3.0}) == 0.5  # it has learnt nothing yet
    shown = headwater(tmp_path, "models", "show", "churn")
    assert "register-cli (initial): registered by hand by ada" in shown.stdout
    assert "pickle-based artifacts are not trusted by this registry (never granted)" in \
        shown.stdout


@pytest.mark.parametrize(("args", "field"), [
    (("--builtin", "forest"), "unknown built-in model 'forest'"),
    (("--builtin", "logistic", "--param", "alhpa=1"), "no hyper-parameter 'alhpa'"),
    (("--builtin", "logistic", "--param", "alpha=-1"), "alpha: expected a finite number"),
    (("--builtin", "logistic", "--param", "alpha"), "expected NAME=VALUE"),
    (("--builtin", "logistic", "model.pkl"), "SOURCE: give a model file or --builtin"),
    ((), "SOURCE: give a model file or --builtin"),
    (("missing.pkl",), "no such file or directory"),
    (("notes.txt",), "expected a saved Headwater model"),
])
def test_bad_registrations_exit_2_and_register_nothing(tmp_path: Path, args: tuple[str, ...],
                                                       field: str) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    done = headwater(tmp_path, "models", "register", "churn",
                     *[str(tmp_path / a) if a.endswith((".pkl", ".txt")) else a for a in args])
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert field in done.stderr
    assert "Traceback" not in done.stderr
    with open_registry(tmp_path / "registry") as registry:
        assert registry.models() == []


def test_register_a_saved_model_directory_as_it_is(tmp_path: Path) -> None:
    directory = linear(tmp_path / "mine")
    done = headwater(tmp_path, "models", "register", "churn", str(directory), "--reason", "v0")
    assert done.returncode == 0, done.stderr
    with open_registry(tmp_path / "registry") as registry:
        version = registry.get("churn", 1)
        assert version.artifact.sha256 == hash_directory(directory)[0].sha256  # byte for byte
        assert version.lineage.created_by.trigger == "manual"
        assert registry.aliases("churn") == {}  # not promoted unless asked
        batch, _ = rows(20, seed=5)
        np.testing.assert_array_equal(registry.load("churn", 1).model.predict(batch),
                                      load_model(directory).predict(batch))


def test_pickles_are_read_only_after_the_opt_in_which_show_reports(tmp_path: Path) -> None:
    require("river")
    from river import compose, linear_model, preprocessing

    marker = tmp_path / "the-pickle-ran"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(malicious_pickle(marker))
    refused = headwater(tmp_path, "models", "register", "churn", str(evil))
    assert refused.returncode == 2
    assert "evil.pkl is a pickle, which runs code when it is read" in refused.stderr
    assert "does not trust pickle-based artifacts" in refused.stderr
    assert "headwater models trust --pickle" in refused.stderr
    assert not marker.exists()

    pipeline = compose.Pipeline(preprocessing.StandardScaler(), linear_model.LogisticRegression())
    batch, y = rows(100)
    for i in range(100):
        pipeline.learn_one({"amount": batch["amount"][i], "age": batch["age"][i]}, bool(y[i]))
    (tmp_path / "river.pkl").write_bytes(pickle.dumps(pipeline))
    assert headwater(tmp_path, "models", "register", "churn", "--builtin",
                     "logistic").returncode == 0
    granted = headwater(tmp_path, "models", "trust", "--pickle", "--actor", "ada", "--reason",
                        "our trainers write River models")
    assert granted.returncode == 0, granted.stderr
    assert "pickle-based artifacts are trusted by this registry: granted by ada" in \
        granted.stdout
    assert "may now run code" in granted.stderr
    again = headwater(tmp_path, "models", "trust", "--pickle", "--reason", "twice")
    assert again.stdout.startswith("unchanged: pickle-based artifacts are trusted")
    shown = headwater(tmp_path, "models", "show", "churn")
    assert "granted by ada at " in shown.stdout
    assert "our trainers write River models" in shown.stdout

    done = headwater(tmp_path, "models", "register", "churn", str(tmp_path / "river.pkl"),
                     "--features", "amount,age", "--promote", "--reason", "the River one")
    assert done.returncode == 0, done.stderr
    assert "registered churn v2 (river-pickle)" in done.stdout
    with open_registry(tmp_path / "registry") as registry:
        served = registry.load("churn", "champion")
        assert served.version.version == 2
        row = {"amount": 40.0, "age": 50.0}
        assert served.model.predict_one(row) == pipeline.predict_proba_one(row)[True]
        history = registry.trust_history()
        assert [(c.trusted, c.actor) for c in history] == [(True, "ada")]

    revoked = headwater(tmp_path, "models", "trust", "--pickle", "--revoke", "--actor", "bob",
                        "--reason", "the store is shared now")
    assert revoked.returncode == 0, revoked.stderr
    assert "not trusted by this registry: revoked by bob" in revoked.stdout
    assert "revoked by bob" in headwater(tmp_path, "models", "show", "churn").stdout
    assert headwater(tmp_path, "models", "register", "churn",
                     str(tmp_path / "river.pkl")).returncode == 2
    refused = headwater(tmp_path, "models", "promote", "churn", "2", "--reason", "again")
    assert refused.returncode == 0  # already the champion: nothing moves, nothing loads
    back = headwater(tmp_path, "models", "promote", "churn", "1", "--reason", "back")
    assert back.returncode == 0, back.stderr
    refused = headwater(tmp_path, "models", "promote", "churn", "2", "--reason", "again")
    assert refused.returncode == 1
    assert "alias 'champion' of model 'churn' was not moved: version 2 of churn cannot " \
        "load: format 'river-pickle'" in refused.stderr
    assert not marker.exists()
    nothing = headwater(tmp_path, "models", "trust", "--reason", "what?")
    assert nothing.returncode == 2
    assert "--pickle" in nothing.stderr


def test_promote_refuses_a_tampered_version_with_the_reason(tmp_path: Path) -> None:
    for alpha in ("0.1", "0.2"):
        assert headwater(tmp_path, "models", "register", "churn", "--builtin", "logistic",
                         "--param", f"alpha={alpha}").returncode == 0
    assert headwater(tmp_path, "models", "promote", "churn", "1", "--reason",
                     "first").returncode == 0
    with open_registry(tmp_path / "registry") as registry:
        tamper(registry, "churn", 2, "headwater-model.json")
    refused = headwater(tmp_path, "models", "promote", "churn", "2", "--reason", "better")
    assert refused.returncode == 1
    assert "alias 'champion' of model 'churn' was not moved: version 2 of churn cannot load" \
        in refused.stderr
    assert "does not match its recorded SHA-256" in refused.stderr
    assert "Traceback" not in refused.stderr
    with open_registry(tmp_path / "registry") as registry:
        assert registry.aliases("churn") == {"champion": 1}
        assert len(registry.history("churn")) == 1


def test_an_estimator_that_learnt_nothing_is_registered_with_a_warning(tmp_path: Path) -> None:
    """An unfitted scikit-learn estimator answers the neutral value to every request:
    registering one says so, where it happens; a fitted one registers quietly."""
    require("sklearn")
    import skops.io  # type: ignore[import-untyped]
    from sklearn.linear_model import (  # type: ignore[import-untyped]
        LogisticRegression as SkLogistic,
    )

    skops.io.dump(SkLogistic(), tmp_path / "unfit.skops")
    unfit = headwater(tmp_path, "models", "register", "churn", str(tmp_path / "unfit.skops"))
    assert unfit.returncode == 0, unfit.stderr
    said = " ".join(unfit.stderr.split())
    assert "warning: churn v1 has learnt nothing: it answers the neutral value" in said
    fitted = SkLogistic().fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
    skops.io.dump(fitted, tmp_path / "fit.skops")
    done = headwater(tmp_path, "models", "register", "churn", str(tmp_path / "fit.skops"),
                     "--features", "x")
    assert done.returncode == 0, done.stderr
    assert "learnt nothing" not in done.stderr
