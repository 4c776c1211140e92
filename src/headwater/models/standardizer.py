"""Online standardisation: running mean and variance per column (Welford).

Row ``t`` is scaled with the statistics of the rows *before* it, ``(x - mean) / std``
(population variance), and then counted, so a prediction and the learning step that
follows it see the same scaled row. A column whose spread is still zero (or that has
fewer than two rows) scales to 0.

The running statistics of a whole batch are computed at once from prefix sums,
centred on the mean carried in, which is Welford's recurrence unrolled: the mean after
row ``t`` is ``m0 + cumsum(x - m0) / n_t`` and the sum of squared deviations grows by
``(x_t - mean_{t-1}) * (x_t - mean_t)``. A batch and its rows fed one at a time agree
to rounding.

>>> import numpy as np
>>> scaler = Standardizer(1)
>>> scaler.learn_transform(np.array([[1.0], [3.0], [5.0], [7.0]])).ravel().tolist()
[0.0, 0.0, 3.0, 2.449489742783178]
>>> scaler.count, scaler.mean.tolist(), scaler.transform(np.array([[4.0]])).ravel().tolist()
(4, [4.0], [0.0])
"""

from __future__ import annotations

from typing import Final

import numpy as np

from headwater.models.features import FloatArray

__all__ = ["Standardizer"]

#: Rows per prefix-sum pass: keeps the cumulative sums short for accuracy.
_CHUNK: Final = 4096


class Standardizer:
    """Running per-column mean and variance of a ``width``-column numeric stream."""

    def __init__(self, width: int) -> None:
        self.count = 0
        self.mean: FloatArray = np.zeros(width)
        self.m2: FloatArray = np.zeros(width)

    def scale(self) -> tuple[FloatArray, FloatArray]:
        """The current ``(mean, 1 / std)`` per column, 0 where the spread is zero."""
        return self.mean.copy(), _inverse_std(self.m2, self.count, self.mean)

    def transform(self, x: FloatArray) -> FloatArray:
        """Rows scaled with the current statistics, which stay as they are."""
        mean, inv = self.scale()
        return (x - mean) * inv

    def learn_transform(self, x: FloatArray) -> FloatArray:
        """Each row scaled with the statistics before it; then all rows are counted."""
        if len(x) <= _CHUNK:
            return self._chunk(x)
        out = np.empty_like(x)
        for start in range(0, len(x), _CHUNK):
            out[start: start + _CHUNK] = self._chunk(x[start: start + _CHUNK])
        return out

    def _chunk(self, x: FloatArray) -> FloatArray:
        m = len(x)
        counts = np.arange(self.count, self.count + m + 1, dtype=np.float64)[:, None]
        # row i of `means` / `m2s` holds the statistics of the rows before row i
        means = np.empty((m + 1, x.shape[1]))
        means[0] = 0.0
        np.cumsum(x - self.mean, axis=0, out=means[1:])
        means[1:] /= counts[1:]
        means += self.mean
        centred = x - means[:-1]
        m2s = np.empty_like(means)
        m2s[0] = self.m2
        np.cumsum(centred * (x - means[1:]), axis=0, out=m2s[1:])
        m2s[1:] += self.m2
        self.count += m
        self.mean, self.m2 = means[-1].copy(), m2s[-1].copy()
        centred *= _inverse_std(m2s[:-1], counts[:-1], means[:-1])
        return centred

    def state(self) -> dict[str, np.ndarray]:
        """The statistics as arrays, for saving."""
        return {"count": np.array(self.count, dtype=np.int64), "mean": self.mean.copy(),
                "m2": self.m2.copy()}

    @classmethod
    def restore(cls, state: dict[str, np.ndarray]) -> Standardizer:
        """The standardiser a :meth:`state` describes."""
        scaler = cls(len(state["mean"]))
        scaler.count = int(state["count"])
        scaler.mean, scaler.m2 = state["mean"].astype(np.float64), state["m2"].astype(np.float64)
        return scaler


def _inverse_std(m2: FloatArray, count: FloatArray | int, mean: FloatArray) -> FloatArray:
    """``1 / sqrt(m2 / count)``, or 0 where the spread is below rounding noise."""
    std = np.sqrt(m2 / np.maximum(count, 1))
    live = std > 1e-12 * (1.0 + np.abs(mean))
    return np.divide(1.0, std, out=np.zeros_like(std), where=live)
