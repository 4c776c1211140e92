"""Test models that record what they learnt, so tests can see exactly when."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from headwater.models.features import Features


class Recorder:
    """Learns nothing useful: scores every row with the number of labels it has learnt
    (scaled into (0, 1)) and keeps the ``id`` column of each learnt row, in order."""

    def __init__(self) -> None:
        self.learnt: list[int] = []

    def predict(self, batch: Features) -> npt.NDArray[np.float64]:
        n = len(next(iter(batch.values())))
        return np.full(n, len(self.learnt) / (len(self.learnt) + 1.0))

    def learn(self, batch: Features, y: npt.ArrayLike,
              sample_weight: npt.ArrayLike | None = None) -> None:
        self.learnt.extend(int(i) for i in np.asarray(batch["id"]))


class Constant:
    """Scores every row with one value."""

    def __init__(self, score: float) -> None:
        self.score = score

    def predict(self, batch: Features) -> npt.NDArray[np.float64]:
        return np.full(len(next(iter(batch.values()))), self.score)

    def learn(self, batch: Features, y: npt.ArrayLike,
              sample_weight: npt.ArrayLike | None = None) -> None:
        pass

    def params(self) -> dict[str, Any]:
        return {"score": self.score}
