"""The online store's public surface, and opening a store by location."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import headwater.store.online
from headwater.errors import ConfigError
from headwater.store.online import EmbeddedOnlineStore, MemoryOnlineStore, open_online_store
from tests.extras import require_extra
from tests.store.online.harness import REDIS_URL


def test_exported_members() -> None:
    module = headwater.store.online
    assert sorted(module.__all__) == [
        "EmbeddedOnlineStore", "MemoryOnlineStore", "OnlineStore", "Row", "StoreFollower",
        "open_online_store",
    ]
    assert module.__doc__
    for name in module.__all__:
        assert hasattr(module, name), name


def test_importing_the_stores_imports_no_server_client() -> None:
    probe = (
        "import sys, headwater.store, headwater.store.online; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"


def test_open_by_location(tmp_path: Path) -> None:
    store = open_online_store(str(tmp_path / "a"))
    assert isinstance(store, EmbeddedOnlineStore)
    store.write("user", [("u1", {"a": b"1"})])
    reader = open_online_store(f"file://{tmp_path / 'a'}", read_only=True)
    assert reader.read("user", "u1") == {"a": b"1"}
    store.close()
    assert isinstance(open_online_store("memory://"), MemoryOnlineStore)
    with pytest.raises(ConfigError, match="unknown scheme 'ftp'"):
        open_online_store("ftp://somewhere")


def test_open_redis_by_url() -> None:
    require_extra("redis", "redis")
    from headwater.store.online.redis import RedisOnlineStore

    store = open_online_store(f"{REDIS_URL}?prefix=hwtest-url")
    assert isinstance(store, RedisOnlineStore)
    assert store.prefix == "hwtest-url"
    assert store.url == REDIS_URL
    store.close()
