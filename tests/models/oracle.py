"""Reference implementations, written for reading, that the fast paths must agree with.

- :func:`textbook_ftrl`: McMahan et al. (2013), Algorithm 1 (per-coordinate
  FTRL-Proximal for logistic regression), one row at a time, weights recomputed in
  closed form before every prediction; plus ``decay``: ``n`` is multiplied by it once
  per row of the stream (for a coordinate absent from rows, when it next appears).
- :func:`blocked_ftrl`: the documented semantics of :mod:`headwater.models.ftrl`, one
  row at a time: a step ``w -= rate * g`` per row, rates and closed-form weights
  refreshed every ``block`` rows of the stream.
- :func:`standardise`: Welford's running mean and variance, each row scaled with the
  statistics of the rows before it.

Rows are dicts ``{coordinate: value}``; each function returns the prediction made for
every row just before it was learnt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _link(score: float, logistic: bool) -> float:
    if not logistic:
        return score
    if score >= 0:
        return 1.0 / (1.0 + math.exp(-score))
    return math.exp(score) / (1.0 + math.exp(score))


def _closed(z: float, n: float, alpha: float, beta: float, l1: float,
            l2: float) -> tuple[float, float]:
    """FTRL-Proximal's weight and step size for one coordinate."""
    rate = 1.0 / ((beta + math.sqrt(n)) / alpha + l2)
    if l1 and abs(z) <= l1:
        return 0.0, 0.0
    return -(z - math.copysign(l1, z)) * rate, rate


def textbook_ftrl(rows: Sequence[dict[int, float]], y: Sequence[float], *, alpha: float,
                  beta: float, l1: float, l2: float, decay: float = 1.0,
                  logistic: bool = True) -> list[float]:
    z: dict[int, float] = {}
    n: dict[int, float] = {}
    last: dict[int, int] = {}
    out = []
    for t, (x, target) in enumerate(zip(rows, y, strict=True), start=1):
        w = {i: _closed(z.get(i, 0.0), n.get(i, 0.0), alpha, beta, l1, l2)[0] for i in x}
        p = _link(sum(w[i] * v for i, v in x.items()), logistic)
        out.append(p)
        for i, v in x.items():
            g = (p - target) * v
            n_old = n.get(i, 0.0)
            n_new = n_old * decay ** (t - last.get(i, 0)) + g * g
            last[i] = t
            sigma = (math.sqrt(n_new) - math.sqrt(n_old)) / alpha
            z[i] = z.get(i, 0.0) + g - sigma * w[i]
            n[i] = n_new
    return out


def blocked_ftrl(rows: Sequence[dict[int, float]], y: Sequence[float],
                 weights: Sequence[float] | None = None, *, alpha: float, beta: float,
                 l1: float, l2: float, decay: float, block: int,
                 logistic: bool = True) -> list[float]:
    z: dict[int, float] = {}
    n: dict[int, float] = {}
    w: dict[int, float] = {}
    rate: dict[int, float] = {}
    gsum: dict[int, float] = {}
    g2sum: dict[int, float] = {}
    last: dict[int, int] = {}
    touched: set[int] = set()
    out = []
    for seen, (x, target) in enumerate(zip(rows, y, strict=True), start=1):
        p = _link(sum(w.get(i, 0.0) * v for i, v in x.items()), logistic)
        out.append(p)
        e = (p - target) * (1.0 if weights is None else weights[seen - 1])
        for i, v in x.items():
            if i not in rate:
                rate[i] = _closed(0.0, 0.0, alpha, beta, l1, l2)[1]
            g = e * v
            w[i] = w.get(i, 0.0) - rate[i] * g
            gsum[i] = gsum.get(i, 0.0) + g
            g2sum[i] = g2sum.get(i, 0.0) + g * g
            touched.add(i)
        if seen % block == 0:
            for i in touched:
                z_old, n_old = z.get(i, 0.0), n.get(i, 0.0)
                w_start = _closed(z_old, n_old, alpha, beta, l1, l2)[0]
                n[i] = n_old * decay ** (seen - last.get(i, 0)) + g2sum[i]
                z[i] = z_old + gsum[i] - (math.sqrt(n[i]) - math.sqrt(n_old)) / alpha * w_start
                w[i], rate[i] = _closed(z[i], n[i], alpha, beta, l1, l2)
                gsum[i] = g2sum[i] = 0.0
                last[i] = seen
            touched = set()
    return out


def standardise(rows: Sequence[Sequence[float]]) -> list[list[float]]:
    """Each row scaled by the running mean and (population) std of the rows before it."""
    mean = [0.0] * (len(rows[0]) if rows else 0)
    m2 = list(mean)
    out = []
    for count, row in enumerate(rows):
        scaled = []
        for j, v in enumerate(row):
            std = math.sqrt(m2[j] / count) if count else 0.0
            scaled.append((v - mean[j]) / std if std > 1e-12 * (1 + abs(mean[j])) else 0.0)
        out.append(scaled)
        for j, v in enumerate(row):
            delta = v - mean[j]
            mean[j] += delta / (count + 1)
            m2[j] += delta * (v - mean[j])
    return out
