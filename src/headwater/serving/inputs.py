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

>>> spec = InputSpec(("spend", "amount", "device"), {"spend": 12.5, "device": ""})
>>> spec.build({"spend": None}, {"amount": 3.0})
({'spend': 12.5, 'amount': 3.0, 'device': ''}, ('spend', 'device'))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["InputSpec", "neutral_defaults"]


@dataclass(frozen=True, slots=True)
class InputSpec:
    """The columns a model reads (``None``: whatever the request and features hold) and
    the defaults that fill the missing ones."""

    names: tuple[str, ...] | None
    defaults: Mapping[str, Any]

    @classmethod
    def of(cls, model: object) -> InputSpec:
        """The spec of a loaded model: its ``feature_names`` and neutral defaults."""
        names = getattr(model, "feature_names", None)
        return cls(None if names is None else tuple(names), neutral_defaults(model))

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
