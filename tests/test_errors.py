"""The tree drawn in :mod:`headwater.errors`' docstring is the real class hierarchy."""

from __future__ import annotations

import re

import headwater.errors as errors


def drawn_tree() -> dict[str, str | None]:
    """Each class drawn in the docstring, with the class drawn as its parent."""
    doc = errors.__doc__ or ""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        found = re.search(r"[A-Z]\w*Error\b", line)
        if not found or set(line[:found.start()]) - set(" │├└─"):
            continue
        depth, name = found.start(), found.group()
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def test_the_docstring_draws_every_error_under_its_first_headwater_base() -> None:
    drawn = drawn_tree()
    classes = {name: getattr(errors, name) for name in errors.__all__
               if name.endswith("Error")}
    assert set(drawn) == set(classes)
    for name, cls in classes.items():
        bases = [b.__name__ for b in cls.__bases__ if issubclass(b, errors.HeadwaterError)]
        assert drawn[name] == (bases[0] if bases else None), name


def test_a_wrapped_third_party_error_stays_in_cause() -> None:
    """Third-party failures are wrapped with context and the original stays in
    ``__cause__`` (the docstring's promise): here msgspec's, behind a bad setting."""
    import msgspec
    import pytest

    from headwater.config import Settings

    with pytest.raises(errors.ConfigError) as raised:
        Settings.from_env({"HEADWATER_SEGMENT_BYTES": "lots"})
    assert isinstance(raised.value.__cause__, msgspec.ValidationError)
    assert "segment_bytes" in str(raised.value)
