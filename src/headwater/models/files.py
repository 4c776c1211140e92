"""A model from the file a user has: a saved Headwater model, a skops file, a pickle.

:func:`read_model` is how ``headwater models register NAME FILE`` reads what it
registers:

- a directory with ``headwater-model.json`` (what :meth:`Model.save` writes) is loaded
  as it is, by its format (:func:`headwater.models.load_model`);
- a ``.skops`` file holding a scikit-learn estimator is read with skops, which runs no
  code; types outside skops' trusted list (the trees of tree ensembles, say) are read
  only with ``trusted=True``;
- a pickle (``.pkl``, ``.pickle``, or ``.joblib`` through joblib) holding a
  scikit-learn or River estimator, or a Headwater model, is unpickled only with
  ``trusted=True``: unpickling runs whatever code the file names.

An estimator is wrapped in its adapter (:class:`~headwater.models.sklearn.SklearnModel`,
:class:`~headwater.models.river.RiverModel`) with ``features``, the input columns in
order, when its own record of them is missing (see each adapter). Anything else raises
:class:`~headwater.errors.ValidationError` naming the file; a file that needs trust
raises :class:`~headwater.errors.UntrustedArtifactError` before any of it is read.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from headwater.errors import (
    MissingExtraError,
    ModelArtifactError,
    UntrustedArtifactError,
    ValidationError,
)
from headwater.models.artifact import MANIFEST
from headwater.models.formats import load_model
from headwater.models.protocol import Model, PathArg

__all__ = ["PICKLE_SUFFIXES", "read_model", "wrap_estimator"]

#: The file name endings read as pickles.
PICKLE_SUFFIXES: Final = (".pkl", ".pickle", ".joblib")


def read_model(path: PathArg, *, trusted: bool = False,
               features: Sequence[str] | None = None, field: str = "file") -> Model:
    """The model in ``path`` (see the module docstring for what is read, and how)."""
    source = Path(path)
    if source.is_dir():
        if not (source / MANIFEST).is_file():
            raise ValidationError(field, f"{source} is a directory without {MANIFEST}: not a "
                                         "saved Headwater model")
        if features is not None:
            raise ValidationError("features", "a saved Headwater model names its own columns")
        return load_model(source, trusted=trusted)
    if not source.is_file():
        raise ValidationError(field, f"{source}: no such file or directory")
    suffix = source.suffix.lower()
    if suffix == ".skops":
        return wrap_estimator(_skops(source, trusted), features, source)
    if suffix in PICKLE_SUFFIXES:
        if not trusted:
            risk = f"{source.name} is a pickle, which runs code when it is read"
            raise UntrustedArtifactError(str(source), f"{risk}: read it with trusted=True only "
                                                      "if you trust whoever wrote it", risk=risk)
        return wrap_estimator(_unpickle(source), features, source)
    raise ValidationError(field, f"{source}: expected a saved Headwater model (a directory), a "
                                 f".skops file or a pickle ({', '.join(PICKLE_SUFFIXES)})")


def wrap_estimator(obj: Any, features: Sequence[str] | None, source: PathArg = "") -> Model:
    """``obj`` as a Headwater model: a River or scikit-learn estimator in its adapter, a
    Headwater model as it is."""
    where = f"{source}: " if source else ""
    module = type(obj).__module__.partition(".")[0]
    if module == "river":
        from headwater.models.river import RiverModel

        return RiverModel(obj, features=features)
    if isinstance(obj, Model):
        if features is not None:
            raise ValidationError("features", "a Headwater model names its own columns")
        return obj
    if hasattr(obj, "get_params") and hasattr(obj, "fit"):
        from headwater.models.sklearn import SklearnModel

        return SklearnModel(obj, features=features)
    raise ValidationError("file", f"{where}holds a {type(obj).__module__}."
                                  f"{type(obj).__qualname__}, not a scikit-learn or River "
                                  "estimator or a Headwater model")


def _skops(source: Path, trusted: bool) -> Any:
    try:
        import skops.io as skops_io  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingExtraError("Reading a .skops file", "sklearn", "skops") from exc
    try:
        untrusted = skops_io.get_untrusted_types(file=source)
    except Exception as exc:
        raise ModelArtifactError(str(source), f"cannot be read by skops: {exc!r}") from exc
    if untrusted and not trusted:
        risk = (f"{source.name} holds types outside skops' trusted list "
                f"({', '.join(untrusted)}), which can run code or crash the process when read")
        raise UntrustedArtifactError(str(source), f"{risk}: read it with trusted=True only if "
                                                  "you trust whoever wrote it", risk=risk)
    try:
        return skops_io.load(source, trusted=untrusted or None)
    except Exception as exc:
        raise ModelArtifactError(str(source), f"cannot be read by skops: {exc!r}") from exc


def _unpickle(source: Path) -> Any:
    """Unpickle ``source`` (the caller vouched for it: ``trusted=True``)."""
    read: Any = _pickle_load
    if source.suffix.lower() == ".joblib":
        try:
            import joblib  # type: ignore[import-untyped]
        except ImportError as exc:
            raise MissingExtraError("Reading a .joblib file", "sklearn", "joblib") from exc
        read = joblib.load
    try:
        return read(source)
    except OSError as exc:
        raise ModelArtifactError(str(source), f"cannot be read: {exc}") from exc
    except Exception as exc:
        raise ModelArtifactError(str(source), f"cannot be unpickled: {exc!r}") from exc


def _pickle_load(source: Path) -> Any:
    with open(source, "rb") as file:
        return pickle.load(file)
