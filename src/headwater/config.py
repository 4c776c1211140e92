"""One frozen settings object; the environment is read here and nowhere else.

>>> Settings.from_env({"HEADWATER_HOME": "/tmp/hw", "HEADWATER_FSYNC": "always"}).fsync
'always'
>>> Settings.from_env({"HEADWATER_HOME": "/tmp/hw"}).registry_location
'/tmp/hw/registry'
>>> Settings.from_env({"HEADWATER_REGISTRY_URL": "postgresql://db/models"}).registry_location
'postgresql://db/models'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from headwater.errors import ConfigError

__all__ = ["FsyncPolicy", "Settings"]

FsyncPolicy = Literal["always", "group", "never"]
"""When the embedded log calls fsync: after every append, every ``group_commit_ms``
(appends wait for it), or never (the OS decides; survives a process crash, not a power
cut)."""

_Positive = Annotated[float, msgspec.Meta(gt=0)]
_Count = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where Headwater keeps its data and which backends it uses."""

    home: str = ".headwater"
    """Directory of the embedded backends."""
    log_url: str | None = None
    """The log backend: a path (embedded), ``redis://…``, ``kafka://…`` or ``memory://``.
    Defaults to ``<home>/log``."""
    online_url: str | None = None
    """The online store: a path (embedded), ``redis://…`` or ``memory://``. Defaults to
    ``<home>/online``."""
    registry_url: str | None = None
    """The model store's records: a directory (SQLite), ``postgresql://…`` or ``memory://``.
    Defaults to ``<home>/registry``."""
    artifacts_url: str | None = None
    """Where the model store keeps artifacts: a directory or an fsspec URL (``s3://…``).
    Defaults to ``<registry>/artifacts`` for a directory registry; a server registry
    needs it."""
    project: str = "features.py"
    """The Python module (a file) holding the feature definitions."""
    admin_token: str | None = None
    """The bearer token of the prediction server's admin endpoints (none: refused)."""
    fsync: FsyncPolicy = "group"
    group_commit_ms: float = 2.0
    segment_bytes: int = 128 << 20
    max_event_bytes: int = 1 << 20
    online_refresh_ms: _Positive = 5.0
    """How often a reader of the embedded online store (the prediction server) catches up
    with its writer (the feature engine): the most a served value lags the store."""
    serve_max_batch: _Count = 1_000
    """The most requests (or outcomes) one batch sent to the prediction server may hold."""
    serve_read_timeout_s: _Positive = 10.0
    """How long the prediction server waits for a whole request (headers and body) on a
    connection, from its opening or from the previous response, before closing it."""
    serve_max_connections: _Count = 1_000
    """Connections the prediction server keeps open at once; one more is answered 503
    and closed."""

    @property
    def log_location(self) -> str:
        return self.log_url or str(Path(self.home) / "log")

    @property
    def online_location(self) -> str:
        return self.online_url or str(Path(self.home) / "online")

    @property
    def registry_location(self) -> str:
        """The model store's records (``registry_url``, or ``<home>/registry``)."""
        return self.registry_url or str(Path(self.home) / "registry")

    @property
    def features_dir(self) -> Path:
        """Where the feature engine keeps its checkpoints, history and applied definitions."""
        return Path(self.home) / "features"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``HEADWATER_*`` variables (from ``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        for name in cls.__struct_fields__:
            value = env.get(f"HEADWATER_{name.upper()}")
            if value is not None:
                raw[name] = value
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"HEADWATER_* settings: {exc}") from None
