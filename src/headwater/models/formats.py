"""The fixed list of artifact formats, and :func:`load_model`, which reads any of them.

:func:`load_model` reads ``headwater-model.json``, looks its ``format`` up in
:data:`FORMATS` and hands the directory to that format's loader. The table is part of
the code: an artifact chooses among these loaders, it never names a module or a class
to import. Loaders of optional extras (River, scikit-learn, PyTorch) are imported only
when an artifact of theirs is loaded, and raise :class:`~headwater.errors.MissingExtraError`
when the extra is missing.

>>> sorted(FORMATS)  # doctest: +NORMALIZE_WHITESPACE
['headwater-linear', 'river-pickle', 'sklearn-pickle', 'sklearn-skops',
 'torch-safetensors']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

from headwater.errors import ModelArtifactError
from headwater.models.artifact import MANIFEST, read_manifest
from headwater.models.protocol import Model, PathArg

__all__ = ["FORMATS", "load_model"]

Loader = Callable[[PathArg, bool], Model]


def _linear(directory: PathArg, trusted: bool) -> Model:
    from headwater.models import linear

    return linear.load(directory, trusted=trusted)


def _river(directory: PathArg, trusted: bool) -> Model:
    from headwater.models.river import RiverModel

    return RiverModel.load(directory, trusted=trusted)


def _sklearn(directory: PathArg, trusted: bool) -> Model:
    from headwater.models.sklearn import SklearnModel

    return SklearnModel.load(directory, trusted=trusted)


def _torch(directory: PathArg, trusted: bool) -> Model:
    from headwater.models.torch import TorchModel

    return TorchModel.load(directory, trusted=trusted)


#: Every artifact format Headwater loads, and its loader.
FORMATS: Final[Mapping[str, Loader]] = MappingProxyType({
    "headwater-linear": _linear,
    "river-pickle": _river,
    "sklearn-skops": _sklearn,
    "sklearn-pickle": _sklearn,
    "torch-safetensors": _torch,
})


def load_model(directory: PathArg, *, trusted: bool = False) -> Model:
    """The model saved in ``directory``, whatever its format.

    ``trusted=True`` allows artifacts that run code when loaded (pickle, skops types
    outside skops' trusted list); pass it only for an artifact you trust whoever wrote.
    A model from a store is loaded by :meth:`headwater.registry.ModelRegistry.load`,
    which passes it only when the store's operator has opted in.
    """
    manifest = read_manifest(directory)
    loader = FORMATS.get(manifest.format)
    if loader is None:
        raise ModelArtifactError(str(Path(directory) / MANIFEST),
                                 f"unknown format {manifest.format!r}; known: {sorted(FORMATS)}")
    return loader(directory, trusted)
