"""Routing policies: which model version answers a request, and which are only shadowed.

A policy is sans-I/O: :meth:`Policy.choose` takes the routing key (the entity's key)
and returns a :class:`Route` — the *arm* whose score is returned and the arms scored
and logged in the shadow. Arms are alias names of the model (``champion``,
``challenger``, …); the :class:`~headwater.serving.deployment.Deployment` loads the
version each alias points at. Routes are built once, so ``choose`` allocates nothing
and costs a hash at most.

- :class:`ChampionOnly`: every request to one arm.
- :class:`Shadow`: one arm answers; the others are scored and logged, never returned.
- :class:`Split`: a fixed split (A/B) by weight, sticky per entity: the same key
  always lands on the same arm (the bucket is a BLAKE2b hash of salt and key, stable
  across processes and machines, unlike Python's ``hash``).
- :class:`Canary`: a percentage of entities to the canary arm, sticky like a split;
  raising the percentage only moves entities *to* the canary.

>>> split = Split({"champion": 0.9, "challenger": 0.1}, salt="exp-1")
>>> split.choose("user-42") == split.choose("user-42")
True
>>> Canary(0.0).choose("u").arm, Canary(100.0).choose("u").arm
('champion', 'challenger')
>>> Shadow("champion", ("challenger",)).choose("u")
Route(arm='champion', shadows=('challenger',))
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Mapping
from typing import Any, Final, NamedTuple, Protocol, runtime_checkable

from headwater.errors import ValidationError

__all__ = ["DEFAULT_SALT", "Canary", "ChampionOnly", "Policy", "Route", "Shadow", "Split",
           "bucket"]

_SCALE: Final = float(1 << 64)

DEFAULT_SALT: Final = ""
"""The salt of every split and canary that names none, however it is set."""


class Route(NamedTuple):
    """The arm whose score is returned, and the arms scored and logged only."""

    arm: str
    shadows: tuple[str, ...] = ()


@runtime_checkable
class Policy(Protocol):
    """How traffic meets model versions (arms)."""

    @property
    def arms(self) -> tuple[str, ...]:
        """Every arm the policy may route to, served or shadowed."""
        ...

    def choose(self, key: str) -> Route:
        """The route of a request whose routing key (entity key) is ``key``."""
        ...

    def describe(self) -> dict[str, Any]:
        """The policy as JSON-able values (for ``GET /models``)."""
        ...

    def propensity(self, arm: str) -> float:
        """The probability that a request is routed to ``arm`` (logged with every
        prediction, so an off-policy estimate can be made from the log later)."""
        ...


def bucket(key: str, salt: str = DEFAULT_SALT) -> float:
    """A stable position of ``key`` in [0, 1): BLAKE2b-64 of ``salt`` and ``key``.

    >>> bucket("user-1") == bucket("user-1") and 0.0 <= bucket("user-1") < 1.0
    True
    >>> bucket("user-1", salt="a") != bucket("user-1", salt="b")
    True
    """
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def _check_arm(field: str, arm: object) -> str:
    if not isinstance(arm, str) or not arm:
        raise ValidationError(field, f"expected an alias name, got {arm!r}")
    return arm


class ChampionOnly:
    """Every request goes to one arm (``champion`` by default)."""

    def __init__(self, arm: str = "champion") -> None:
        self._route = Route(_check_arm("policy.arm", arm))

    @property
    def arms(self) -> tuple[str, ...]:
        return (self._route.arm,)

    def choose(self, key: str) -> Route:
        return self._route

    def describe(self) -> dict[str, Any]:
        return {"kind": "champion", "arm": self._route.arm}

    def propensity(self, arm: str) -> float:
        return 1.0 if arm == self._route.arm else 0.0


class Shadow:
    """``arm`` answers; each of ``shadows`` is scored on the same input and logged."""

    def __init__(self, arm: str = "champion", shadows: tuple[str, ...] = ("challenger",)) -> None:
        _check_arm("policy.arm", arm)
        for s in shadows:
            _check_arm("policy.shadows", s)
        if arm in shadows or len(set(shadows)) != len(shadows):
            raise ValidationError("policy.shadows", "arms repeat")
        self._route = Route(arm, tuple(shadows))

    @property
    def arms(self) -> tuple[str, ...]:
        return (self._route.arm, *self._route.shadows)

    def choose(self, key: str) -> Route:
        return self._route

    def describe(self) -> dict[str, Any]:
        return {"kind": "shadow", "arm": self._route.arm, "shadows": list(self._route.shadows)}

    def propensity(self, arm: str) -> float:
        return 1.0 if arm == self._route.arm else 0.0


class Split:
    """A fixed split by weight (A/B/n), sticky per entity key.

    Weights are relative (``{"champion": 1, "challenger": 1}`` is 50/50); ``salt``
    names the experiment, so two experiments split the same entities independently.
    """

    def __init__(self, weights: Mapping[str, float], *, salt: str = DEFAULT_SALT) -> None:
        if len(weights) < 1:
            raise ValidationError("policy.weights", "at least one arm is needed")
        total = 0.0
        for arm, weight in weights.items():
            _check_arm("policy.weights", arm)
            if not isinstance(weight, int | float) or not 0.0 <= weight < float("inf"):
                raise ValidationError(f"policy.weights.{arm}",
                                      f"expected a finite weight >= 0, got {weight!r}")
            total += weight
        if total <= 0.0:
            raise ValidationError("policy.weights", "the weights add up to 0")
        self.weights = {arm: float(w) / total for arm, w in weights.items()}
        self.salt = salt
        live = [(arm, w) for arm, w in self.weights.items() if w > 0.0]
        self._routes = [Route(arm) for arm, _ in live]
        self._bounds: list[float] = []
        acc = 0.0
        for _, w in live[:-1]:
            acc += w
            self._bounds.append(acc)

    @property
    def arms(self) -> tuple[str, ...]:
        return tuple(self.weights)

    def choose(self, key: str) -> Route:
        return self._routes[bisect.bisect_right(self._bounds, bucket(key, self.salt))]

    def describe(self) -> dict[str, Any]:
        return {"kind": "split", "weights": dict(self.weights), "salt": self.salt}

    def propensity(self, arm: str) -> float:
        return self.weights.get(arm, 0.0)


class Canary:
    """``percent`` % of entities (sticky) go to ``canary``, the rest to ``stable``."""

    def __init__(self, percent: float, *, canary: str = "challenger", stable: str = "champion",
                 salt: str = DEFAULT_SALT) -> None:
        if not isinstance(percent, int | float) or not 0.0 <= percent <= 100.0:
            raise ValidationError("policy.percent", f"expected 0..100, got {percent!r}")
        if _check_arm("policy.canary", canary) == _check_arm("policy.stable", stable):
            raise ValidationError("policy.canary", "the canary and the stable arm are one")
        self.percent = float(percent)
        self.salt = salt
        self._fraction = self.percent / 100.0
        self._canary, self._stable = Route(canary), Route(stable)

    @property
    def arms(self) -> tuple[str, ...]:
        return (self._stable.arm, self._canary.arm)

    def choose(self, key: str) -> Route:
        if self._fraction <= 0.0:
            return self._stable
        return self._canary if bucket(key, self.salt) < self._fraction else self._stable

    def describe(self) -> dict[str, Any]:
        return {"kind": "canary", "percent": self.percent, "canary": self._canary.arm,
                "stable": self._stable.arm, "salt": self.salt}

    def propensity(self, arm: str) -> float:
        if arm == self._canary.arm:
            return self._fraction
        return 1.0 - self._fraction if arm == self._stable.arm else 0.0
