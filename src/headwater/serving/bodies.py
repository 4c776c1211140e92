"""Request bodies: JSON decoded to the message types, or an error naming the field.

msgspec validates while it decodes and names the path of a bad value (``entities.user``,
``requests[3].request_id``) — except inside a mapping, where it says ``request[...]``.
:func:`decode` then finds the key, on the error path only, and names it:
``request.amount``, ``requests[3].entities.user``.

It also refuses a body that holds an object with a duplicate key
(``{"entities": {"user": "a", "user": "b"}}``): JSON parsers disagree on which one wins
(most keep the last), so the request is ambiguous, and answering it would be a guess.
Finding one costs little: every key of a JSON object is followed by a colon, so when the
body holds no more colons than the decoded value has keys (fields set to other than
their default, and the entries of mappings), no key can have been repeated. Only a body
with more colons — a duplicate, a colon inside a string, or a field given its default
value — is parsed a second time to look closer.

>>> from headwater.serving.messages import PredictBody
>>> decoder = msgspec.json.Decoder(PredictBody)
>>> decode(decoder, b'{"entities": {"user": "u1"}, "request": {"amount": 1e999}}')
Traceback (most recent call last):
  ...
headwater.errors.ValidationError: request.amount: Number out of range
>>> decode(decoder, b'{"entities": {"user": "a", "user": "b"}}')
Traceback (most recent call last):
  ...
headwater.serving.bodies.BodyError: body: duplicate key 'user' in an object
"""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any, Final, TypeVar

import msgspec

from headwater.errors import ValidationError, msgspec_path
from headwater.serving.messages import ErrorDetail

__all__ = ["BodyError", "decode", "field_of"]

T = TypeVar("T")

_SEGMENT: Final = re.compile(r"\.?([A-Za-z_]\w*)|\[(\d+)\]|(\[\.\.\.\])")
_SHOWN: Final = 40


class BodyError(ValidationError):
    """A body that is not JSON, or whose meaning is ambiguous (a duplicate key)."""


def decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    """``body`` decoded by ``decoder``; :class:`BodyError` when it is not JSON or holds a
    duplicate key, :class:`~headwater.errors.ValidationError` naming the field when a
    value is not of its type."""
    try:
        decoded = decoder.decode(body)
    except msgspec.ValidationError as exc:  # a DecodeError too: test it first
        check_unique_keys(body)  # an ambiguous body is refused as such first
        detail = field_of(exc)
        detail = _name_in_mapping(decoder.type, body, detail, str(exc))
        raise ValidationError(detail.field, detail.reason) from None
    except msgspec.DecodeError as exc:
        raise BodyError("body", str(exc)) from None
    if body.count(b":") > _keys_of(decoded):
        check_unique_keys(body)
    return decoded


def check_unique_keys(body: bytes) -> None:
    """Raise :class:`BodyError` if an object of ``body`` repeats a key."""
    try:
        json.loads(body, object_pairs_hook=_unique_pairs)
    except _DuplicateKeyError as exc:
        raise BodyError("body", f"duplicate key {_shown(exc.key)} in an object") from None
    except (ValueError, RecursionError):
        return  # not JSON: the decoder says why


def field_of(exc: msgspec.ValidationError) -> ErrorDetail:
    """The field path and reason of a msgspec validation error.

    >>> from headwater.serving.messages import PredictBody
    >>> try:
    ...     msgspec.json.decode(b'{"entities": 3}', type=PredictBody)
    ... except msgspec.ValidationError as exc:
    ...     field_of(exc)
    ErrorDetail(field='entities', reason='Expected `object | null`, got `int`')
    """
    path, reason = msgspec_path(str(exc))
    return ErrorDetail(path or "body", reason)


def _keys_of(value: Any) -> int:
    """How many object keys the JSON of ``value`` had, at least: the fields of a struct
    set to other than their default, the entries of mappings, and those inside them."""
    kind = type(value)
    if kind is dict:
        count = len(value)
        for item in value.values():
            if type(item) not in _SCALARS:
                count += _keys_of(item)
        return count
    if kind is list:
        return sum(_keys_of(item) for item in value if type(item) not in _SCALARS)
    fields = _DEFAULTS.get(kind)
    if fields is None:
        if not issubclass(kind, msgspec.Struct):
            return 0
        fields = _defaults(kind)
    count = 0
    for name, default in fields:
        item = getattr(value, name)
        if default is _REQUIRED or item != default:
            count += 1
            if type(item) not in _SCALARS:
                count += _keys_of(item)
    return count


_SCALARS: Final = frozenset({float, int, str, bool, type(None)})
_REQUIRED: Final = object()
_DEFAULTS: dict[type, list[tuple[str, Any]]] = {}


def _defaults(kind: type) -> list[tuple[str, Any]]:
    """Each field of a struct type and its default (:data:`_REQUIRED` when it has none)."""
    found = _DEFAULTS.get(kind)
    if found is None:
        found = []
        for info in msgspec.structs.fields(kind):
            if info.default is not msgspec.NODEFAULT:
                found.append((info.name, info.default))
            elif info.default_factory is not msgspec.NODEFAULT:
                found.append((info.name, info.default_factory()))
            else:
                found.append((info.name, _REQUIRED))
        _DEFAULTS[kind] = found
    return found


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return found


def _shown(key: str) -> str:
    return repr(key) if len(key) <= _SHOWN else f"{key[:_SHOWN]!r}… ({len(key)} characters)"


def _raw(text: str) -> msgspec.Raw:
    return msgspec.Raw(text.encode())


def _name_in_mapping(root: Any, body: bytes, detail: ErrorDetail, text: str) -> ErrorDetail:
    """Replace ``[...]`` (a mapping's value) or a bad key of a mapping by the key's name.

    The body is parsed again with its numbers kept as written, and each entry of the
    mapping is checked with msgspec against the mapping's declared types: the first
    entry that fails gives the name and msgspec's own reason.
    """
    bad_key = " - at `key` in `$" in text
    if not bad_key and "[...]" not in detail.field:
        return detail
    try:
        value = json.loads(body, parse_float=_raw, parse_int=_raw, parse_constant=_raw)
        path = detail.field if bad_key else detail.field[: detail.field.index("[...]")]
        mapping, mapping_type = _walk(value, root, path)
        key_type, value_type = typing.get_args(mapping_type)
        for key, item in mapping.items():
            try:
                if bad_key:
                    msgspec.json.decode(msgspec.json.encode(key), type=key_type)
                else:
                    msgspec.json.decode(msgspec.json.encode(item), type=value_type)
            except msgspec.ValidationError as exc:
                reason = field_of(exc).reason
                if bad_key:
                    return ErrorDetail(path, f"key {_shown(key)}: {reason}")
                return ErrorDetail(f"{path}.{key}" if path else key, reason)
    except Exception:
        return detail
    return detail


def _walk(value: Any, tp: Any, path: str) -> tuple[dict[str, Any], Any]:
    """The mapping at ``path`` in ``value`` and its declared type (from the root ``tp``)."""
    for name, index, _ in _SEGMENT.findall(path):
        tp = _concrete(tp, name or index)
        if name:
            tp = typing.get_type_hints(tp, include_extras=True)[name]
            value = value[name]
        else:
            tp = typing.get_args(tp)[0]
            value = value[int(index)]
    tp = _concrete(tp, "mapping")
    if not isinstance(value, dict) or typing.get_origin(tp) is not dict:
        raise TypeError(path)
    return value, tp


def _concrete(tp: Any, want: str) -> Any:
    """``tp`` without ``Annotated`` and ``None``: the struct, list or dict it holds."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = [t for t in typing.get_args(tp) if t is not type(None)]
        if len(options) != 1:
            raise TypeError(want)
        return _concrete(options[0], want)
    return tp
