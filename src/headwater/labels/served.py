"""The features as served: the JSON object each logged prediction carries, as columns.

The prediction service logs every model input as a JSON object (feature values, request
values and the defaults that filled gaps). :func:`decode_features` turns a column of
those objects into the columnar batch every model reads: one column per name seen,
numbers as float64, strings as ``str``; a value some rows lack is NaN (numbers) or
``""`` (strings). Training, reproducing and evaluating all decode with this one function,
so they see the same inputs.

>>> cols = decode_features([b'{"x": 1.5, "c": "a"}', b'{"x": 2}'])
>>> cols["x"].tolist(), cols["c"].tolist()
([1.5, 2.0], ['a', ''])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from headwater.errors import ValidationError

__all__ = ["decode_features"]

_DECODE: Final = msgspec.json.Decoder(dict[str, Any]).decode


def decode_features(values: Iterable[bytes]) -> dict[str, npt.NDArray[Any]]:
    """Columns from JSON objects (see the module docstring); a value that is neither a
    number, a bool nor a string raises :class:`~headwater.errors.ValidationError`."""
    rows = [_DECODE(v) for v in values]
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    out: dict[str, npt.NDArray[Any]] = {}
    for name in names:
        column = [row.get(name) for row in rows]
        kinds = {type(v) for v in column if v is not None}
        if kinds <= {int, float, bool}:
            out[name] = np.array([np.nan if v is None else v for v in column], np.float64)
        elif kinds == {str}:
            out[name] = np.array(["" if v is None else v for v in column], np.str_)
        else:
            raise ValidationError(f"features.{name}",
                                  f"holds {sorted(k.__name__ for k in kinds)}: expected "
                                  "numbers or strings")
    return out
