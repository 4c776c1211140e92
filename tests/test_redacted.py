"""One redaction of credentials in backend URLs, for every message that shows one."""

from __future__ import annotations

import pytest

from headwater.locations import redacted


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://ada:secret@db:5432/ml", "postgresql://ada@db:5432/ml"),
    ("redis://user:secret@127.0.0.1:1/0", "redis://user@127.0.0.1:1/0"),
    ("rediss://:secret@cache:6380/0?prefix=hw", "rediss://cache:6380/0?prefix=hw"),
    # a password in the query was shown whole by the PostgreSQL registry's messages
    ("postgresql://db/ml?user=ada&password=secret", "postgresql://db/ml?user=ada&password=***"),
    ("kafka://broker:9092?sasl_token=secret&x=1", "kafka://broker:9092?sasl_token=***&x=1"),
    ("memory://", "memory://"),
    ("/var/lib/headwater/log", "/var/lib/headwater/log"),
])
def test_no_secret_is_shown(url: str, shown: str) -> None:
    assert redacted(url) == shown
    assert "secret" not in redacted(url)


def test_the_backends_show_urls_the_same_way() -> None:
    pytest.importorskip("redis")
    pytest.importorskip("psycopg")
    from headwater.log.redis.client import location
    from headwater.registry.postgres import _location

    url = "postgresql://ada:secret@db/ml?password=secret"
    assert location(url) == _location(url) == "postgresql://ada@db/ml?password=***"
