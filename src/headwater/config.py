"""One frozen settings object; the environment is read here and nowhere else.

>>> Settings.from_env({"HEADWATER_HOME": "/tmp/hw", "HEADWATER_FSYNC": "always"}).fsync
'always'
>>> Settings.from_env({"HEADWATER_HOME": "/tmp/hw"}).registry_location
'/tmp/hw/registry'
>>> Settings.from_env({"HEADWATER_REGISTRY_URL": "postgresql://db/models"}).registry_location
'postgresql://db/models'
>>> oct(Settings.from_env({"HEADWATER_FILE_MODE": "640"}).umask)
'0o27'
>>> Settings().system_retention_us // 86_400_000_000
7
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

from headwater.errors import ConfigError, TimestampError
from headwater.fsync import FsyncPolicy
from headwater.time import parse_duration

__all__ = ["FsyncPolicy", "Settings"]

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
    history_url: str | None = None
    """The feature history: a directory or an fsspec URL (``s3://bucket/history``).
    Defaults to ``<home>/features/history``."""
    checkpoints_url: str | None = None
    """Where the feature engine checkpoints each partition's state: a directory or an
    fsspec URL (``s3://bucket/checkpoints``). Engines on several machines that share it
    (and the log, the online store and the history) hand a partition over with its
    state: the new owner resumes from the last checkpoint instead of the log's start.
    Defaults to ``<home>/features/state``."""
    group_timeout: str = "2s"
    """How long a member of a consumer group (a feature engine, a label joiner) may be
    silent before the others take its partitions over, on the Redis log: the most of the
    failover time after a process dies (the embedded log notices a dead process at once;
    the Kafka log's members hold 30 s leases)."""
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
    file_mode: str = "600"
    """The permissions of the data files Headwater's commands create (octal, owner
    read/write at least): ``600`` by default, so events, predictions, features and models
    are the owner's only; ``640`` lets a group read, ``660`` lets it write too.
    Directories get the same bits plus search (``700``, ``750``, ``770``)."""
    system_retention: str = "7d"
    """How long the topics Headwater creates for itself (predictions, decisions,
    outcomes, training examples, late outcomes, dead letters) keep events when they are
    created: a duration, or ``forever``. An existing topic keeps its own
    (``headwater topics retention`` changes it)."""

    def __post_init__(self) -> None:
        self.file_permissions  # noqa: B018  (checks the setting)
        self.system_retention_us  # noqa: B018
        self.group_timeout_s  # noqa: B018

    @property
    def file_permissions(self) -> int:
        """``file_mode`` as a number (``0o600``)."""
        try:
            mode = int(self.file_mode, 8)
        except ValueError:
            mode = -1
        if not 0 <= mode <= 0o666 or mode & 0o600 != 0o600 or mode & 0o111:
            raise ConfigError(f"HEADWATER_FILE_MODE: expected octal read/write bits with the "
                              f"owner's read and write (600, 640, 660), got {self.file_mode!r}")
        return mode

    @property
    def umask(self) -> int:
        """The process umask that gives files ``file_mode`` and directories the same bits
        plus search where they can be read."""
        mode = self.file_permissions
        return 0o777 & ~(mode | ((mode & 0o444) >> 2))

    @property
    def system_retention_us(self) -> int | None:
        """``system_retention`` in µs (``None``: forever)."""
        if self.system_retention.strip().lower() == "forever":
            return None
        try:
            us = parse_duration(self.system_retention, field="HEADWATER_SYSTEM_RETENTION")
        except TimestampError as exc:
            raise ConfigError(str(exc)) from exc
        if us <= 0:
            raise ConfigError("HEADWATER_SYSTEM_RETENTION: expected a positive duration or "
                              f"'forever', got {self.system_retention!r}")
        return us

    @property
    def group_timeout_s(self) -> float:
        """``group_timeout`` in seconds."""
        try:
            us = parse_duration(self.group_timeout, field="HEADWATER_GROUP_TIMEOUT")
        except TimestampError as exc:
            raise ConfigError(str(exc)) from exc
        if us <= 0:
            raise ConfigError("HEADWATER_GROUP_TIMEOUT: expected a positive duration, got "
                              f"{self.group_timeout!r}")
        return us / 1_000_000

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
    def history_location(self) -> str:
        """The feature history (``history_url``, or ``<home>/features/history``)."""
        return self.history_url or str(self.features_dir / "history")

    @property
    def checkpoints_location(self) -> str:
        """The feature engine's checkpoints (``checkpoints_url``, or
        ``<home>/features/state``)."""
        return self.checkpoints_url or str(self.features_dir / "state")

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
            raise ConfigError(f"HEADWATER_* settings: {exc}") from exc
