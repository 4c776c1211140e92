"""Model artifacts of each kind the trust rule tells apart, for tests.

Safe formats load anywhere; River artifacts are pickles, and a scikit-learn tree model
saved with skops holds a type outside skops' trusted list: both load only from a
registry that trusts such artifacts. :func:`malicious_artifact` is what someone with
write access to a store could register: a ``river-pickle`` artifact, hashes correct,
whose unpickling writes ``marker`` — so a test can tell whether it ever ran.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from headwater.models import LogisticRegression
from headwater.models.artifact import Manifest, write_artifact
from headwater.registry import ModelRegistry

__all__ = ["gradient_boosting", "linear", "malicious_artifact", "malicious_pickle",
           "river_pipeline", "rows", "tamper"]


def rows(n: int = 200, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Columns ``amount`` and ``age`` and a label that depends on both."""
    rng = np.random.default_rng(seed)
    batch = {"amount": rng.gamma(2.0, 30.0, n), "age": rng.uniform(18.0, 80.0, n)}
    y = (batch["amount"] / 60 + batch["age"] / 40 > 2.5).astype(np.int64)
    return batch, y


def linear(directory: Path, seed: int = 0) -> Path:
    """A built-in logistic regression, trained (format ``headwater-linear``)."""
    model = LogisticRegression()
    model.learn(*rows(seed=seed))
    model.save(directory)
    return directory


def river_pipeline(directory: Path) -> Path:
    """A River pipeline, trained (format ``river-pickle``)."""
    from river import compose, linear_model, preprocessing

    from headwater.models.river import RiverModel

    model = RiverModel(compose.Pipeline(preprocessing.StandardScaler(),
                                        linear_model.LogisticRegression()))
    model.learn(*rows())
    model.save(directory)
    return directory


def gradient_boosting(directory: Path) -> Path:
    """A scikit-learn gradient-boosting model (skops, with a tree type skops does not
    trust by default)."""
    from sklearn.ensemble import GradientBoostingClassifier  # type: ignore[import-untyped]

    from headwater.models.sklearn import SklearnModel

    model = SklearnModel(GradientBoostingClassifier(n_estimators=10, random_state=0))
    model.learn(*rows())
    model.save(directory)
    return directory


class _Payload:
    """Unpickles into running ``code``."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (self.code,)


def malicious_pickle(marker: Path) -> bytes:
    """A pickle whose unpickling writes ``marker``."""
    return pickle.dumps(_Payload(f"open({str(marker)!r}, 'w').write('the pickle ran')"))


def malicious_artifact(directory: Path, marker: Path) -> Path:
    """A well-formed ``river-pickle`` artifact whose unpickling writes ``marker``."""
    write_artifact(directory, Manifest("river-pickle", 1, "RiverModel", {"learn_many": False},
                                       ["amount", "age"], metadata={"categorical": []}),
                   {"estimator.pkl": malicious_pickle(marker)})
    return directory


def tamper(registry: ModelRegistry, name: str, version: int, file: str) -> None:
    """Change one byte of a stored artifact, as a disk fault or an intruder would."""
    path = registry.artifacts.checkout(registry.get(name, version)) / file
    os.chmod(path, 0o600)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
