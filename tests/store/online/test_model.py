"""Random writes, deletes, reads and restarts agree with a plain dict model."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from headwater.errors import ValidationError
from headwater.store.online import EmbeddedOnlineStore, OnlineStore
from tests.store.online.harness import HARNESSES, Harness

NAMESPACES = ["user", "item"]
ENTITIES = [f"e{i}" for i in range(6)] + ["with:colon", "ünï"]
FEATURES = [f"f{i}" for i in range(5)]

namespaces = st.sampled_from(NAMESPACES)
entities = st.sampled_from(ENTITIES)
features = st.dictionaries(st.sampled_from(FEATURES), st.binary(max_size=24), max_size=4)
rows = st.lists(st.tuples(entities, features), max_size=6)
meta = st.dictionaries(st.sampled_from(["offsets", "owner"]), st.binary(max_size=8), max_size=2)

Model = dict[str, dict[str, dict[str, bytes]]]


@settings(stateful_step_count=30)
class OnlineStoreModel(RuleBasedStateMachine):
    """An online store as dicts: entities, versions and metadata per namespace."""

    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._stack = ExitStack()
        self._tmp = Path(tempfile.mkdtemp())
        self.harness: Harness = self._stack.enter_context(HARNESSES[self.backend](self._tmp))
        self.store: OnlineStore = self.harness.open()
        self.entities: Model = {ns: {} for ns in NAMESPACES}
        self.versions: dict[str, int | None] = dict.fromkeys(NAMESPACES)
        self.meta: dict[str, dict[str, bytes]] = {ns: {} for ns in NAMESPACES}

    def teardown(self) -> None:
        self._stack.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    @rule(ns=namespaces, rows=rows, step=st.integers(-2, 3), meta=meta)
    def write(self, ns: str, rows: list[tuple[str, dict[str, bytes]]], step: int,
              meta: dict[str, bytes]) -> None:
        current = self.versions[ns]
        version = None if step == 0 else max(0, (current or 0) + step)
        if version is not None and current is not None and version <= current:
            with pytest.raises(ValidationError):
                self.store.write(ns, rows, version=version, meta=meta)
            return
        self.store.write(ns, rows, version=version, meta=meta)
        for entity, blobs in rows:
            if blobs:
                self.entities[ns].setdefault(entity, {}).update(blobs)
        if version is not None:
            self.versions[ns] = version
        self.meta[ns].update(meta)

    @rule(ns=namespaces, doomed=st.lists(entities, max_size=3))
    def delete(self, ns: str, doomed: list[str]) -> None:
        self.store.delete(ns, doomed)
        for entity in doomed:
            self.entities[ns].pop(entity, None)

    @rule(ns=namespaces, key=st.sampled_from(["offsets", "owner"]), value=st.binary(max_size=8))
    def meta_set(self, ns: str, key: str, value: bytes) -> None:
        self.store.meta_set(ns, key, value)
        self.meta[ns][key] = value

    @rule()
    def reopen(self) -> None:
        self.store = self.harness.reopen(self.store)

    @rule(ns=namespaces, entity=entities)
    def read(self, ns: str, entity: str) -> None:
        assert self.store.read(ns, entity) == self.entities[ns].get(entity, {})

    @invariant()
    def agrees(self) -> None:
        check(self.store, self)


def check(store: OnlineStore, model: OnlineStoreModel) -> None:
    for ns in NAMESPACES:
        expected = [model.entities[ns].get(e, {}) for e in ENTITIES]
        assert store.read_many(ns, ENTITIES) == expected
        assert store.version(ns) == model.versions[ns]
        for key in ("offsets", "owner"):
            assert store.meta_get(ns, key) == model.meta[ns].get(key)


class EmbeddedModel(OnlineStoreModel):
    """Adds compaction, and a read-only follower that must catch up exactly."""

    backend = "embedded"

    def __init__(self) -> None:
        super().__init__()
        self.reader: EmbeddedOnlineStore | None = None

    def teardown(self) -> None:
        if self.reader is not None:
            self.reader.close()
        super().teardown()

    @rule()
    def compact(self) -> None:
        assert isinstance(self.store, EmbeddedOnlineStore)
        self.store.compact()

    @precondition(lambda self: self.reader is None)
    @rule()
    def open_reader(self) -> None:
        assert isinstance(self.store, EmbeddedOnlineStore)
        self.reader = EmbeddedOnlineStore(self.store.path, read_only=True)
        check(self.reader, self)

    @precondition(lambda self: self.reader is not None)
    @rule()
    def refresh_reader(self) -> None:
        assert self.reader is not None
        self.reader.refresh()
        check(self.reader, self)


class RedisModel(OnlineStoreModel):
    backend = "redis"


TestMemoryModel = OnlineStoreModel.TestCase
TestEmbeddedModel = EmbeddedModel.TestCase
TestRedisModel = RedisModel.TestCase
