"""Contextual decisions: what a policy chose, with what probability, and the context.

A contextual policy looks at a *context* (a NumPy vector, or a mapping of feature
names to numbers) and a set of *actions* (names), and returns a :class:`Decision`: the
action, its propensity (the probability with which the policy chose it — the number an
off-policy estimate divides by), the policy's name, and the probability of every
action. :class:`ContextEncoder` turns contexts into vectors in one fixed order, naming
the field of anything it cannot read.

>>> encoder = ContextEncoder(("price", "hour"))
>>> encoder.encode({"hour": 3, "price": 1.5}).tolist()
[1.5, 3.0]
>>> encoder.encode({"price": 1.5})
Traceback (most recent call last):
...
headwater.errors.ValidationError: context.hour: missing
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError

__all__ = ["Context", "ContextEncoder", "ContextualPolicy", "Decision"]

FloatArray = npt.NDArray[np.float64]
#: A context: a vector of ``dim`` numbers, or feature names mapped to numbers.
Context = npt.NDArray[np.float64] | Sequence[float] | Mapping[str, float]


class Decision(NamedTuple):
    """The chosen action and the probabilities the policy chose it with."""

    action: str
    propensity: float
    policy: str
    actions: tuple[str, ...]
    probabilities: tuple[float, ...]


@runtime_checkable
class ContextualPolicy(Protocol):
    """Chooses an action for a context, and learns from rewards in batches."""

    name: str

    def choose(self, context: Context, actions: Sequence[str]) -> Decision:
        """An action among ``actions`` for ``context``, with its propensity."""
        ...

    def probabilities(self, context: Context, actions: Sequence[str]) -> FloatArray:
        """The probability of choosing each of ``actions`` for ``context``."""
        ...

    def update(self, contexts: Sequence[Context] | FloatArray, actions: Sequence[str],
               rewards: Sequence[float] | FloatArray) -> None:
        """Learn from the rewards of ``actions`` taken in ``contexts``, in order."""
        ...


def check_actions(actions: Sequence[str]) -> tuple[str, ...]:
    """``actions`` as a tuple of distinct non-empty names."""
    names = tuple(actions)
    if not names:
        raise ValidationError("actions", "at least one action is needed")
    for action in names:
        if not isinstance(action, str) or not action:
            raise ValidationError("actions", f"expected an action name, got {action!r}")
    if len(set(names)) != len(names):
        raise ValidationError("actions", "actions repeat")
    return names


class ContextEncoder:
    """Contexts as vectors of ``dim`` numbers, a mapping's values in ``features`` order."""

    def __init__(self, features: int | Sequence[str]) -> None:
        if isinstance(features, int) and not isinstance(features, bool):
            if features < 1:
                raise ValidationError("features", f"expected dim >= 1, got {features!r}")
            self.features: tuple[str, ...] | None = None
            self.dim = features
        else:
            names = tuple(features)  # type: ignore[arg-type]
            if not names or len(set(names)) != len(names) \
                    or not all(isinstance(n, str) and n for n in names):
                raise ValidationError("features", "expected distinct feature names")
            self.features = names
            self.dim = len(names)

    def encode(self, context: Context) -> FloatArray:
        """One context as a float vector of length ``dim``."""
        if isinstance(context, Mapping):
            if self.features is None:
                raise ValidationError("context", f"expected a vector of {self.dim} numbers "
                                      "(this policy has no feature names)")
            out = np.empty(self.dim)
            for i, name in enumerate(self.features):
                try:
                    value = context[name]
                except KeyError:
                    raise ValidationError(f"context.{name}", "missing") from None
                if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                    raise ValidationError(f"context.{name}", f"expected a number, got {value!r}")
                out[i] = value
        else:
            try:
                out = np.asarray(context, dtype=np.float64)
            except (TypeError, ValueError) as error:
                raise ValidationError("context", f"expected numbers: {error}") from error
            if out.shape != (self.dim,):
                raise ValidationError("context", f"expected {self.dim} values, "
                                      f"got shape {out.shape}")
        if not np.all(np.isfinite(out)):
            raise ValidationError("context", "values must be finite")
        return out

    def encode_many(self, contexts: Sequence[Context] | FloatArray) -> FloatArray:
        """Many contexts as an ``(n, dim)`` matrix."""
        if isinstance(contexts, np.ndarray) and contexts.ndim == 2:
            if contexts.shape[1] != self.dim:
                raise ValidationError("contexts", f"expected {self.dim} columns, "
                                      f"got {contexts.shape[1]}")
            out = contexts.astype(np.float64, copy=False)
            if not np.all(np.isfinite(out)):
                raise ValidationError("contexts", "values must be finite")
            return out
        rows = [self.encode(c) for c in contexts]
        return np.vstack(rows) if rows else np.empty((0, self.dim))

    def describe(self) -> dict[str, Any]:
        return {"dim": self.dim, "features": list(self.features) if self.features else None}
