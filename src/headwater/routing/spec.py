"""Routing policies described as data: one typed spec per kind, and the one builder.

Every way of choosing a policy — ``headwater serve --policy``, ``headwater policy set``,
``PUT /admin/policy``, the canary controller — makes a :data:`PolicySpec` and
:func:`build`\\ s it, so the same description always routes the same way. A spec is a
tagged union (the ``kind`` field), as JSON:

- ``{"kind": "champion", "arm": "champion"}``
- ``{"kind": "shadow", "arm": "champion", "shadows": ["challenger"]}``
- ``{"kind": "split", "weights": {"champion": 90, "challenger": 10}, "salt": ""}``
- ``{"kind": "canary", "percent": 5, "canary": "challenger", "stable": "champion",
  "salt": ""}``
- ``{"kind": "thompson" | "gaussian_thompson" | "ucb1", "arms": ["champion",
  "challenger"], "discount": 1.0, "window": null, "explore": 0.0, "seed": null}``: the
  routing bandits, which learn from rewards fed to them
  (:class:`headwater.bandits.RewardFeed`).

A split or a canary puts each entity in a bucket hashed from the salt and its key
(:func:`~headwater.routing.policies.bucket`); every spec's salt defaults to
:data:`DEFAULT_SALT`, so a split set twice, by any of the ways above, keeps every entity
on its arm. A salt names an experiment: give a new one to reshuffle on purpose.

A bad spec is a :class:`~headwater.errors.ValidationError` naming the field.
:func:`check_arms` refuses a policy whose arms are not all aliases of the model
(:class:`~headwater.errors.UnknownArmError`, naming the arm): a request routed to a
missing arm would be answered by another version, unnoticed.

>>> build(SplitSpec({"champion": 90, "challenger": 10})).describe()
{'kind': 'split', 'weights': {'champion': 0.9, 'challenger': 0.1}, 'salt': ''}
>>> policy_from_spec({"kind": "canary", "percent": 5}).describe()["percent"]
5.0
>>> policy_from_spec({"kind": "thompson", "arms": ["champion", "challenger"]}).arms
('champion', 'challenger')
>>> try:
...     parse_spec({"kind": "split", "weights": {"champion": "most"}})
... except ValidationError as exc:
...     print(exc)
policy.weights.champion: Expected `float`, got `str`
>>> try:
...     check_arms(policy_from_spec({"kind": "thompson", "arms": ["champion", "challenger"]}),
...                {"champion": 3}, model="churn")
... except UnknownArmError as exc:
...     print(exc.arm, "|", exc.reason)
challenger | 'challenger' is not an alias of model 'churn' (its aliases: champion)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeAlias, get_args

import msgspec
import numpy as np

from headwater.errors import UnknownArmError, ValidationError, msgspec_path
from headwater.routing.bandit import BanditPolicy
from headwater.routing.policies import DEFAULT_SALT, Canary, ChampionOnly, Policy, Shadow, Split
from headwater.routing.thompson import BetaThompson, GaussianThompson
from headwater.routing.ucb import UCB1

__all__ = [
    "DEFAULT_SALT",
    "KINDS",
    "CanarySpec",
    "ChampionSpec",
    "GaussianThompsonSpec",
    "PolicySpec",
    "ShadowSpec",
    "SplitSpec",
    "ThompsonSpec",
    "UCB1Spec",
    "build",
    "check_arms",
    "parse_spec",
    "policy_from_spec",
]

_TWO_ARMS: Final = ("champion", "challenger")


class _Spec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    def build(self) -> Policy:
        raise NotImplementedError


class ChampionSpec(_Spec, frozen=True, tag="champion"):
    """Every request to ``arm``."""

    arm: str = "champion"

    def build(self) -> Policy:
        return ChampionOnly(self.arm)


class ShadowSpec(_Spec, frozen=True, tag="shadow"):
    """``arm`` answers; ``shadows`` are scored and logged only."""

    arm: str = "champion"
    shadows: tuple[str, ...] = ("challenger",)

    def build(self) -> Policy:
        return Shadow(self.arm, self.shadows)


class SplitSpec(_Spec, frozen=True, tag="split"):
    """A sticky split of entities by relative ``weights`` (A/B/n)."""

    weights: dict[str, float]
    salt: str = DEFAULT_SALT

    def build(self) -> Policy:
        return Split(self.weights, salt=self.salt)


class CanarySpec(_Spec, frozen=True, tag="canary"):
    """``percent`` % of entities (sticky) to ``canary``, the rest to ``stable``."""

    percent: float = 0.0
    canary: str = "challenger"
    stable: str = "champion"
    salt: str = DEFAULT_SALT

    def build(self) -> Policy:
        return Canary(self.percent, canary=self.canary, stable=self.stable, salt=self.salt)


class _BanditSpec(_Spec, frozen=True):
    arms: tuple[str, ...] = _TWO_ARMS
    discount: float = 1.0
    window: int | None = None
    explore: float = 0.0
    seed: int | None = None

    def build(self) -> Policy:
        if len(self.arms) < 2:
            raise ValidationError("policy.arms", "a bandit needs a list of at least two arms")
        policy: BanditPolicy = self._bandit()(self.arms, rng=np.random.default_rng(self.seed),
                                              discount=self.discount, window=self.window,
                                              explore=self.explore)
        return policy

    def _bandit(self) -> type[BanditPolicy]:
        raise NotImplementedError


class ThompsonSpec(_BanditSpec, frozen=True, tag="thompson"):
    """Beta-Bernoulli Thompson sampling (rewards in [0, 1])."""

    def _bandit(self) -> type[BanditPolicy]:
        return BetaThompson


class GaussianThompsonSpec(_BanditSpec, frozen=True, tag="gaussian_thompson"):
    """Gaussian Thompson sampling (rewards of any scale)."""

    def _bandit(self) -> type[BanditPolicy]:
        return GaussianThompson


class UCB1Spec(_BanditSpec, frozen=True, tag="ucb1"):
    """UCB1 (rewards in [0, 1])."""

    def _bandit(self) -> type[BanditPolicy]:
        return UCB1


PolicySpec: TypeAlias = (ChampionSpec | ShadowSpec | SplitSpec | CanarySpec | ThompsonSpec
                         | GaussianThompsonSpec | UCB1Spec)
"""Any routing policy's description; a tagged union on ``kind``."""

KINDS: Final[tuple[str, ...]] = tuple(str(spec.__struct_config__.tag)
                                      for spec in get_args(PolicySpec))
"""Every kind of policy, in the order of :data:`PolicySpec`."""


def parse_spec(spec: object) -> PolicySpec:
    """The :data:`PolicySpec` a JSON-like object describes; a
    :class:`~headwater.errors.ValidationError` naming the field when it is not one."""
    if isinstance(spec, msgspec.Struct):
        spec = msgspec.to_builtins(spec)
    if not isinstance(spec, Mapping):
        raise ValidationError("policy", f"expected an object, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValidationError("policy.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    try:
        parsed: PolicySpec = msgspec.convert(spec, PolicySpec)
    except msgspec.ValidationError as exc:
        path, reason = msgspec_path(str(exc))
        if path == "weights[...]":  # msgspec does not say which arm: the first not a number
            weights = spec.get("weights")
            if isinstance(weights, Mapping):
                path = next((f"weights.{arm}" for arm, w in weights.items()
                             if isinstance(w, bool) or not isinstance(w, int | float)),
                            "weights")
        raise ValidationError(f"policy.{path}" if path else "policy", reason) from None
    return parsed


def build(spec: PolicySpec) -> Policy:
    """The routing policy ``spec`` describes."""
    return spec.build()


def policy_from_spec(spec: Mapping[str, Any] | PolicySpec) -> Policy:
    """The policy a JSON-like ``spec`` describes: :func:`build` of :func:`parse_spec`."""
    return build(parse_spec(spec))


def check_arms(policy: Policy, aliases: Mapping[str, int], *, model: str) -> None:
    """Raise :class:`~headwater.errors.UnknownArmError` for the first arm of ``policy``
    that is not one of the model's ``aliases``."""
    for arm in policy.arms:
        if arm not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise UnknownArmError("policy.arms", arm, f"{arm!r} is not an alias of model "
                                  f"{model!r} (its aliases: {known})")
