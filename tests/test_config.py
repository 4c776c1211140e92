from __future__ import annotations

import pytest

from headwater.config import Settings
from headwater.errors import ConfigError


def test_defaults_and_environment() -> None:
    assert Settings.from_env({}).log_location.endswith("log")
    settings = Settings.from_env(
        {"HEADWATER_LOG_URL": "redis://x", "HEADWATER_SEGMENT_BYTES": "4096", "UNRELATED": "1"}
    )
    assert settings.log_location == "redis://x"
    assert settings.segment_bytes == 4096


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="fsync"):
        Settings.from_env({"HEADWATER_FSYNC": "sometimes"})
    with pytest.raises(ConfigError, match="segment_bytes"):
        Settings.from_env({"HEADWATER_SEGMENT_BYTES": "big"})


def test_the_model_store_locations() -> None:
    assert Settings.from_env({"HEADWATER_HOME": "/h"}).registry_location == "/h/registry"
    settings = Settings.from_env({"HEADWATER_REGISTRY_URL": "postgresql://db/m",
                                  "HEADWATER_ARTIFACTS_URL": "s3://bucket/models"})
    assert settings.registry_location == "postgresql://db/m"
    assert settings.artifacts_url == "s3://bucket/models"


def test_file_modes_and_the_umask_they_give() -> None:
    assert (Settings().file_permissions, Settings().umask) == (0o600, 0o077)
    assert Settings.from_env({"HEADWATER_FILE_MODE": "640"}).umask == 0o027
    assert Settings.from_env({"HEADWATER_FILE_MODE": "660"}).umask == 0o007
    for bad in ("700", "400", "0x1", "6000", ""):
        with pytest.raises(ConfigError, match="HEADWATER_FILE_MODE"):
            Settings.from_env({"HEADWATER_FILE_MODE": bad})


def test_the_retention_of_system_topics() -> None:
    assert Settings().system_retention_us == 7 * 86_400_000_000
    assert Settings.from_env({"HEADWATER_SYSTEM_RETENTION": "forever"}).system_retention_us is None
    assert Settings.from_env({"HEADWATER_SYSTEM_RETENTION": "12h"}).system_retention_us == (
        12 * 3_600_000_000)
    for bad in ("0s", "soon"):
        with pytest.raises(ConfigError, match="HEADWATER_SYSTEM_RETENTION"):
            Settings.from_env({"HEADWATER_SYSTEM_RETENTION": bad})
