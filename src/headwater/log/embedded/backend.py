"""The embedded log backend: a local directory, no server.

Layout::

    <root>/topics/<topic>/topic.json        the definition (schema, partitions, retention)
    <root>/topics/<topic>/<partition>/      segment files, write.lock, start
    <root>/groups/<group>/                  committed offsets and membership locks

Several processes may open the same directory: they read concurrently, appends to one
partition are serialised by its write lock, and group membership is arbitrated by file
locks that die with their process.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path

import msgspec
import pyarrow as pa

from headwater.errors import (
    TopicExistsError,
    UnknownPartitionError,
    UnknownTopicError,
)
from headwater.fsync import FsyncPolicy, atomic_write, fsync_dir, syncs
from headwater.log.backend import Producer
from headwater.log.embedded.durability import Durability
from headwater.log.embedded.groups import GroupStore, LockMembership
from headwater.log.embedded.partition import Partition
from headwater.log.records import PartitionAppend, Retention, TopicInfo
from headwater.time import Clock, SystemClock

__all__ = ["EmbeddedBackend"]


class EmbeddedBackend:
    """Topics as directories of append-only, memory-mapped Arrow segment files."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: FsyncPolicy = "group",
        group_commit_ms: float = 2.0,
        segment_bytes: int = 128 << 20,
        clock: Clock | None = None,
    ) -> None:
        self.root = Path(root)
        self.clock: Clock = clock or SystemClock()
        self.durability = Durability(fsync, group_commit_ms)
        self._segment_bytes = segment_bytes
        self._topics_dir = self.root / "topics"
        self._topics_dir.mkdir(parents=True, exist_ok=True)
        self._groups = GroupStore(self.root / "groups", fsync=fsync)
        self._infos: dict[str, TopicInfo] = {}
        self._partitions: dict[tuple[str, int], Partition] = {}
        self._lock = threading.RLock()

    # -- topics -------------------------------------------------------------------

    def create_topic(self, info: TopicInfo) -> TopicInfo:
        with self._lock:
            target = self._topics_dir / info.name
            if not target.exists():
                staging = self._topics_dir / f".{info.name}.{uuid.uuid4().hex}"
                staging.mkdir()
                atomic_write(staging / "topic.json", msgspec.json.encode(info),
                             fsync=self.durability.policy)
                try:
                    os.rename(staging, target)
                except OSError:  # created meanwhile by another process
                    shutil.rmtree(staging, ignore_errors=True)
                else:
                    if syncs(self.durability.policy):
                        fsync_dir(self._topics_dir)
            existing = self.topic(info.name)
            if existing != info:
                raise TopicExistsError(f"topic {info.name!r} exists with another definition")
            return existing

    def delete_topic(self, name: str) -> None:
        with self._lock:
            self.topic(name)
            for key in [k for k in self._partitions if k[0] == name]:
                self._partitions.pop(key).close()
            self._infos.pop(name, None)
            graveyard = self._topics_dir / f".deleted.{name}.{uuid.uuid4().hex}"
            os.rename(self._topics_dir / name, graveyard)
            shutil.rmtree(graveyard, ignore_errors=True)
            self._groups.forget_topic(name)

    def topic(self, name: str) -> TopicInfo:
        info = self._infos.get(name)
        if info is not None:
            return info
        return self._read_info(name)

    def append_target(self, name: str) -> TopicInfo:
        return self.topic(name)

    def _read_info(self, name: str) -> TopicInfo:
        """The topic's definition as on disk now (and remembered)."""
        path = self._topics_dir / name / "topic.json"
        if "/" in name or name.startswith("."):
            raise UnknownTopicError(name)
        try:
            info = msgspec.json.decode(path.read_bytes(), type=TopicInfo)
        except FileNotFoundError:
            raise UnknownTopicError(name) from None
        self._infos[name] = info
        return info

    def topics(self) -> list[TopicInfo]:
        return [self.topic(p.name) for p in sorted(self._topics_dir.iterdir())
                if not p.name.startswith(".") and (p / "topic.json").exists()]

    def _partition(self, topic: str, partition: int) -> Partition:
        part = self._partitions.get((topic, partition))
        if part is not None:
            return part
        with self._lock:
            part = self._partitions.get((topic, partition))
            if part is None:
                info = self.topic(topic)
                if not 0 <= partition < info.partitions:
                    raise UnknownPartitionError(f"{topic!r} has no partition {partition}")
                part = Partition(
                    self._topics_dir / topic / str(partition), info.schema,
                    segment_bytes=self._segment_bytes,
                    fsync=self.durability.policy,
                )
                self._partitions[(topic, partition)] = part
            return part

    # -- events ---------------------------------------------------------------------

    def append(self, topic: str, partition: int, batch: pa.RecordBatch,
               producer: Producer | None) -> PartitionAppend:
        part = self._partition(topic, partition)
        placement = part.append(batch, producer, self.clock.now_us())
        if not placement.duplicate:
            self.durability.after_write(part)
        return placement

    def read(self, topic: str, partition: int, offset: int, max_events: int) -> pa.RecordBatch:
        return self._partition(topic, partition).read(offset, max_events)

    def offsets(self, topic: str, partition: int) -> tuple[int, int]:
        return self._partition(topic, partition).offsets()

    def seek_event_time(self, topic: str, partition: int, time_us: int) -> int:
        return self._partition(topic, partition).seek_event_time(time_us)

    def seek_append_time(self, topic: str, partition: int, time_us: int) -> int:
        return self._partition(topic, partition).seek_append_time(time_us)

    def set_retention(self, topic: str, retention: Retention) -> TopicInfo:
        with self._lock:
            info = msgspec.structs.replace(self._read_info(topic), retention=retention)
            folder = self._topics_dir / topic
            atomic_write(folder / "topic.json", msgspec.json.encode(info),
                         fsync=self.durability.policy)
            self._infos[topic] = info
            return info

    def enforce_retention(self, topic: str) -> int:
        info = self._read_info(topic)  # another process may have changed the retention
        now = self.clock.now_us()
        return sum(self._partition(topic, p).enforce_retention(info.retention, now)
                   for p in range(info.partitions))

    # -- groups ---------------------------------------------------------------------

    def commit(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        self.topic(topic)
        self._groups.commit(group, topic, offsets)

    def committed(self, group: str, topic: str) -> dict[int, int]:
        return self._groups.committed(group, topic)

    def groups(self) -> list[str]:
        return self._groups.groups()

    def join(self, group: str, member: str) -> LockMembership:
        return self._groups.join(group, member)

    def close(self) -> None:
        with self._lock:
            for part in self._partitions.values():
                part.close()
            self._partitions.clear()
