"""Opening an fsspec URL, with its failures as Headwater errors.

Object storage (``s3://``, ``gs://``, ``az://``, ``memory://``, …) is reached through
fsspec (``pip install 'headwater[fsspec]'`` plus the filesystem's own package, e.g.
s3fs). The model store's artifacts and the feature history both open their URL here, so
a missing package or an unknown protocol reads the same everywhere: a
:class:`~headwater.errors.ConfigError` naming the URL and what to do, with fsspec's own
error kept in ``__cause__``. Once open, a failure of the filesystem (a refused request, a
dropped connection: fsspec raises an :class:`OSError`) reads the same way too: inside
:func:`fsspec_errors` it becomes a :class:`~headwater.errors.BackendError` naming the
URL, the original in ``__cause__``; a missing file stays a :class:`FileNotFoundError`,
which each caller turns into what missing means there.

>>> fs, root = open_filesystem("memory://headwater-doc/history", "A feature history")
>>> root
'/headwater-doc/history'
>>> open_filesystem("nosuch://x", "A feature history")  # doctest: +ELLIPSIS
Traceback (most recent call last):
headwater.errors.ConfigError: A feature history at 'nosuch://x': fsspec cannot open it: ...
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

from headwater.errors import BackendError, ConfigError, MissingExtraError

__all__ = ["fsspec_errors", "open_filesystem"]


def open_filesystem(url: str, what: str, **storage_options: Any) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path of ``url`` on it. ``what`` names
    the thing stored there, for the errors ("Artifacts", "A feature history")."""
    try:  # fsspec has no type hints: its objects are Any here
        url_to_fs: Any = importlib.import_module("fsspec.core").url_to_fs
    except ImportError as exc:
        raise MissingExtraError(f"{what} at fsspec URLs", "fsspec", "fsspec") from exc
    try:
        fs, root = url_to_fs(url, **storage_options)
    except ImportError as exc:  # the protocol's own package (s3fs, gcsfs, …) is missing
        raise ConfigError(f"{what} at {url!r}: {exc}") from exc
    except (ValueError, TypeError) as exc:  # unknown protocol, bad storage options
        raise ConfigError(f"{what} at {url!r}: fsspec cannot open it: {exc}") from exc
    return fs, str(root)


@contextlib.contextmanager
def fsspec_errors(what: str, url: str) -> Iterator[None]:
    """Turn the filesystem failures raised inside into a
    :class:`~headwater.errors.BackendError` naming ``what`` and ``url`` (the original in
    ``__cause__``); a :class:`FileNotFoundError` passes through.

    >>> with fsspec_errors("Artifacts", "s3://bucket/models"):  # doctest: +ELLIPSIS
    ...     raise PermissionError("Access Denied")
    Traceback (most recent call last):
    headwater.errors.BackendError: Artifacts at 's3://bucket/models': Access Denied ...
    """
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise BackendError(f"{what} at {url!r}: {exc} ({type(exc).__name__})") from exc
