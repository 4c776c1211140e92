"""A partition moving between engines: resumed from its shared checkpoint, and no
served value goes back while it moves, even with the previous owner still writing."""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
from headwater.features.checkpoint import SharedCheckpointStore, open_checkpoints
from headwater.features.engine import FeatureEngine
from headwater.features.online import FeatureReader
from headwater.log import Log, Schema
from headwater.log.schema import TIMESTAMP
from headwater.store.online import MemoryOnlineStore
from headwater.testing import MemoryBackend

SCHEMA = Schema.of({"user": "string", "x": "float64", "ts": "timestamp"},
                   key="user", event_time="ts")
USER = Entity("user", key="user")
SOURCE = StreamSource.of("events")
FEATURES = [Feature.of("n", USER, SOURCE, "count", window=Lifetime()),
            Feature.of("total", USER, SOURCE, "sum", column="x", window=Lifetime())]
USERS = [f"u{i}" for i in range(12)]
T0 = 1_700_000_000_000_000


def append(log: Log, rng: np.random.Generator, n: int, at: int) -> None:
    log.append("events", pa.record_batch({
        "user": [USERS[i] for i in rng.integers(0, len(USERS), n)],
        "x": rng.integers(1, 5, n).astype(np.float64),
        "ts": pa.array(T0 + at + np.arange(n), pa.int64()).cast(TIMESTAMP),
    }))


def counts(online: MemoryOnlineStore) -> dict[str, tuple[int, float]]:
    reader = FeatureReader(online, FeatureSet("all", tuple(FEATURES)))
    out = {}
    for user in USERS:
        row = reader.read({"user": user}, T0 + 10**12)
        out[user] = (row["n"] or 0, row["total"] or 0.0)
    return out


@settings(max_examples=25, deadline=None)
@given(chunks=st.lists(st.integers(1, 60), min_size=2, max_size=8),
       checkpoint_after=st.integers(0, 7), handover_after=st.integers(0, 7),
       stale_writes=st.booleans(), step=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_values_never_go_back_while_a_partition_moves(
    chunks: list[int], checkpoint_after: int, handover_after: int, stale_writes: bool,
    step: int, seed: int,
) -> None:
    """The engine taking over replays from the checkpoint in micro-batches of ``step``
    events, so what it computes is older than what was served for a while."""
    rng = np.random.default_rng(seed)
    log = Log(MemoryBackend())
    log.create_topic("events", SCHEMA, partitions=2)
    online = MemoryOnlineStore()
    shared = f"memory://handover-{uuid.uuid4().hex}"
    first = FeatureEngine(log, FEATURES, online, state_dir=shared, member="a")
    seen = counts(online)

    def no_value_went_back() -> None:
        nonlocal seen
        now = counts(online)
        for user in USERS:
            assert now[user][0] >= seen[user][0], (user, seen[user], now[user])
            assert now[user][1] >= seen[user][1], (user, seen[user], now[user])
        seen = now

    second: FeatureEngine | None = None
    handover = min(handover_after, len(chunks) - 1)
    at = 0
    for k, n in enumerate(chunks):
        append(log, rng, n, at)
        at += n
        if second is None:
            first.step()
            if k == checkpoint_after:
                first.checkpoint()
            if k == handover:  # the first engine stops without a checkpoint
                first.consumer.close()
                second = FeatureEngine(log, FEATURES, online, state_dir=shared, member="b")
                second.step(max_events=step)
                if stale_writes:  # the first one, not knowing yet, writes once more
                    append(log, rng, 5, at)
                    at += 5
                    first._step_once(100_000)
                    assert first.fenced, "the stale writes were refused"
        else:
            second.step(max_events=step)
        no_value_went_back()
    assert second is not None
    while second.step(max_events=step):
        no_value_went_back()
    resumed = {(t, p): offset for t, p, offset in second.resumed}
    if checkpoint_after <= handover:
        assert any(resumed.values()), "the second engine resumed from the checkpoint"

    reference = MemoryOnlineStore()
    with FeatureEngine(log, FEATURES, reference, state_dir=f"{shared}-reference",
                       group="reference") as engine:
        engine.run(idle_timeout_s=0)
    assert counts(online) == counts(reference)


def test_shared_checkpoints_round_trip_and_keep_the_last_two() -> None:
    url = f"memory://checkpoints-{uuid.uuid4().hex}/events/0"
    store = open_checkpoints(url.rsplit("/", 2)[0], "events", "0")
    assert isinstance(store, SharedCheckpointStore)
    assert store.current() is None
    log = Log(MemoryBackend())
    log.create_topic("events", SCHEMA, partitions=1)
    append(log, np.random.default_rng(1), 50, 0)
    online = MemoryOnlineStore()
    with FeatureEngine(log, FEATURES, online, state_dir=url.rsplit("/", 2)[0]) as engine:
        for _ in range(3):
            engine.step(max_events=10)
            engine.checkpoint()
    current = store.current()
    assert current is not None
    meta, arrays, keys = current
    assert meta.position == 30
    assert meta.id == 4  # three checkpoints and the one on close
    assert set(keys.to_pylist()) <= set(USERS)
    assert arrays
    assert len(store._fs.glob(store._path("ckpt-*"))) == 2
