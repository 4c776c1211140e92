"""The lease contract: one holder per model, on every backend (memory, SQLite,
PostgreSQL), with expiry, renewal and takeover; writes made under a lost lease are
refused in the same transaction, so a stale trainer never forks the lineage."""

from __future__ import annotations

import threading

import pytest

from headwater.errors import FencedError, LeaseHeldError, ValidationError
from headwater.registry import Lineage, ModelRegistry
from headwater.time import ManualClock
from tests.registry.conftest import MakeArtifact
from tests.registry.harness import Harness

SECOND = 1_000_000


def test_a_lease_has_one_holder_until_it_expires(registry: ModelRegistry,
                                                 clock: ManualClock) -> None:
    first = registry.acquire_lease("churn", "host-a:17", ttl_us=30 * SECOND)
    assert (first.holder, first.epoch) == ("host-a:17", 1)
    assert registry.lease("churn") == first
    with pytest.raises(LeaseHeldError) as refused:
        registry.acquire_lease("churn", "host-b:4", ttl_us=30 * SECOND)
    assert refused.value.holder == "host-a:17"
    assert refused.value.expires_at == first.expires_at
    assert "host-a:17" in str(refused.value)
    again = registry.acquire_lease("churn", "host-a:17", ttl_us=60 * SECOND)
    assert again.epoch == 1  # the holder again: the same lease, extended
    assert again.expires_at == clock.now_us() + 60 * SECOND
    clock.advance(60 * SECOND)
    taken = registry.acquire_lease("churn", "host-b:4", ttl_us=30 * SECOND)
    assert (taken.holder, taken.epoch) == ("host-b:4", 2)
    # another model's lease is another matter
    assert registry.acquire_lease("fraud", "host-a:17", ttl_us=SECOND).epoch == 1


def test_renewal_keeps_it_and_a_lease_taken_over_cannot_be_renewed(
        registry: ModelRegistry, clock: ManualClock) -> None:
    lease = registry.acquire_lease("churn", "a", ttl_us=10 * SECOND)
    for _ in range(5):
        clock.advance(8 * SECOND)
        lease = registry.renew_lease(lease, ttl_us=10 * SECOND)
    with pytest.raises(LeaseHeldError):
        registry.acquire_lease("churn", "b", ttl_us=10 * SECOND)
    clock.advance(11 * SECOND)  # expired, but nobody took it: still renewable
    lease = registry.renew_lease(lease, ttl_us=10 * SECOND)
    clock.advance(11 * SECOND)
    registry.acquire_lease("churn", "b", ttl_us=10 * SECOND)
    with pytest.raises(FencedError, match="held by 'b' under epoch 2"):
        registry.renew_lease(lease, ttl_us=10 * SECOND)


def test_a_released_lease_is_free_at_once(registry: ModelRegistry) -> None:
    lease = registry.acquire_lease("churn", "a", ttl_us=3600 * SECOND)
    registry.release_lease(lease)
    assert registry.lease("churn") is None
    taken = registry.acquire_lease("churn", "b", ttl_us=SECOND)
    assert taken.epoch == 2
    registry.release_lease(lease)  # too late: nothing happens to b's lease
    assert registry.lease("churn") == taken


def test_writes_under_a_lost_lease_are_refused(registry: ModelRegistry, clock: ManualClock,
                                               make_artifact: MakeArtifact) -> None:
    mine = registry.acquire_lease("churn", "a", ttl_us=10 * SECOND)
    first = registry.register("churn", make_artifact("v1"), lease=mine)
    registry.promote("churn", first.version, actor="a", reason="first", lease=mine)
    clock.advance(20 * SECOND)  # a paused past its lease; b takes over
    theirs = registry.acquire_lease("churn", "b", ttl_us=10 * SECOND)
    with pytest.raises(FencedError):
        registry.register("churn", make_artifact("stale"), lease=mine,
                          lineage=Lineage(parent=first.version))
    second = registry.register("churn", make_artifact("v2"), lease=theirs,
                               lineage=Lineage(parent=first.version))
    with pytest.raises(FencedError):
        registry.promote("churn", second.version, actor="a", reason="stale", lease=mine)
    registry.promote("churn", second.version, actor="b", reason="next", lease=theirs)
    assert [v.version for v in registry.versions("churn")] == [1, 2]  # one chain
    assert registry.get("churn", "champion").version == 2
    with pytest.raises(ValidationError, match="lease"):
        registry.register("fraud", make_artifact("other"), lease=theirs)


def test_a_lease_needs_a_holder_and_a_duration(registry: ModelRegistry) -> None:
    with pytest.raises(ValidationError, match="holder"):
        registry.acquire_lease("churn", "", ttl_us=SECOND)
    with pytest.raises(ValidationError, match="ttl"):
        registry.acquire_lease("churn", "a", ttl_us=0)


def test_holders_racing_for_a_lease_get_one_winner(harness: Harness,
                                                   clock: ManualClock) -> None:
    """Several connections (threads standing for processes) acquire at once: exactly one
    holds the lease, the others are told who does."""
    backends = [harness.open() for _ in range(6)]
    won: list[str] = []
    held: list[str] = []
    start = threading.Barrier(len(backends))

    def race(k: int) -> None:
        start.wait()
        try:
            won.append(backends[k].acquire_lease("churn", f"p{k}", clock.now_us(),
                                                 10 * SECOND).holder)
        except LeaseHeldError as exc:
            held.append(exc.holder)

    threads = [threading.Thread(target=race, args=(k,)) for k in range(len(backends))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert held == [won[0]] * (len(backends) - 1)
