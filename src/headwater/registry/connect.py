"""Open a model store by location.

The records:

- ``path/to/dir`` or ``file:///dir``: SQLite in ``<dir>/registry.db``, the default
  (``<home>/registry``); artifacts default to ``<dir>/artifacts``
- ``postgresql://user@host:port/db[?schema=name]``: PostgreSQL
  (``pip install 'headwater[postgres]'``); artifacts must be given
- ``memory://``: in this process (tests); artifacts must be given

The artifacts: a directory (``file://`` too), or any fsspec URL (``s3://bucket/models``,
``memory://…``; ``pip install 'headwater[fsspec]'``), downloaded into ``cache``
(default ``<home>/cache/artifacts``) on checkout. With ``fsync = "never"`` in the
settings nothing is flushed to disk (fast, for tests and benchmarks).

>>> import tempfile
>>> with open_registry(tempfile.mkdtemp()) as registry:
...     registry.models()
[]
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from headwater.config import Settings
from headwater.errors import ConfigError
from headwater.fsync import FsyncPolicy, syncs
from headwater.locations import pop_query
from headwater.registry.artifacts import ArtifactStore, LocalArtifacts
from headwater.registry.backend import RegistryBackend
from headwater.registry.registry import ModelRegistry
from headwater.time import Clock

__all__ = ["open_artifacts", "open_registry"]


def open_registry(location: str | Path | None = None, *, artifacts: str | Path | None = None,
                  cache: str | Path | None = None, settings: Settings | None = None,
                  clock: Clock | None = None) -> ModelRegistry:
    """Open the model store at ``location`` (default: the settings' ``registry_url``, or
    ``<home>/registry``), its artifacts at ``artifacts`` (default: the settings'
    ``artifacts_url``, or ``<registry>/artifacts`` for a directory registry)."""
    settings = settings or Settings.from_env()
    where = str(location) if location is not None else settings.registry_location
    if artifacts is None:
        artifacts = settings.artifacts_url
    scheme = urlsplit(where).scheme if "://" in where else ""
    backend: RegistryBackend
    if scheme in ("", "file"):
        from headwater.registry.sqlite import SqliteRegistryBackend

        root = Path(urlsplit(where).path if scheme == "file" else where)
        backend = SqliteRegistryBackend(root / "registry.db",
                                        synchronous="full" if syncs(settings.fsync) else "normal")
        artifacts = root / "artifacts" if artifacts is None else artifacts
    elif scheme in ("postgresql", "postgres"):
        from headwater.registry.postgres import PostgresRegistryBackend

        url, schema = pop_query(where, "schema")
        backend = PostgresRegistryBackend(url, schema=schema or "headwater")
    elif scheme == "memory":
        from headwater.registry.memory import MemoryRegistryBackend

        backend = MemoryRegistryBackend()
    else:
        raise ConfigError(f"registry location {where!r}: unknown scheme {scheme!r}; use a path, "
                          "postgresql:// or memory://")
    try:
        if artifacts is None:
            raise ConfigError(f"registry location {scheme}://…: give the artifact location too "
                              "(a directory or an fsspec URL)")
        store = open_artifacts(artifacts, fsync=settings.fsync,
                               cache=cache or Path(settings.home) / "cache" / "artifacts")
    except BaseException:
        backend.close()
        raise
    return ModelRegistry(backend, store, clock=clock)


def open_artifacts(location: str | Path, *, cache: str | Path,
                   fsync: FsyncPolicy = "group") -> ArtifactStore:
    """The artifact store at a directory or fsspec URL (checkouts cached in ``cache``)."""
    where = str(location)
    scheme = urlsplit(where).scheme if "://" in where else ""
    if scheme in ("", "file"):
        return LocalArtifacts(urlsplit(where).path if scheme == "file" else where, fsync=fsync)
    from headwater.registry.remote import FsspecArtifacts

    return FsspecArtifacts(where, cache=cache, fsync=fsync)
