"""The model input of one request: feature values and request values, gaps filled by rule.

The rule for missing values. A feature the entity has no value for (an unknown entity,
or a value past its TTL) first takes its definition's default
(:attr:`~headwater.features.Feature.default_value`: 0 for counts and sums), and is
logged as ``defaulted``; it is still *missing* when that default is null, when the
request does not carry a value, or when the value is NaN. A missing input the model
reads is replaced by the model's *neutral default*, and its name is reported in the
response (``missing``) and in the logged event, so a missing value is never silent:

- a model may say what its defaults are with a ``serving_defaults()`` method returning
  ``{column: value}``;
- for the built-in linear models (standardised online) a numeric column defaults to
  the running mean the model standardises with — it scales to 0 and so adds nothing to
  the score — and a categorical column to ``""`` (one hashed "missing" category);
- otherwise a column defaults to ``0.0``.

When names clash, the online (and derived) feature values win over request values, as
in :class:`~headwater.features.online.FeatureReader`.

The rule for request values (:meth:`InputSpec.check`). A number must fit a float64 (a
400-digit integer is refused, not passed on to fail in the model). Against the kinds a
model declares (:func:`input_kinds`: the built-in linear models declare theirs; a model
may say with an ``input_kinds()`` method returning ``{column: "numeric" |
"categorical"}``), a numeric input takes a number — not a boolean, not a string — and a
categorical input a string. A model that declares no kinds gets the values as sent.

>>> spec = InputSpec(("spend", "amount", "device"), {"spend": 12.5, "device": ""})
>>> spec.build({"spend": None}, {"amount": 3.0})
({'spend': 12.5, 'amount': 3.0, 'device': ''}, ('spend', 'device'))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from headwater.errors import ValidationError

__all__ = ["InputKind", "InputSpec", "input_kinds", "neutral_defaults"]

#: What a model input holds: numbers, or strings naming categories.
InputKind = Literal["numeric", "categorical"]

_NO_KINDS: Final[Mapping[str, InputKind]] = MappingProxyType({})
_FLOAT_MAX: Final = int(1.7976931348623157e308)


@dataclass(frozen=True, slots=True)
class InputSpec:
    """The columns a model reads (``None``: whatever the request and features hold) and
    the defaults that fill the missing ones."""

    names: tuple[str, ...] | None
    defaults: Mapping[str, Any]
    kinds: Mapping[str, InputKind] = field(default_factory=lambda: _NO_KINDS)

    @classmethod
    def of(cls, model: object) -> InputSpec:
        """The spec of a loaded model: its ``feature_names``, neutral defaults and kinds."""
        names = getattr(model, "feature_names", None)
        return cls(None if names is None else tuple(names), neutral_defaults(model),
                   MappingProxyType(input_kinds(model)))

    def check(self, request: Mapping[str, Any], field: str = "request") -> None:
        """Refuse a request value the model cannot read (the rule in the module
        docstring), naming it ``<field>.<name>``.

        >>> spec = InputSpec(("amount", "city"), {}, {"amount": "numeric", "city": "categorical"})
        >>> spec.check({"amount": True})
        Traceback (most recent call last):
          ...
        headwater.errors.ValidationError: request.amount: expected a number, got a boolean \
(send 1 or 0)
        >>> spec.check({"amount": 10**400})
        Traceback (most recent call last):
          ...
        headwater.errors.ValidationError: request.amount: number out of range (a float64 \
holds up to 1.8e308)
        """
        kind_of = self.kinds.get
        for name, value in request.items():
            kind = type(value)  # the usual cases first, in as few steps as can be
            if kind is float:
                if -math.inf < value < math.inf and kind_of(name) != "categorical":
                    continue
            elif kind is str:
                if kind_of(name) != "numeric":
                    continue
            elif value is None:
                continue
            _check_value(f"{field}.{name}", value, kind_of(name))

    def build(self, values: Mapping[str, Any],
              request: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The model's row and the names of the inputs filled by default (plain dict
        work: this is the single-request hot path)."""
        row: dict[str, Any] = {}
        missing: list[str] = []
        defaults = self.defaults
        if self.names is None:
            merged = {**request, **values}
            for name, v in merged.items():
                if v is None or v != v:
                    missing.append(name)
                    v = defaults.get(name, 0.0)
                row[name] = v
            return row, tuple(missing)
        get_value, get_request = values.get, request.get
        for name in self.names:
            v = get_value(name)
            if v is None:
                v = get_request(name)
            if v is None or v != v:  # None or NaN
                missing.append(name)
                v = defaults.get(name, 0.0)
            row[name] = v
        return row, tuple(missing)


def _check_value(field: str, value: Any, kind: InputKind | None) -> None:
    """Raise if ``value`` is not something an input of ``kind`` takes (the rule in the
    module docstring); ``NaN`` is a missing value."""
    if isinstance(value, str):
        if kind == "numeric":
            raise ValidationError(field, "expected a number, got a string")
        return
    if isinstance(value, bool):
        if kind is not None:
            raise ValidationError(field, "expected a number, got a boolean (send 1 or 0)"
                                  if kind == "numeric" else
                                  "expected a string (a category), got a boolean")
        return
    if isinstance(value, int) and not -_FLOAT_MAX <= value <= _FLOAT_MAX:
        raise ValidationError(field, "number out of range (a float64 holds up to 1.8e308)")
    if isinstance(value, float) and math.isinf(value):
        raise ValidationError(field, "not a finite number")
    if kind == "categorical" and value == value:
        raise ValidationError(field, f"expected a string (a category), got a number: send it "
                              f"as text, e.g. \"{value}\"")


def input_kinds(model: object) -> dict[str, InputKind]:
    """The kinds of the inputs ``model`` declares (``{}`` when it declares none).

    >>> input_kinds(object())
    {}
    """
    hook = getattr(model, "input_kinds", None)
    if callable(hook):
        return dict(hook())
    schema = getattr(model, "_schema", None)
    if schema is None:
        return {}
    kinds: dict[str, InputKind] = dict.fromkeys(tuple(getattr(schema, "numeric", ())),
                                                "numeric")
    kinds.update(dict.fromkeys(tuple(getattr(schema, "categorical", ())), "categorical"))
    return kinds


def neutral_defaults(model: object) -> dict[str, Any]:
    """What fills a missing input of ``model`` (see the module docstring for the rule).

    >>> neutral_defaults(object())
    {}
    """
    hook = getattr(model, "serving_defaults", None)
    if callable(hook):
        return dict(hook())
    schema = getattr(model, "_schema", None)
    scaler = getattr(model, "_scaler", None)
    if schema is None:
        return {}
    numeric: tuple[str, ...] = tuple(getattr(schema, "numeric", ()))
    categorical: tuple[str, ...] = tuple(getattr(schema, "categorical", ()))
    defaults: dict[str, Any] = dict.fromkeys(categorical, "")
    params = getattr(model, "params", None)
    standardised = bool(callable(params) and params().get("standardize", False))
    mean = getattr(scaler, "mean", None)
    if standardised and mean is not None and len(mean) == len(numeric):
        defaults.update(zip(numeric, (float(m) for m in mean), strict=True))
    else:
        defaults.update(dict.fromkeys(numeric, 0.0))
    return defaults
