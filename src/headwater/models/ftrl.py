"""FTRL-Proximal with per-coordinate learning rates, learning a batch row by row.

McMahan et al. (2013), "Ad click prediction: a view from the trenches", per coordinate
``i``: ``z`` (the adjusted sum of gradients) and ``n`` (the sum of squared gradients)
give the weight in closed form, ``w = 0`` when ``|z| <= l1`` and otherwise
``w = -(z - sign(z) l1) / ((beta + sqrt(n)) / alpha + l2)``. ``decay < 1`` forgets old
squared gradients (``n`` is multiplied by ``decay`` per row), which keeps the rates
from vanishing on a drifting stream.

Semantics. Rows are learnt one after another in stream order, whatever the batches:
row ``t`` is predicted with the current weights, its residual ``e = s (p - y)`` (``s``
its sample weight, ``p`` the prediction) gives the gradient ``g = e x``, and the
weights take the step ``w -= rate * g``. Every ``block`` rows (counted over the whole
stream, so batch boundaries do not matter) the rates and the proximal solution are
refreshed: ``n`` and ``z`` absorb the block's gradients as FTRL does (``z += g - sigma
w`` with ``w`` the weights at the block's start) and ``w`` and ``rate = 1 / ((beta +
sqrt(n)) / alpha + l2)`` are recomputed in closed form; a coordinate held at zero by L1
stays there until the refresh. With ``block=1`` this is exactly FTRL-Proximal
(Algorithm 1 of the paper); with a larger block the rates lag by at most ``block``
rows, and every row is still predicted after the steps of every earlier row. On Elec2
``block=128`` and ``block=1`` are within 0.05 point of accuracy and 0.0005 of AUC
(``benchmarks/learning.py``).

Speed. Within a block the rates are fixed, so the weights after row ``s`` are the
block's weights minus ``rate * sum(e x)`` of the rows so far, and the score of row
``t`` is its score under the chunk's starting weights minus ``sum_{s<t} e_s K[t, s]``
with the kernel ``K = (x * rate) @ x.T``. NumPy computes the kernel and the starting
scores of a chunk of up to ``CHUNK`` rows in two products; a Python loop over plain
floats carries the residuals through ``SUB`` rows at a time, and one more product per
``SUB`` rows brings in the residuals of the rows before. The weights are updated once
per chunk. Coordinates of hashed categorical values join a chunk's matrix as columns
holding 1.0 where the row has the value.

With ``block=1`` there is nothing to batch: each row's prediction needs the refresh of
the row before. That path runs the same per-coordinate arithmetic over plain floats
(the dense weights held in lists for the whole batch, a row's hashed coordinates read
and written one by one), which costs a few times less than NumPy calls on one-row
arrays; it agrees with the chunked path to rounding (a row's score is summed left to
right rather than by BLAS).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from math import exp, sqrt
from operator import mul
from typing import Final

import numpy as np
import numpy.typing as npt

from headwater.models.features import FloatArray

__all__ = ["FTRL"]

#: Rows learnt with one kernel (CHUNK x CHUNK); a longer block is split into chunks.
CHUNK: Final = 128
#: Rows whose residuals the Python loop carries; earlier rows of the chunk are one product.
SUB: Final = 16

IntArray = npt.NDArray[np.int64]
Carry = Callable[[list[float], list[list[float]], list[float], list[float], list[float]],
                 list[float]]


class FTRL:
    """The optimiser state over ``size`` weights; coordinates below ``dense`` are read by
    every row, the others (hashed categorical values) only by the rows holding them."""

    def __init__(self, size: int, dense: int, *, alpha: float, beta: float, l1: float,
                 l2: float, decay: float, block: int) -> None:
        self.alpha, self.beta, self.l1, self.l2 = alpha, beta, l1, l2
        self.decay, self.block, self.dense = decay, block, dense
        self.z: FloatArray = np.zeros(size)
        self.n: FloatArray = np.zeros(size)
        self.w: FloatArray = np.zeros(size)
        self.rate: FloatArray = self._closed(self.z, self.n)[1]
        self._dense = slice(0, dense)
        self.gsum: FloatArray = np.zeros(size)
        self.g2sum: FloatArray = np.zeros(size)
        self.last: IntArray = np.zeros(size, dtype=np.int64)
        self.seen = 0
        self._touched: list[IntArray] = []

    def predict_learn(self, dense: FloatArray, hashed: IntArray | None, y: FloatArray,
                      weight: FloatArray | None, *, logistic: bool) -> FloatArray:
        """Learn rows in order; return each row's prediction from before its own step.

        ``dense`` is ``(m, self.dense)``; ``hashed`` is ``(m, c)`` coordinates at or above
        ``self.dense``, each worth 1.0 in its row.
        """
        pred: list[float] = []
        if self.block == 1:
            self._learn_exact(dense, hashed, y, weight, logistic, pred)
        else:
            carry = _carry_logistic if logistic else _carry_identity
            self._learn(dense, hashed, y, weight, carry, pred)
        return np.asarray(pred)

    def learn(self, dense: FloatArray, hashed: IntArray | None, y: FloatArray,
              weight: FloatArray | None, *, logistic: bool) -> None:
        """:meth:`predict_learn` without keeping the predictions (a leaner loop)."""
        if self.block == 1:
            self._learn_exact(dense, hashed, y, weight, logistic, [])
        elif logistic and weight is None:
            self._learn(dense, hashed, y, None, _carry_logistic_plain, [])
        else:
            self.predict_learn(dense, hashed, y, weight, logistic=logistic)

    def _learn_exact(self, dense: FloatArray, hashed: IntArray | None, y: FloatArray,
                     weight: FloatArray | None, logistic: bool, pred: list[float]) -> None:
        """``block == 1``: every row predicts, steps and refreshes its coordinates.

        The arithmetic of :meth:`_chunk` then :meth:`_refresh` on a one-row chunk, in the
        same order, over plain floats: the dense coordinates live in lists for the
        batch, a row's hashed coordinates are read and written one by one. Nothing is
        allocated per row but the floats themselves.
        """
        k, m = self.dense, len(dense)
        alpha, beta, l1, l2, decay = self.alpha, self.beta, self.l1, self.l2, self.decay
        z, n = self.z[:k].tolist(), self.n[:k].tolist()
        w, rate = self.w[:k].tolist(), self.rate[:k].tolist()
        root = [sqrt(v) for v in n]
        # the dense coordinates are refreshed together, by every row
        fade = decay ** (self.seen + 1 - int(self.last[0]))
        columns = range(k)
        targets = y.tolist()
        weights = [1.0] * m if weight is None else weight.tolist()
        cells = _cells(hashed)
        keep = pred.append
        z_all, n_all, w_all, rate_all, last_all = self.z, self.n, self.w, self.rate, self.last
        for t, (x, target, s) in enumerate(zip(dense.tolist(), targets, weights,
                                               strict=True)):
            score = sum(map(mul, x, w))
            row = cells[t] if cells else ()
            for i, count in row:  # the hashed coordinates, after the dense ones
                score += count * float(w_all[i])
            if logistic:
                try:
                    p = 1.0 / (1.0 + exp(-score))
                except OverflowError:  # a score below about -709
                    p = 0.0
            else:
                p = score
            keep(p)
            e = (p - target) * s
            ee = e * e
            seen = self.seen + t + 1
            for i in columns:
                v, zi = x[i], z[i]
                step = -rate[i] * (zi - _sign(zi) * l1) if l1 else -rate[i] * zi
                grown = n[i] * fade + ee * (v * v)
                r = sqrt(grown)
                step *= (r - root[i]) / alpha
                zi = zi + (0.0 + e * v) - step
                z[i], n[i], root[i] = zi, grown, r
                ri = 1.0 / ((beta + r) / alpha + l2)
                w[i], rate[i] = _proximal(zi, ri, l1) if l1 else (-zi * ri, ri)
            for i, count in row:
                zi, n_old = float(z_all[i]), float(n_all[i])
                step = -float(rate_all[i]) * (zi - _sign(zi) * l1 if l1 else zi)
                grown = n_old * decay ** (seen - int(last_all[i])) + ee * (count * count)
                r = sqrt(grown)
                step *= (r - sqrt(n_old)) / alpha
                zi = zi + (0.0 + e * count) - step
                z_all[i], n_all[i], last_all[i] = zi, grown, seen
                w_all[i], rate_all[i] = _closed(zi, r, alpha, beta, l1, l2)
            fade = decay
        if m:
            self.seen += m
            self.z[:k], self.n[:k], self.w[:k], self.rate[:k] = z, n, w, rate
            self.last[:k] = self.seen

    def _learn(self, dense: FloatArray, hashed: IntArray | None, y: FloatArray,
               weight: FloatArray | None, carry: Carry, pred: list[float]) -> None:
        m = len(dense)
        targets = y.tolist()
        weights = [1.0] * m if weight is None else weight.tolist()
        start = 0
        while start < m:
            stop = min(m, start + self.block - self.seen % self.block, start + CHUNK)
            rows = slice(start, stop)
            self._chunk(dense[rows], None if hashed is None else hashed[rows], targets[rows],
                        weights[rows], carry, pred)
            self.seen += stop - start
            if self.seen % self.block == 0:
                self._refresh()
            start = stop

    def _chunk(self, dense: FloatArray, hashed: IntArray | None, targets: list[float],
               weights: list[float], carry: Carry, pred: list[float]) -> None:
        """Learn rows that share one set of rates (part of a block)."""
        idx: IntArray | slice
        if hashed is None:
            x, idx = dense, self._dense
        else:
            x, idx = self._gather(dense, hashed)
        w, rate = self.w[idx], self.rate[idx]  # views when idx is a slice
        kernel = (x * rate) @ x.T
        scores = x @ w
        m = len(x)
        e = np.empty(m)
        for a in range(0, m, SUB):
            b = a + SUB
            if a:  # what the steps of the rows before this sub-segment take off its scores
                scores[a:b] -= kernel[a:b, :a] @ e[:a]
            e[a:b] = carry(scores[a:b].tolist(), kernel[a:b, a:b].tolist(), targets[a:b],
                           weights[a:b], pred)
        grad = e @ x
        if isinstance(idx, slice):
            w -= rate * grad
        else:
            self.w[idx] = w - rate * grad
        self.gsum[idx] += grad
        self.g2sum[idx] += (e * e) @ (x * x)

    def _gather(self, dense: FloatArray, hashed: IntArray) -> tuple[FloatArray, IntArray]:
        """A segment's rows over its active coordinates (dense, then its hashed values)."""
        k, m = self.dense, len(dense)
        uniq, inverse = np.unique(hashed, return_inverse=True)
        x = np.zeros((m, k + len(uniq)))
        x[:, :k] = dense
        rows = np.repeat(np.arange(m), hashed.shape[1])
        np.add.at(x, (rows, k + inverse.reshape(-1)), 1.0)
        self._touched.append(uniq)
        return x, np.concatenate([np.arange(k), uniq])

    def _refresh(self) -> None:
        """End of a block: fold its gradients into ``z`` and ``n``, recompute ``w``, rates."""
        idx: IntArray | slice = self._dense
        if self._touched:
            idx = np.unique(np.concatenate([np.arange(self.dense), *self._touched]))
            self._touched = []
        z, n_old, rate = self.z[idx], self.n[idx], self.rate[idx]
        w_start = -rate * (z - np.sign(z) * self.l1) if self.l1 else -rate * z
        if self.decay == 1.0:
            n = n_old + self.g2sum[idx]
        elif isinstance(idx, slice):  # the dense coordinates were all refreshed together
            n = n_old * self.decay ** (self.seen - int(self.last[0])) + self.g2sum[idx]
        else:
            n = n_old * self.decay ** (self.seen - self.last[idx]) + self.g2sum[idx]
        root = np.sqrt(n)
        w_start *= (root - np.sqrt(n_old)) / self.alpha
        z = z + self.gsum[idx] - w_start
        self.z[idx], self.n[idx] = z, n
        self.w[idx], self.rate[idx] = self._closed(z, root)
        self.gsum[idx] = 0.0
        self.g2sum[idx] = 0.0
        self.last[idx] = self.seen

    def _closed(self, z: FloatArray, root_n: FloatArray) -> tuple[FloatArray, FloatArray]:
        """FTRL-Proximal's weights and step sizes for ``z`` and ``sqrt(n)``."""
        rate = 1.0 / ((self.beta + root_n) / self.alpha + self.l2)
        if not self.l1:
            return -z * rate, rate
        live = np.abs(z) > self.l1
        rate = np.where(live, rate, 0.0)
        return -(z - np.sign(z) * self.l1) * rate, rate

    def state(self) -> dict[str, np.ndarray]:
        """Everything learnt, as arrays (a block may be open: its sums are kept)."""
        if self._touched:  # keep one array of pending hashed coordinates
            self._touched = [np.unique(np.concatenate(self._touched))]
        pending = self._touched[0] if self._touched else np.zeros(0, dtype=np.int64)
        return {"z": self.z.copy(), "n": self.n.copy(), "w": self.w.copy(),
                "rate": self.rate.copy(), "gsum": self.gsum.copy(), "g2sum": self.g2sum.copy(),
                "last": self.last.copy(), "seen": np.array(self.seen, dtype=np.int64),
                "pending": pending.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Take the learnt arrays of :meth:`state` (shapes checked by the caller)."""
        for name in ("z", "n", "w", "rate", "gsum", "g2sum"):
            setattr(self, name, state[name].astype(np.float64))
        self.last = state["last"].astype(np.int64)
        self.seen = int(state["seen"])
        pending = state["pending"].astype(np.int64)
        self._touched = [pending] if len(pending) else []


def _closed(z: float, root_n: float, alpha: float, beta: float, l1: float,
            l2: float) -> tuple[float, float]:
    """:meth:`FTRL._closed` for one coordinate, with the same operations."""
    rate = 1.0 / ((beta + root_n) / alpha + l2)
    return _proximal(z, rate, l1) if l1 else (-z * rate, rate)


def _proximal(z: float, rate: float, l1: float) -> tuple[float, float]:
    """The weight and step size under L1: both 0 while ``|z| <= l1``."""
    if not abs(z) > l1:
        rate = 0.0
    return -(z - _sign(z) * l1) * rate, rate


def _sign(z: float) -> float:
    """``np.sign`` of one float."""
    return 1.0 if z > 0.0 else -1.0 if z < 0.0 else z


def _cells(hashed: IntArray | None) -> list[list[tuple[int, float]]]:
    """Each row's hashed coordinates, ascending, with how often the row holds them."""
    if hashed is None or not hashed.shape[1]:
        return []
    out = []
    for row in np.sort(hashed, axis=1).tolist():
        cells: dict[int, float] = {}
        for i in row:
            cells[i] = cells.get(i, 0.0) + 1.0
        out.append(list(cells.items()))
    return out


def _carry_logistic(scores: list[float], kernel: list[list[float]], y: list[float],
                    weight: list[float], pred: list[float]) -> list[float]:
    """The sequential core: each row's prediction given the residuals of the rows before.

    ``scores[t]`` is row ``t``'s score before the steps of these rows and
    ``kernel[t][s]`` what the step of row ``s`` takes off it. Appends the predictions
    to ``pred``, returns the weighted residuals.
    """
    exp = math.exp
    resid: list[float] = []
    keep, push = pred.append, resid.append
    for score, row, target, w in zip(scores, kernel, y, weight, strict=True):
        score -= sum(map(mul, resid, row))
        try:
            p = 1.0 / (1.0 + exp(-score))
        except OverflowError:  # a score below about -709
            p = 0.0
        keep(p)
        push((p - target) * w)
    return resid


def _carry_logistic_plain(scores: list[float], kernel: list[list[float]], y: list[float],
                          weight: list[float], pred: list[float]) -> list[float]:
    """:func:`_carry_logistic` without sample weights, keeping no predictions."""
    exp = math.exp
    resid: list[float] = []
    push = resid.append
    for score, row, target in zip(scores, kernel, y, strict=True):
        try:
            push(1.0 / (1.0 + exp(sum(map(mul, resid, row)) - score)) - target)
        except OverflowError:  # a score below about -709
            push(-target)
    return resid


def _carry_identity(scores: list[float], kernel: list[list[float]], y: list[float],
                    weight: list[float], pred: list[float]) -> list[float]:
    """:func:`_carry_logistic` for the identity link (least squares)."""
    resid: list[float] = []
    keep, push = pred.append, resid.append
    for score, row, target, w in zip(scores, kernel, y, weight, strict=True):
        p = score - sum(map(mul, resid, row))
        keep(p)
        push((p - target) * w)
    return resid
