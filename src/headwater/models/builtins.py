"""The models Headwater builds from hyper-parameters alone, by name.

A continual-learning loop starts from a first version; :func:`build_model` makes one that
has learnt nothing, to be registered (``headwater models register NAME --builtin
logistic --param alpha=0.1``) and trained from the stream. The names:

- ``logistic``: :class:`~headwater.models.LogisticRegression`, the built-in online
  classifier (FTRL-Proximal with hashed categories);
- ``linear``: :class:`~headwater.models.LinearRegression`, its regression twin;
- ``torch``: :class:`~headwater.models.torch.TorchModel`, an MLP described by its
  hyper-parameters (``pip install 'headwater[torch]'``).

Each saves in a format that loads without running code. A model that has learnt nothing
answers the neutral value (0.5, or 0.0 for a regressor) until it learns.

>>> build_model("logistic", {"alpha": 0.1}).params()["alpha"]
0.1
>>> build_model("logistic", {"alhpa": 0.1})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
headwater.errors.ValidationError: params: LogisticRegression has no hyper-parameter 'alhpa'; ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from headwater.errors import ValidationError
from headwater.models.linear import LinearRegression, LogisticRegression
from headwater.models.protocol import Model

__all__ = ["BUILTINS", "build_model"]


def _torch() -> Callable[..., Model]:
    from headwater.models.torch import TorchModel

    return TorchModel


#: The built-in models by name: each entry gives the class (imported when asked for).
BUILTINS: Final[Mapping[str, Callable[[], Callable[..., Model]]]] = MappingProxyType({
    "logistic": lambda: LogisticRegression,
    "linear": lambda: LinearRegression,
    "torch": _torch,
})


def build_model(kind: str, params: Mapping[str, Any], *, field: str = "params") -> Model:
    """A fresh built-in model of ``kind`` with ``params`` (unknown names and bad values
    raise :class:`~headwater.errors.ValidationError`)."""
    make = BUILTINS.get(kind)
    if make is None:
        raise ValidationError("kind", f"unknown built-in model {kind!r}; expected one of "
                                      f"{', '.join(BUILTINS)}")
    cls = make()
    known = inspect.signature(cls).parameters
    for name in params:
        if name not in known:
            raise ValidationError(field, f"{cls.__name__} has no hyper-parameter {name!r}; "
                                         f"it has {', '.join(known)}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValidationError(field, f"{cls.__name__}: {exc}") from exc
