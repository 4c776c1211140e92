"""A reader kept current with its writer, on every backend."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from headwater.errors import ConfigError
from headwater.store.online import (
    EmbeddedOnlineStore,
    OnlineStore,
    StoreFollower,
    open_online_store,
)
from tests.store.online.harness import Harness


def reader_of(harness: Harness, tmp_path: Path) -> OnlineStore:
    """A second handle on the harness's storage, as another process would open it."""
    if harness.name == "embedded":
        return EmbeddedOnlineStore(tmp_path / "online", read_only=True)
    return harness.open()


def test_a_followed_reader_sees_what_the_writer_writes_after_it_opened(
        harness: Harness, tmp_path: Path) -> None:
    writer = harness.open()
    writer.write("user", [("u1", {"a": b"1"})])
    reader = reader_of(harness, tmp_path)
    with StoreFollower(reader, every_ms=1) as follower:
        assert follower.running == (harness.name == "embedded")
        writer.write("user", [("u1", {"a": b"2"}), ("u2", {"a": b"3"})])
        deadline = time.monotonic() + 10
        while reader.read("user", "u2") != {"a": b"3"} and time.monotonic() < deadline:
            time.sleep(0.001)
        assert reader.read("user", "u1") == {"a": b"2"}
        assert reader.read("user", "u2") == {"a": b"3"}
    assert not follower.running
    if harness.name == "embedded":
        assert follower.refreshes > 0
        assert follower.applied >= 1
        reader.close()


def test_an_unfollowed_embedded_reader_stays_as_it_opened(tmp_path: Path) -> None:
    """What the follower is for: without a refresh, a reader keeps its opening state."""
    writer = EmbeddedOnlineStore(tmp_path / "online", fsync="never")
    writer.write("user", [("u1", {"a": b"1"})])
    reader = EmbeddedOnlineStore(tmp_path / "online", read_only=True)
    writer.write("user", [("u1", {"a": b"2"})])
    assert reader.read("user", "u1") == {"a": b"1"}
    assert StoreFollower(reader).refresh() == 1
    assert reader.read("user", "u1") == {"a": b"2"}
    reader.close()
    writer.close()


def test_following_survives_a_compaction(tmp_path: Path) -> None:
    writer = EmbeddedOnlineStore(tmp_path / "online", fsync="never")
    reader = EmbeddedOnlineStore(tmp_path / "online", read_only=True)
    follower = StoreFollower(reader)
    for i in range(5):
        writer.write("user", [(f"u{i}", {"a": bytes([i])})])
        writer.compact()
        follower.refresh()
    assert [reader.read("user", f"u{i}") for i in range(5)] == [
        {"a": bytes([i])} for i in range(5)]
    assert follower.errors == 0
    reader.close()
    writer.close()


def test_a_failed_refresh_is_said_and_retried(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    writer = EmbeddedOnlineStore(tmp_path / "online", fsync="never")
    writer.write("user", [("u1", {"a": b"1"})])
    reader = EmbeddedOnlineStore(tmp_path / "online", read_only=True)
    wal = next((tmp_path / "online").glob("*.wal"))
    with wal.open("ab") as f:  # a record whose checksum cannot match: a corrupt file
        f.write(b"\xff" * 64)
    follower = StoreFollower(reader)
    with caplog.at_level(logging.WARNING, logger="headwater.store.online"):
        assert follower.refresh() == 0
        assert follower.refresh() == 0
    assert follower.errors == 2
    assert follower.last_error
    assert len([r for r in caplog.records if "could not catch up" in r.message]) == 1
    assert reader.read("user", "u1") == {"a": b"1"}  # the last good state is kept
    reader.close()
    writer.close()


def test_a_reader_started_before_its_writer(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    where = str(tmp_path / "online")
    with pytest.raises(ConfigError, match="no online store here"):
        open_online_store(where, read_only=True)
    with caplog.at_level(logging.WARNING, logger="headwater.store.online"):
        reader = open_online_store(where, read_only=True, create=True)
    assert "every entity reads as unknown" in caplog.text
    assert reader.read("user", "u1") == {}
    writer = open_online_store(where)
    writer.write("user", [("u1", {"a": b"1"})])
    assert StoreFollower(reader).refresh() == 1
    assert reader.read("user", "u1") == {"a": b"1"}
    reader.close()
    writer.close()


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="every_ms"):
        StoreFollower(open_online_store("memory://"), every_ms=0)
