"""Consumer groups of the embedded log: committed offsets and membership.

Committed offsets live in ``groups/<group>/<topic>.json``, replaced atomically (write a
temporary file, fsync, rename) under a lock, so members committing different partitions
never lose each other's commits.

Membership uses ``flock``, which the kernel releases when a process dies: a live member
holds ``groups/<group>/members/<member>.lock``, and owning a partition means holding
``groups/<group>/owners/<topic>.<partition>.lock``. At every poll a member computes its
fair share (members sorted by name; member *r* of *m* owns partitions *r, r+m, …*),
releases what is no longer its share and takes what is, once the previous owner has let
go. Ownership is therefore exclusive even while members come and go.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from headwater.errors import UnknownConsumerGroupError, ValidationError
from headwater.fsync import FsyncPolicy, atomic_write

__all__ = ["GroupStore", "LockMembership"]


class GroupStore:
    """Committed offsets of every group, under ``root``."""

    def __init__(self, root: Path, *, fsync: FsyncPolicy) -> None:
        self.root = root
        self._fsync = fsync
        root.mkdir(parents=True, exist_ok=True)

    def _dir(self, group: str) -> Path:
        if not group or "/" in group or group.startswith(".") or len(group) > 200:
            raise ValidationError("group", f"{group!r} is not a consumer group name")
        return self.root / group

    @contextlib.contextmanager
    def _locked(self, group: str) -> Iterator[Path]:
        path = self._dir(group)
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield path
        finally:
            os.close(fd)

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        with self._locked(group) as path:
            target = path / f"{topic}.json"
            current = _read(target)
            current.update({str(p): int(o) for p, o in offsets.items()})
            atomic_write(target, json.dumps(current).encode(), fsync=self._fsync)
            (path / ".committed").touch()

    def committed(self, group: str, topic: str) -> dict[int, int]:
        path = self._dir(group)
        if not (path / ".committed").exists():
            raise UnknownConsumerGroupError(group)
        return {int(p): o for p, o in _read(path / f"{topic}.json").items()}

    def groups(self) -> list[str]:
        if not self.root.exists():
            return []
        return [p.name for p in self.root.iterdir() if (p / ".committed").exists()]

    def forget_topic(self, topic: str) -> None:
        for group in self.groups():
            (self.root / group / f"{topic}.json").unlink(missing_ok=True)

    def join(self, group: str, member: str) -> LockMembership:
        return LockMembership(self._dir(group), member)


class LockMembership:
    """One member's live membership and partition ownership, held as file locks."""

    def __init__(self, path: Path, member: str) -> None:
        if not member or "/" in member or member.startswith("."):
            raise ValidationError("member", f"{member!r} is not a member name")
        self._members = path / "members"
        self._owners = path / "owners"
        self._members.mkdir(parents=True, exist_ok=True)
        self._owners.mkdir(parents=True, exist_ok=True)
        self.member = member
        self._me = self._members / f"{member}.lock"
        self._fd: int | None = _try_lock(self._me)
        if self._fd is None:
            raise ValidationError("member", f"member {member!r} is already in the group")
        self._owned: dict[tuple[str, int], int] = {}

    def _live_members(self) -> list[str]:
        live = []
        for entry in self._members.glob("*.lock"):
            name = entry.name[: -len(".lock")]
            if name == self.member:
                live.append(name)
                continue
            fd = _try_lock(entry)
            if fd is None:
                live.append(name)  # somebody holds it: alive
            else:  # nobody holds it: a member that died or left
                entry.unlink(missing_ok=True)
                os.close(fd)
        return sorted(live)

    def assigned(self, topic: str, partitions: int) -> list[int]:
        members = self._live_members()
        rank, count = members.index(self.member), len(members)
        share = set(range(rank, partitions, count))
        for key in [k for k in self._owned if k[0] == topic and k[1] not in share]:
            os.close(self._owned.pop(key))
        for p in share:
            if (topic, p) not in self._owned:
                fd = _try_lock(self._owners / f"{topic}.{p}.lock")
                if fd is not None:
                    self._owned[(topic, p)] = fd
        return sorted(p for t, p in self._owned if t == topic)

    def close(self) -> None:
        for fd in self._owned.values():
            os.close(fd)
        self._owned.clear()
        if self._fd is not None:
            self._me.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


def _try_lock(path: Path) -> int | None:
    """Hold ``path``'s lock, or ``None`` when another process holds it.

    A member that finds a lock nobody holds unlinks the file (its owner died). A process
    that opened the file just before that unlink would lock a file that is no longer at
    ``path`` and never be seen as alive; so the lock counts only once the file it holds is
    still the one at ``path``, and is taken again on a fresh file otherwise.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # unlinked under us: lock the file now at the path


def _read(path: Path) -> dict[str, int]:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    return {str(k): int(v) for k, v in data.items()}
