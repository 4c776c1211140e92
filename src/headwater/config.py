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
from typing import Literal

import msgspec

from headwater.errors import ConfigError

__all__ = ["FsyncPolicy", "Settings"]

FsyncPolicy = Literal["always", "group", "never"]
"""When the embedded log calls fsync: after every append, every ``group_commit_ms``
(appends wait for it), or never (the OS decides; survives a process crash, not a power
cut)."""


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
