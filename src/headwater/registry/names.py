"""What a model name, an alias and a version number may be.

Model names become directory names in the artifact store, so they are restricted to
letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit. Aliases are
lower-case identifiers that start with a letter, so an alias is never mistaken for a
version number. Versions are integers from 1.

>>> check_model_name("churn-v2.eu")
'churn-v2.eu'
>>> check_alias("champion")
'champion'
>>> check_alias("3")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
headwater.errors.ValidationError: alias: '3' is not an alias: use a lower-case letter, ...
>>> parse_ref("7"), parse_ref("v7"), parse_ref("champion")
(7, 7, 'champion')
"""

from __future__ import annotations

import re
from typing import Final

from headwater.errors import ValidationError

__all__ = ["check_alias", "check_model_name", "check_version", "parse_ref"]

_MODEL: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ALIAS: Final = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_REF_VERSION: Final = re.compile(r"v?([0-9]+)")


def check_model_name(name: object, *, field: str = "name") -> str:
    """``name`` if it can name a model, else :class:`~headwater.errors.ValidationError`."""
    if not isinstance(name, str) or not _MODEL.fullmatch(name):
        raise ValidationError(
            field, f"{name!r} is not a model name: use letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (at most 128)"
        )
    return name


def check_alias(alias: object, *, field: str = "alias") -> str:
    """``alias`` if it can name an alias, else :class:`~headwater.errors.ValidationError`."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise ValidationError(
            field, f"{alias!r} is not an alias: use a lower-case letter, then letters, "
            "digits, '_' or '-' (at most 64)"
        )
    return alias


def check_version(version: object, *, field: str = "version") -> int:
    """``version`` if it is a version number (an ``int`` from 1)."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError(field, f"expected a version number from 1, got {version!r}")
    return version


def parse_ref(text: str, *, field: str = "version") -> int | str:
    """A version number (``"7"`` or ``"v7"``) or an alias name, from text at an edge."""
    matched = _REF_VERSION.fullmatch(text.strip())
    if matched:
        return check_version(int(matched.group(1)), field=field)
    return check_alias(text.strip(), field=field)
