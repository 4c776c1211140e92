"""Routing policies described as JSON: what the admin API and the CLI set live.

A spec is an object with a ``kind`` and that kind's settings:

- ``{"kind": "champion", "arm": "champion"}``
- ``{"kind": "shadow", "arm": "champion", "shadows": ["challenger"]}``
- ``{"kind": "split", "weights": {"champion": 90, "challenger": 10}, "salt": "exp-1"}``
- ``{"kind": "canary", "percent": 5, "canary": "challenger", "stable": "champion"}``
- ``{"kind": "thompson" | "gaussian_thompson" | "ucb1", "arms": ["champion",
  "challenger"], "discount": 0.999, "window": null, "explore": 0.0, "seed": 0}``: the
  routing bandits of :mod:`headwater.bandits`, which learn from rewards fed to them
  (:class:`headwater.bandits.RewardFeed`).

A bad spec is a :class:`~headwater.errors.ValidationError` naming the field.
:func:`check_arms` refuses a policy whose arms are not all aliases of the model
(:class:`~headwater.errors.UnknownArmError`, naming the arm): a request routed to a
missing arm would be answered by another version, unnoticed.

>>> policy_from_spec({"kind": "canary", "percent": 5}).describe()["percent"]
5.0
>>> policy_from_spec({"kind": "thompson", "arms": ["champion", "challenger"]}).arms
('champion', 'challenger')
>>> try:
...     check_arms(policy_from_spec({"kind": "thompson", "arms": ["champion", "challenger"]}),
...                {"champion": 3}, model="churn")
... except UnknownArmError as exc:
...     print(exc.arm, "|", exc.reason)
challenger | 'challenger' is not an alias of model 'churn' (its aliases: champion)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from headwater.errors import UnknownArmError, ValidationError
from headwater.serving.policies import Canary, ChampionOnly, Policy, Shadow, Split

__all__ = ["KINDS", "check_arms", "policy_from_spec"]

KINDS: Final = ("champion", "shadow", "split", "canary", "thompson", "gaussian_thompson",
                "ucb1")
_BANDITS: Final = {"thompson": "BetaThompson", "gaussian_thompson": "GaussianThompson",
                   "ucb1": "UCB1"}
_ALLOWED: Final = {
    "champion": {"arm"}, "shadow": {"arm", "shadows"}, "split": {"weights", "salt"},
    "canary": {"percent", "canary", "stable", "salt"},
    **{kind: {"arms", "discount", "window", "explore", "seed"} for kind in _BANDITS},
}


def check_arms(policy: Policy, aliases: Mapping[str, int], *, model: str) -> None:
    """Raise :class:`~headwater.errors.UnknownArmError` for the first arm of ``policy``
    that is not one of the model's ``aliases``."""
    for arm in policy.arms:
        if arm not in aliases:
            known = ", ".join(sorted(aliases)) or "none"
            raise UnknownArmError("policy.arms", arm, f"{arm!r} is not an alias of model "
                                  f"{model!r} (its aliases: {known})")


def policy_from_spec(spec: Mapping[str, Any]) -> Policy:
    """The policy ``spec`` describes (see the module docstring)."""
    if not isinstance(spec, Mapping):
        raise ValidationError("policy", f"expected an object, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in _ALLOWED:
        raise ValidationError("policy.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(spec) - _ALLOWED[kind] - {"kind"})
    if unknown:
        raise ValidationError(f"policy.{unknown[0]}", f"not a setting of a {kind} policy")
    try:
        if kind == "champion":
            return ChampionOnly(spec.get("arm", "champion"))
        if kind == "shadow":
            return Shadow(spec.get("arm", "champion"), tuple(spec.get("shadows",
                                                                      ("challenger",))))
        if kind == "split":
            return Split(spec.get("weights", {}), salt=str(spec.get("salt", "")))
        if kind == "canary":
            return Canary(spec.get("percent", 0.0), canary=spec.get("canary", "challenger"),
                          stable=spec.get("stable", "champion"), salt=str(spec.get("salt", "")))
    except TypeError as exc:
        raise ValidationError(f"policy.{kind}", str(exc)) from None
    return _bandit(kind, spec)


def _bandit(kind: str, spec: Mapping[str, Any]) -> Policy:
    import numpy as np

    from headwater import bandits

    arms = spec.get("arms", ("champion", "challenger"))
    if not isinstance(arms, list | tuple) or len(arms) < 2:
        raise ValidationError("policy.arms", "a bandit needs a list of at least two arms")
    seed = spec.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValidationError("policy.seed", f"expected an integer, got {seed!r}")
    options = {k: spec[k] for k in ("discount", "window", "explore") if k in spec}
    policy: Policy = getattr(bandits, _BANDITS[kind])(tuple(arms),
                                                      rng=np.random.default_rng(seed),
                                                      **options)
    return policy
