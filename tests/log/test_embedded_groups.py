"""Membership of the embedded log's consumer groups, raced the way processes race."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

import pytest

from headwater.log.embedded.groups import GroupStore


def test_a_member_joining_while_another_sweeps_dead_members_stays_in_the_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Member ``b`` opens its lock file; before it takes the lock, ``a`` finds the file
    unheld, takes it for a dead member's and unlinks it. ``b`` must still end up a live
    member (it used to hold a lock on the unlinked file and crash with "'b' is not in
    list" at its next poll)."""
    store = GroupStore(tmp_path / "groups", fsync="never")
    a = store.join("g", "a")
    real_flock = fcntl.flock
    swept: list[list[str]] = []

    def flock_after_a_sweep(fd: int, operation: int) -> Any:
        if not swept:
            monkeypatch.setattr(fcntl, "flock", real_flock)
            swept.append(a._live_members())  # b's file is there, unheld: a removes it
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_sweep)
    b = store.join("g", "b")

    assert swept == [["a"]]
    assert a._live_members() == ["a", "b"]
    assert b.assigned("t", 4) == [1, 3]
    assert a.assigned("t", 4) == [0, 2]
    for member in (a, b):
        member.close()


def test_a_dead_members_lock_is_swept(tmp_path: Path) -> None:
    store = GroupStore(tmp_path / "groups", fsync="never")
    a = store.join("g", "a")
    b = store.join("g", "b")
    b.close()
    (tmp_path / "groups" / "g" / "members" / "c.lock").touch()  # died without unlinking
    assert a._live_members() == ["a"]
    assert not (tmp_path / "groups" / "g" / "members" / "c.lock").exists()
    a.close()
