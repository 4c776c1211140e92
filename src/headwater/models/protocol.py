"""The one protocol every model implements, whatever library is underneath.

A model reads columnar batches (:data:`~headwater.models.features.Features`: column
name → 1-D NumPy array) and answers one float per row: P(y = 1) for a binary
classifier, the prediction for a regressor. Before it has learnt anything it answers
the neutral value, 0.5 or 0.0.

The verbs:

- ``predict(batch)`` scores a batch; ``predict_one(x)`` scores one row given as a plain
  dict, the serving path, kept to dict and float work;
- ``learn(batch, y, sample_weight=None)`` updates the state with a batch (stateful
  training: a new version is the previous one plus a slice of the log);
- ``fit(batch, y)`` forgets all state and learns from scratch (stateless training);
- ``save(directory)`` writes an artifact: ``headwater-model.json`` (format, format
  version, adapter, hyper-parameters, feature names, sha256 of each weight file) and
  the weight files; ``load(directory, trusted=False)`` reads one back, and
  :func:`headwater.models.load_model` reads any known format;
- ``clone()`` is a model with the same hyper-parameters and nothing learnt;
- ``params()`` are those hyper-parameters, as JSON-able values.

Bad input raises :class:`~headwater.errors.ValidationError` naming the column.

An adapter whose class sets ``deterministic = True`` promises that learning the same
batches from the same state saves the same bytes; ``headwater models reproduce`` then
compares artifact hashes rather than metrics.

>>> from headwater.models import LogisticRegression
>>> isinstance(LogisticRegression(), Model)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy.typing as npt

from headwater.models.features import Features, FloatArray

__all__ = ["Model", "PathArg"]

#: A directory given as a string or a path.
PathArg = str | PathLike[str]


@runtime_checkable
class Model(Protocol):
    """A model Headwater can train, save, load and serve."""

    #: The artifact format :meth:`save` writes (a key of ``headwater.models.FORMATS``).
    format: ClassVar[str]

    def predict(self, batch: Features) -> FloatArray:
        """One score per row: P(y = 1) for a classifier, the prediction for a regressor."""
        ...

    def predict_one(self, x: Mapping[str, Any]) -> float:
        """The score of one row given as ``{column: value}`` (the serving path)."""
        ...

    def learn(self, batch: Features, y: npt.ArrayLike,
              sample_weight: npt.ArrayLike | None = None) -> None:
        """Update the learnt state with a batch (rows in order)."""
        ...

    def fit(self, batch: Features, y: npt.ArrayLike,
            sample_weight: npt.ArrayLike | None = None) -> None:
        """Forget everything learnt, then learn the batch."""
        ...

    def save(self, directory: PathArg) -> None:
        """Write the model to ``directory`` (created if needed; its files are replaced)."""
        ...

    @classmethod
    def load(cls, directory: PathArg, *, trusted: bool = False) -> Self:
        """Read a model :meth:`save` wrote. ``trusted`` allows formats that run code."""
        ...

    def clone(self) -> Self:
        """The same hyper-parameters, nothing learnt."""
        ...

    def params(self) -> dict[str, Any]:
        """The hyper-parameters, as JSON-able values."""
        ...
