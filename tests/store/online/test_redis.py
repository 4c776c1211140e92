"""What the Redis online store does beyond the contract: its extra, errors, round trips.

The contract itself runs in ``test_contract.py``; tests here that need the server skip
without it (and fail in CI, see ``tests.log.harness.unavailable``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from headwater.errors import BackendError, ConfigError, ValidationError
from tests.extras import import_without, require_extra
from tests.store.online.harness import REDIS_URL, unavailable

if TYPE_CHECKING:
    from headwater.store.online.redis import RedisOnlineStore

Connect = Callable[..., "RedisOnlineStore"]
NS = "user"


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Opens stores on one fresh prefix (or another given one); cleans up after."""
    require_extra("redis", "redis")
    from headwater.store.online.redis import RedisOnlineStore

    prefix = f"hwtest-{uuid.uuid4().hex[:12]}"
    opened: list[RedisOnlineStore] = []

    def make(**options: Any) -> RedisOnlineStore:
        options.setdefault("prefix", prefix)
        store = RedisOnlineStore(REDIS_URL, **options)
        opened.append(store)
        return store

    probe = make()
    try:
        probe.ping()
    except BackendError as exc:
        probe.close()
        unavailable(str(exc))
    yield make
    for store in opened:
        store.destroy()
        store.close()


# -- without a server -----------------------------------------------------------------


def test_missing_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    error = import_without(monkeypatch, "headwater.store.online.redis", "redis")
    assert str(error) == (
        "The Redis online store needs the 'redis' package: pip install 'headwater[redis]'"
    )
    assert error.extra == "redis"


def test_an_unreachable_server_raises_backend_error() -> None:
    require_extra("redis", "redis")
    from headwater.store.online.redis import RedisOnlineStore

    store = RedisOnlineStore("redis://user:secret@127.0.0.1:1/0")
    try:
        with pytest.raises(BackendError, match=r"127\.0\.0\.1:1.*reading 'user'") as raised:
            store.read(NS, "u1")
        assert "secret" not in str(raised.value)
        assert raised.value.__cause__ is not None
        with pytest.raises(BackendError, match="writing to 'user'"):
            store.write(NS, [("u1", {"a": b"1"})])
    finally:
        store.close()


def test_bad_input_is_refused_before_the_server_is_asked() -> None:
    require_extra("redis", "redis")
    from headwater.store.online.redis import RedisOnlineStore

    store = RedisOnlineStore("redis://127.0.0.1:1/0")
    with pytest.raises(ValidationError, match=r"rows\[0\]\[1\]\['a'\]"):
        store.write(NS, [("u1", {"a": "text"})])  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="prefix"):
        RedisOnlineStore("redis://127.0.0.1:1/0", prefix="")
    store.close()


# -- with the server ------------------------------------------------------------------


def test_an_error_reply_raises_backend_error(connect: Connect) -> None:
    store = connect()
    store._client.set(f"{store.prefix}:{NS}:e:u1", "not a hash")
    with pytest.raises(BackendError, match="WRONGTYPE"):
        store.read(NS, "u1")


def test_the_key_layout(connect: Connect) -> None:
    store = connect()
    store.write(NS, [("u:1", {"a": b"1"})], version=4, meta={"offsets": b"o"})
    assert store._client.hgetall(f"{store.prefix}:{NS}:e:u:1") == {b"a": b"1"}
    assert store._client.hgetall(f"{store.prefix}:{NS}:meta") == {
        b"version": b"4", b"m:offsets": b"o"
    }


def test_stores_on_one_prefix_share_and_other_prefixes_do_not(connect: Connect) -> None:
    first, second = connect(), connect()
    first.write(NS, [("u1", {"a": b"1"})], version=1)
    assert second.read(NS, "u1") == {"a": b"1"}
    assert second.version(NS) == 1
    with pytest.raises(ValidationError, match="version"):
        second.write(NS, [], version=1)
    other = connect(prefix=f"hwtest-other-{uuid.uuid4().hex[:8]}")
    assert other.read(NS, "u1") == {}


def _count_round_trips(store: RedisOnlineStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the requests sent on the store's connections."""
    from redis.connection import Connection

    sent = [0]
    real = Connection.send_packed_command

    def counting(self: Connection, *args: Any, **kwargs: Any) -> None:
        sent[0] += 1
        real(self, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(Connection, "send_packed_command", counting)
    return sent


def test_reads_and_writes_take_one_round_trip(
    connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = connect()
    store.ping()  # connect and register the script before counting
    store.write(NS, [("warm", {"a": b"1"})])
    sent = _count_round_trips(store, monkeypatch)
    store.write(NS, [(f"u{i}", {f"f{j}": b"x" for j in range(20)}) for i in range(100)],
                version=1, meta={"offsets": b"1"})
    assert sent[0] == 1
    assert len(store.read(NS, "u7")) == 20
    assert sent[0] == 2
    assert len(store.read_many(NS, [f"u{i}" for i in range(100)])) == 100
    assert sent[0] == 3


def test_concurrent_versioned_writers_are_fenced(connect: Connect) -> None:
    """Writers racing with versions: a version is refused only when a greater or equal
    one was committed first, and the last committed one wins."""
    stores = [connect() for _ in range(4)]
    accepted: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()

    def run(w: int) -> None:
        for version in range(w, 200, 4):
            try:
                stores[w].write(NS, [("u", {"v": str(version).encode()})], version=version)
            except ValidationError:
                with lock:
                    refused.append(version)
                continue
            with lock:
                accepted.append(version)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(accepted + refused) == list(range(200))
    assert max(refused, default=-1) < max(accepted)
    assert stores[0].version(NS) == max(accepted)
    assert stores[0].read(NS, "u") == {"v": str(max(accepted)).encode()}


# -- apart from the log -------------------------------------------------------------


def test_the_default_prefixes_of_the_log_and_the_online_store_are_apart() -> None:
    require_extra("redis", "redis")
    from headwater.config import Settings
    from headwater.log import open_backend
    from headwater.log.redis import RedisBackend
    from headwater.store.online import open_online_store
    from headwater.store.online.redis import RedisOnlineStore

    settings = Settings(log_url="redis://127.0.0.1:1/0")
    store = open_online_store("redis://127.0.0.1:1/0", settings=settings)
    backend = open_backend("redis://127.0.0.1:1/0")
    assert isinstance(store, RedisOnlineStore)
    assert isinstance(backend, RedisBackend)
    assert (store.prefix, backend.prefix) == ("headwater-online", "headwater")
    assert not store.prefix.startswith(f"{backend.prefix}:")
    store.close()
    backend.close()
    for prefix in ("headwater", "headwater:online"):
        with pytest.raises(ConfigError, match="overlaps the log's 'headwater'"):
            open_online_store(f"redis://127.0.0.1:1/0?prefix={prefix}", settings=settings)
    other_db = open_online_store("redis://127.0.0.1:1/1?prefix=headwater", settings=settings)
    other_db.close()


def test_destroying_the_online_store_leaves_the_log_on_the_same_prefix(
        connect: Connect) -> None:
    require_extra("redis", "redis")
    from headwater.log import Log, Schema
    from headwater.log.redis import RedisBackend

    store = connect()
    log = Log(RedisBackend(REDIS_URL, prefix=store.prefix))
    schema = Schema.of({"user": "string", "ts": "timestamp"}, key="user", event_time="ts")
    for topic in ("events", "meta", "user"):
        log.create_topic(topic, schema, partitions=2)
        log.append(topic, [{"user": f"u{i}", "ts": "2024-01-01T00:00:00Z"} for i in range(5)])
    with log.consumer("g", "events") as consumer:
        consumer.poll()
        consumer.commit()
    store.write(NS, [("u1", {"a": b"1"}), ("u:2", {"b": b"2"})], version=3,
                meta={"m": b"x"})
    store.write("item", [("i1", {"c": b"3"})])
    before = sorted(store._client.scan_iter(match=f"{store.prefix}:*"))
    store.destroy()
    after = sorted(store._client.scan_iter(match=f"{store.prefix}:*"))
    gone = set(before) - set(after)
    assert gone == {f"{store.prefix}:{k}".encode()
                    for k in (f"{NS}:e:u1", f"{NS}:e:u:2", f"{NS}:meta", "item:e:i1")}
    assert store.read(NS, "u1") == {}
    assert store.version(NS) is None
    assert [sum(log.end_offsets(t)) for t in ("events", "meta", "user")] == [5, 5, 5]
    assert log.committed("g", "events") == {0: log.end_offsets("events")[0],
                                            1: log.end_offsets("events")[1]}
    assert sum(f.batch.num_rows for f in log.replay("user")) == 5
    log.backend.destroy()  # type: ignore[attr-defined]
    log.close()


def test_destroying_the_log_leaves_the_online_store_on_default_shaped_prefixes(
        connect: Connect) -> None:
    require_extra("redis", "redis")
    from headwater.log import Log, Schema
    from headwater.log.redis import RedisBackend

    base = f"hwtest-{uuid.uuid4().hex[:12]}"
    store = connect(prefix=f"{base}-online")  # as headwater / headwater-online
    log = Log(RedisBackend(REDIS_URL, prefix=base))
    log.create_topic("events", Schema.of({"ts": "timestamp"}, event_time="ts"))
    log.append("events", [{"ts": "2024-01-01T00:00:00Z"}])
    store.write(NS, [("u1", {"a": b"1"})], version=1)
    log.backend.destroy()  # type: ignore[attr-defined]
    log.close()
    assert store.read(NS, "u1") == {"a": b"1"}
    assert store.version(NS) == 1
