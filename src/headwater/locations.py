"""Backend locations: the small parsing every ``open_*`` function shares.

>>> pop_query("redis://h:6379/0?prefix=hw&x=1", "prefix")
('redis://h:6379/0?x=1', 'hw')
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["pop_query"]


def pop_query(url: str, name: str) -> tuple[str, str | None]:
    """``url`` without the query parameter ``name``, and that parameter's value."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    value = next((v for k, v in pairs if k == name), None)
    rest = urlencode([(k, v) for k, v in pairs if k != name])
    return urlunsplit(parts._replace(query=rest)), value
