"""The account lease: one decision (or one portfolio sync) at a time per account.

The cooldown is claimed atomically, but position and exposure limits are checked against
the broker's positions: two workers deciding at once would each miss the other's order, and
a sync replaying fills while a worker places one would book against a moving snapshot.
Holding this lease (`AccountLock`, a conditional item with an expiry) from reading the
account to recording the result makes both safe; a crashed holder blocks only until `ttl`.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from chalicelib.ports import AccountLock

log = logging.getLogger(__name__)


class AccountBusy(Exception):
    """Another holder kept the account lease for longer than we were willing to wait."""


@contextmanager
def account_lease(
    lock: AccountLock, who: str, now: datetime, *, wait_s: float, ttl: timedelta
) -> Iterator[None]:
    """Hold the lease as `who` (made unique per call), waiting up to `wait_s` seconds.

    Waits with capped, jittered backoff; the holder's expiry is judged on `now` advanced by
    the time waited. `now` is the stack's clock, which a replay runs fast: the TTL and the
    wait are scaled by its rate, so a lease lasts `ttl` of wall time in a replay too (at 60×
    a 30 s lease would otherwise lapse after half a second, mid-decision).
    """
    from chalicelib import clock

    started = time.monotonic()
    speed = clock.rate()
    ttl = ttl * speed
    neighbours = _in_process(lock)
    if not neighbours.acquire(timeout=wait_s):
        raise AccountBusy(f"another alert held the account for over {wait_s:g} s")
    try:
        # Per call (duplicate deliveries queue too), and naming the process, so the local
        # stack can void the lease of a process that died holding it, and only that one.
        holder = f"{who}#{os.getpid()}.{uuid.uuid4().hex[:12]}"
        delay = 0.005
        while not lock.acquire_account_lock(
            holder, now + timedelta(seconds=(time.monotonic() - started) * speed), ttl
        ):
            if time.monotonic() - started > wait_s:
                raise AccountBusy(f"another alert held the account for over {wait_s:g} s")
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.05)  # a decision holds it ~0.1 s: poll often
        try:
            yield
        finally:
            try:
                lock.release_account_lock(holder)
            except Exception:  # the lease expires by itself after ttl
                log.warning("could not release the account lease for %s", who, exc_info=True)
    finally:
        neighbours.release()


_queues: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_queues_guard = threading.Lock()


def _in_process(lock: AccountLock) -> threading.Lock:
    """A thread lock per store object: threads sharing one store (the local stack's queue
    consumers) wait on it instead of polling the store's lease; separate stores (separate
    Lambdas, or the invariant tests' workers) still meet only at the store's lease."""
    with _queues_guard:
        found = _queues.get(lock)
        if found is None:
            found = _queues[lock] = threading.Lock()
        return found


def waited_for_a_holder(lock: AccountLock, now: datetime, wait_s: float) -> bool:
    """Look at the lease without taking it: True if someone held it, after waiting up to
    `wait_s` for it to be free; False if it was free. Expiry is judged as `account_lease`
    judges it: on `now` advanced by the time waited, at the stack clock's rate."""
    from chalicelib import clock

    started = time.monotonic()
    speed = clock.rate()

    def held() -> bool:
        waited = timedelta(seconds=(time.monotonic() - started) * speed)
        return lock.account_lock_held(now + waited)

    if not held():
        return False
    while time.monotonic() - started < wait_s and held():
        time.sleep(0.02)
    return True
