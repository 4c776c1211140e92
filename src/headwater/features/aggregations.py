"""Aggregations as mergeable partial aggregates over NumPy arrays.

Every aggregation is a monoid on a *partial*: a dict of named arrays, one row per partial
(one per tile of an entity in the engine, one per event when lifted). The same four
vectorised operations serve the live engine, the backfill, the online store and the
point-in-time join, so no path has its own implementation:

- ``lift(values, times, offsets)``: one partial per event;
- ``reduce(lifted, starts)``: merge runs of consecutive lifted rows (sorted by slot, then
  by ``(time, offset)``), one output row per run;
- ``combine(a, b)``: merge two partials row by row (``b`` is the later one);
- ``finalize(partial)``: the feature values (``NaN`` where the value is null).

``accumulate`` (running merges along the tiles of each entity, for online entries) is
derived from ``combine``; the sums and extremes override it with one NumPy call.

>>> agg = make("mean")
>>> p = agg.lift(np.array([1.0, 2.0, 6.0]), np.array([1, 2, 3]), np.array([0, 1, 2]))
>>> agg.finalize(agg.reduce(p, np.array([0]))).tolist()
[3.0]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from headwater.errors import ValidationError
from headwater.log.partitioner import murmur2

__all__ = [
    "AGGREGATIONS",
    "Aggregation",
    "Partial",
    "make",
]

Partial = dict[str, npt.NDArray[Any]]  # named state arrays of mixed dtypes
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_HLL_P: Final = 8  # 256 registers: about 6.5 % standard error
_HLL_M: Final = 1 << _HLL_P
_NEVER: Final = -(1 << 62)  # the time of no event (safe to negate)


def _segment_ends(starts: I64, n: int) -> I64:
    return np.append(starts[1:], n) - 1


class Aggregation(ABC):
    """A monoid over partials; see the module docstring."""

    kind: ClassVar[str]
    #: The value of an empty window when the entity is known (count and sum: 0).
    empty_value: ClassVar[float] = np.nan

    @abstractmethod
    def empty(self, size: int) -> Partial:
        """``size`` identity partials."""

    @abstractmethod
    def lift(self, values: F64, times: I64, offsets: I64) -> Partial: ...

    @abstractmethod
    def reduce(self, partial: Partial, starts: I64) -> Partial: ...

    @abstractmethod
    def combine(self, a: Partial, b: Partial) -> Partial: ...

    @abstractmethod
    def finalize(self, partial: Partial) -> F64: ...

    def reduce_axis(self, partial: Partial) -> Partial:
        """Merge along the second axis (the tiles of each entity), oldest tile first."""
        first = {k: v[:, 0] for k, v in partial.items()}
        for i in range(1, next(iter(partial.values())).shape[1]):
            first = self.combine(first, {k: v[:, i] for k, v in partial.items()})
        return first

    def accumulate(self, partial: Partial) -> Partial:
        """Running merges along the second axis (the tiles of each entity, newest
        first): column ``d`` merges columns ``0 … d``, each older tile combined in
        before the newer ones, starting from the identity.

        >>> make("max").accumulate({"n": np.array([[1, 0, 2]]),
        ...                         "v": np.array([[3.0, -np.inf, 5.0]])})["v"].tolist()
        [[3.0, 3.0, 5.0]]
        """
        rows, n = next(iter(partial.values())).shape[:2]
        acc = self.empty(rows)
        out = {k: np.empty_like(v) for k, v in partial.items()}
        for d in range(n):
            acc = self.combine({k: v[:, d] for k, v in partial.items()}, acc)
            for k, v in out.items():
                v[:, d] = acc[k]
        return out

    #: Whether the result depends on the order of events (then folding sorts them).
    ordered: ClassVar[bool] = True

    def fold(self, state: Partial, slots: I64, values: F64) -> None:
        """Add events into ``state`` rows ``slots`` (repeats allowed), in place, one
        event at a time in their order (``ufunc.at``: no array as large as the state).

        Only for order-free aggregations (``ordered = False``); the others are folded by
        sorting, lifting, reducing and combining.
        """
        raise NotImplementedError(f"{self.kind} is folded by sorting")


class Count(Aggregation):
    kind = "count"
    empty_value = 0.0
    ordered = False

    def fold(self, state: Partial, slots: I64, values: F64) -> None:
        np.add.at(state["n"], slots, 1)

    def empty(self, size: int) -> Partial:
        return {"n": np.zeros(size, np.int64)}

    def lift(self, values: F64, times: I64, offsets: I64) -> Partial:
        return {"n": np.ones(len(times), np.int64)}

    def reduce(self, partial: Partial, starts: I64) -> Partial:
        return {"n": np.add.reduceat(partial["n"], starts) if len(starts) else partial["n"][:0]}

    def combine(self, a: Partial, b: Partial) -> Partial:
        return {"n": a["n"] + b["n"]}

    def accumulate(self, partial: Partial) -> Partial:
        return {"n": np.cumsum(partial["n"], axis=1)}

    def finalize(self, partial: Partial) -> F64:
        return partial["n"].astype(np.float64)


class Sum(Aggregation):
    kind = "sum"
    empty_value = 0.0
    ordered = False

    def fold(self, state: Partial, slots: I64, values: F64) -> None:
        np.add.at(state["n"], slots, 1)
        np.add.at(state["sum"], slots, values)

    def empty(self, size: int) -> Partial:
        return {"n": np.zeros(size, np.int64), "sum": np.zeros(size)}

    def lift(self, values: F64, times: I64, offsets: I64) -> Partial:
        return {"n": np.ones(len(values), np.int64), "sum": values.astype(np.float64)}

    def reduce(self, partial: Partial, starts: I64) -> Partial:
        if not len(starts):
            return {k: v[:0] for k, v in partial.items()}
        return {k: np.add.reduceat(v, starts) for k, v in partial.items()}

    def combine(self, a: Partial, b: Partial) -> Partial:
        return {k: a[k] + b[k] for k in a}

    def accumulate(self, partial: Partial) -> Partial:
        # Adding is commutative in floating point too: the same sums as ``combine``.
        return {k: np.cumsum(v, axis=1) for k, v in partial.items()}

    def finalize(self, partial: Partial) -> F64:
        return partial["sum"].astype(np.float64, copy=False)


class Mean(Sum):
    kind = "mean"
    empty_value = np.nan

    def finalize(self, partial: Partial) -> F64:
        n = partial["n"]
        out = np.full(n.shape, np.nan)
        np.divide(partial["sum"], n, out=out, where=n > 0)
        return out


class Min(Aggregation):
    kind = "min"
    ordered = False
    _ufunc: ClassVar[np.ufunc] = np.minimum
    _identity: ClassVar[float] = np.inf

    def fold(self, state: Partial, slots: I64, values: F64) -> None:
        np.add.at(state["n"], slots, 1)
        self._ufunc.at(state["v"], slots, values)

    def empty(self, size: int) -> Partial:
        return {"n": np.zeros(size, np.int64), "v": np.full(size, self._identity)}

    def lift(self, values: F64, times: I64, offsets: I64) -> Partial:
        return {"n": np.ones(len(values), np.int64), "v": values.astype(np.float64)}

    def reduce(self, partial: Partial, starts: I64) -> Partial:
        if not len(starts):
            return {k: v[:0] for k, v in partial.items()}
        return {"n": np.add.reduceat(partial["n"], starts),
                "v": self._ufunc.reduceat(partial["v"], starts)}

    def combine(self, a: Partial, b: Partial) -> Partial:
        return {"n": a["n"] + b["n"], "v": self._ufunc(a["v"], b["v"])}

    def accumulate(self, partial: Partial) -> Partial:
        return {"n": np.cumsum(partial["n"], axis=1),
                "v": self._ufunc.accumulate(partial["v"], axis=1)}

    def finalize(self, partial: Partial) -> F64:
        return np.where(partial["n"] > 0, partial["v"], np.nan)


class Max(Min):
    kind = "max"
    _ufunc = np.maximum
    _identity = -np.inf


class Last(Aggregation):
    """The value of the latest event by ``(time, offset)``."""

    kind = "last"

    def empty(self, size: int) -> Partial:
        return {"n": np.zeros(size, np.int64), "t": np.full(size, _NEVER),
                "o": np.full(size, -1, np.int64), "v": np.full(size, np.nan)}

    def lift(self, values: F64, times: I64, offsets: I64) -> Partial:
        return {"n": np.ones(len(values), np.int64), "t": times.astype(np.int64),
                "o": offsets.astype(np.int64), "v": values.astype(np.float64)}

    def reduce(self, partial: Partial, starts: I64) -> Partial:
        n = len(partial["n"])
        if not len(starts):
            return {k: v[:0] for k, v in partial.items()}
        ends = _segment_ends(starts, n)
        out = {k: v[ends] for k, v in partial.items() if k != "n"}
        out["n"] = np.add.reduceat(partial["n"], starts)
        return out

    def combine(self, a: Partial, b: Partial) -> Partial:
        later = (b["t"] > a["t"]) | ((b["t"] == a["t"]) & (b["o"] >= a["o"]))
        later &= b["n"] > 0
        out = {k: np.where(later, b[k], a[k]) for k in ("t", "o", "v")}
        out["n"] = a["n"] + b["n"]
        return out

    def finalize(self, partial: Partial) -> F64:
        return np.where(partial["n"] > 0, partial["v"], np.nan)


class Variance(Aggregation):
    """Population variance, merged with Chan et al.'s parallel formula."""

    kind = "var"

    def empty(self, size: int) -> Partial:
        return {"n": np.zeros(size, np.int64), "mean": np.zeros(size), "m2": np.zeros(size)}

    def lift(self, values: F64, times: I64, offsets: I64) -> Partial:
        return {"n": np.ones(len(values), np.int64), "mean": values.astype(np.float64),
                "m2": np.zeros(len(values))}

    def reduce(self, partial: Partial, starts: I64) -> Partial:
        if not len(starts):
            return {k: v[:0] for k, v in partial.items()}
        n = partial["n"].astype(np.float64)
        counts = np.add.reduceat(partial["n"], starts)
        sums = np.add.reduceat(partial["mean"] * n, starts)
        means = sums / np.maximum(counts, 1)
        run = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(n))))
        deviation = partial["mean"] - means[run]
        m2 = np.add.reduceat(partial["m2"] + n * deviation * deviation, starts)
        return {"n": counts, "mean": means, "m2": m2}

    def combine(self, a: Partial, b: Partial) -> Partial:
        na, nb = a["n"].astype(np.float64), b["n"].astype(np.float64)
        total = na + nb
        safe = np.maximum(total, 1)
        delta = b["mean"] - a["mean"]
        mean = np.where(total > 0, a["mean"] + delta * nb / safe, 0.0)
        m2 = a["m2"] + b["m2"] + delta * delta * na * nb / safe
        return {"n": a["n"] + b["n"], "mean": mean, "m2": m2}

    def finalize(self, partial: Partial) -> F64:
        n = partial["n"]
        return np.where(n > 0, partial["m2"] / np.maximum(n, 1), np.nan)


class Std(Variance):
    kind = "std"

    def finalize(self, partial: Partial) -> F64:
        return np.sqrt(super().finalize(partial))


class ApproxDistinct(Aggregation):
    """HyperLogLog with 256 registers over Kafka's murmur2 of each value's bytes.

    Registers merge by maximum, so the result does not depend on the order of events.
    """

    kind = "approx_distinct"
    empty_value = 0.0

    def empty(self, size: int) -> Partial:
        return {"n": np.zeros(size, np.int64), "r": np.zeros((size, _HLL_M), np.uint8)}

    def lift(self, values: F64, times: I64, offsets: I64) -> Partial:
        hashes = murmur2(pa.array(np.ascontiguousarray(values, np.float64).view(np.int64)))
        index = (hashes >> np.uint32(32 - _HLL_P)).astype(np.int64)
        rest = (hashes << np.uint32(_HLL_P)) | np.uint32(1 << (_HLL_P - 1))
        rank = (32 - np.floor(np.log2(rest.astype(np.float64)))).astype(np.uint8)
        registers = np.zeros((len(values), _HLL_M), np.uint8)
        registers[np.arange(len(values)), index] = rank
        return {"n": np.ones(len(values), np.int64), "r": registers}

    def reduce(self, partial: Partial, starts: I64) -> Partial:
        if not len(starts):
            return {k: v[:0] for k, v in partial.items()}
        return {"n": np.add.reduceat(partial["n"], starts),
                "r": np.maximum.reduceat(partial["r"], starts, axis=0)}

    def combine(self, a: Partial, b: Partial) -> Partial:
        return {"n": a["n"] + b["n"], "r": np.maximum(a["r"], b["r"])}

    def finalize(self, partial: Partial) -> F64:
        registers = partial["r"].astype(np.float64)
        m = float(_HLL_M)
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / np.sum(np.exp2(-registers), axis=-1)
        zeros = np.sum(partial["r"] == 0, axis=-1)
        with np.errstate(divide="ignore"):
            linear = m * np.log(m / np.maximum(zeros, 1))
        estimate: F64 = np.where((raw <= 2.5 * m) & (zeros > 0), linear, raw)
        return np.round(estimate)


class LastN(Aggregation):
    """The ``n`` latest values by ``(time, offset)``, newest first (``NaN`` pads)."""

    kind = "last_n"

    def __init__(self, n: int) -> None:
        if not 1 <= n <= 1024:
            raise ValidationError("n", f"last_n keeps 1..1024 values, not {n}")
        self.n = n

    def empty(self, size: int) -> Partial:
        k = self.n
        return {"n": np.zeros(size, np.int64), "t": np.full((size, k), _NEVER),
                "o": np.full((size, k), -1, np.int64), "v": np.full((size, k), np.nan)}

    def lift(self, values: F64, times: I64, offsets: I64) -> Partial:
        out = self.empty(len(values))
        out["n"][:] = 1
        out["t"][:, 0], out["o"][:, 0], out["v"][:, 0] = times, offsets, values
        return out

    def reduce(self, partial: Partial, starts: I64) -> Partial:
        out = self.empty(len(starts))
        if not len(starts):
            return out
        out["n"] = np.add.reduceat(partial["n"], starts)
        ends = _segment_ends(starts, len(partial["n"]))
        for back in range(self.n):  # lifted rows, oldest first: the newest is at the end
            rows = ends - back
            valid = rows >= starts
            for k in ("t", "o", "v"):
                out[k][valid, back] = partial[k][rows[valid], 0]
        return out

    def combine(self, a: Partial, b: Partial) -> Partial:
        t = np.concatenate([a["t"], b["t"]], axis=1)
        o = np.concatenate([a["o"], b["o"]], axis=1)
        v = np.concatenate([a["v"], b["v"]], axis=1)
        order = np.lexsort((-o, -t), axis=1)[:, : self.n]  # newest first
        take = np.take_along_axis
        return {"n": a["n"] + b["n"], "t": take(t, order, axis=1), "o": take(o, order, axis=1),
                "v": take(v, order, axis=1)}

    def finalize(self, partial: Partial) -> F64:
        return partial["v"]


AGGREGATIONS: Final[dict[str, type[Aggregation]]] = {
    cls.kind: cls
    for cls in (Count, Sum, Mean, Min, Max, Last, Variance, Std, ApproxDistinct)
}


def make(kind: str, n: int | None = None) -> Aggregation:
    """The aggregation called ``kind`` (``last_n`` takes ``n``)."""
    if kind == "last_n":
        return LastN(n or 1)
    cls = AGGREGATIONS.get(kind)
    if cls is None:
        raise ValidationError(
            "aggregation", f"unknown aggregation {kind!r}; use one of "
            f"{', '.join([*AGGREGATIONS, 'last_n'])}"
        )
    return cls()
