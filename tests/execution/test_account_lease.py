"""The account lease: threads sharing one store queue in-process; separate stores meet only
at the store's lease (which test_invariants holds to its limits)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.memory_state import InMemoryStateStore
from chalicelib.services.account_lease import AccountBusy, account_lease

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)


class CountingStore(InMemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.tries = 0

    def acquire_account_lock(self, holder: str, now: datetime, ttl: timedelta) -> bool:
        self.tries += 1
        return super().acquire_account_lock(holder, now, ttl)


def test_a_neighbour_thread_waits_without_polling_the_store():
    store = CountingStore()
    inside, release = threading.Event(), threading.Event()

    def holder() -> None:
        with account_lease(store, "a", NOW, wait_s=5, ttl=TTL):
            inside.set()
            release.wait(5)

    first = threading.Thread(target=holder)
    first.start()
    inside.wait(5)
    second_done = threading.Event()

    def neighbour() -> None:
        with account_lease(store, "b", NOW, wait_s=5, ttl=TTL):
            second_done.set()

    second = threading.Thread(target=neighbour)
    second.start()
    assert not second_done.wait(0.3)  # it waits while the first holds the lease ...
    assert store.tries == 1  # ... without asking the store again
    release.set()
    first.join(5)
    second.join(5)
    assert second_done.is_set()
    assert store.tries == 2


def test_a_lease_held_elsewhere_is_polled_until_it_is_free_or_the_wait_ends():
    store = CountingStore()
    assert store.acquire_account_lock("another-lambda", NOW, TTL)
    with pytest.raises(AccountBusy), account_lease(store, "a", NOW, wait_s=0.2, ttl=TTL):
        pass
    assert store.tries > 2  # polled, with backoff
    store.release_account_lock("another-lambda")
    with account_lease(store, "a", NOW, wait_s=0.2, ttl=TTL):
        pass


def test_in_a_replay_a_lease_lasts_its_ttl_in_wall_time():
    """A replay runs the stack's clock fast (here 60×); the lease's TTL is wall time, so a
    decision that takes a few wall seconds keeps the account it leased."""
    from chalicelib import clock
    from chalicelib.adapters.replay import ReplayClock

    start = datetime(2025, 1, 13, 14, 30, tzinfo=UTC)
    clock.install(ReplayClock(start, 60.0))
    try:
        state = InMemoryStateStore()
        with account_lease(state, "alert-A", start, wait_s=0, ttl=timedelta(seconds=30)):
            ten_wall_seconds_later = start + timedelta(minutes=10)  # 600 market seconds
            assert state.account_lock_held(ten_wall_seconds_later)
            assert not state.acquire_account_lock(
                "alert-B", ten_wall_seconds_later, timedelta(seconds=30)
            )
            assert not state.account_lock_held(start + timedelta(minutes=31))  # 31 wall s
    finally:
        clock.install(None)
