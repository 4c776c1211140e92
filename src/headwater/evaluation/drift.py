"""How far one distribution of scores has moved from another: PSI and the KS statistic.

- :func:`psi`, the population stability index: the reference's quantiles cut both
  samples into ``bins`` bins and ``Σ (p - q) · ln(p / q)`` sums over them (empty bins
  count as a tiny share). Rules of thumb: below 0.1 stable, above 0.25 a real shift.
- :func:`ks`, the two-sample Kolmogorov-Smirnov statistic: the largest gap between the
  two empirical distribution functions, exact in O(n log n).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=5_000), rng.normal(0.5, 1.0, size=5_000)
>>> round(psi(a, a), 6), psi(a, b) > 0.2, round(ks(a, a), 6), 0.15 < ks(a, b) < 0.25
(0.0, True, 0.0, True)
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["ks", "psi"]

_FLOOR: Final = 1e-6


def psi(reference: npt.ArrayLike, current: npt.ArrayLike, *, bins: int = 10) -> float:
    """The population stability index of ``current`` against ``reference`` (``nan`` if
    either is empty)."""
    ref = np.asarray(reference, np.float64)
    cur = np.asarray(current, np.float64)
    if not len(ref) or not len(cur):
        return math.nan
    edges = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    p_share = np.maximum(p / len(ref), _FLOOR)
    q_share = np.maximum(q / len(cur), _FLOOR)
    return float(np.sum((q_share - p_share) * np.log(q_share / p_share)))


def ks(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """The two-sample Kolmogorov-Smirnov statistic ``sup |F_a - F_b|`` (``nan`` if either
    sample is empty)."""
    x = np.sort(np.asarray(a, np.float64))
    y = np.sort(np.asarray(b, np.float64))
    if not len(x) or not len(y):
        return math.nan
    points = np.concatenate([x, y])
    fa = np.searchsorted(x, points, side="right") / len(x)
    fb = np.searchsorted(y, points, side="right") / len(y)
    return float(np.max(np.abs(fa - fb)))
