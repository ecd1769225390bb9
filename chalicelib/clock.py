"""The stack's clock: `chalicelib.domain.utc_now` reads whatever clock is installed here.

Live, it is the wall clock. A market replay (`FLOWTRADER_DATA_SOURCE=replay`) installs a
`ReplayClock` (adapters/replay.py) so the webhook's alert-age check, cooldowns, the paper
broker's fill times and the price poll all live in the replayed market's time. The local
stack hands the clock to each of its processes as `FLOWTRADER_CLOCK` (`clock_spec`), so the
app and the worker agree on what time it is.

The rules never read a clock; this module is for the shell only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime

CLOCK_ENV = "FLOWTRADER_CLOCK"

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


_lock = threading.Lock()
_clock: Clock | None = None


def now() -> datetime:
    """The current time (UTC) by the installed clock; the first call installs the one
    `FLOWTRADER_CLOCK` names (the wall clock when unset)."""
    return _installed()()


def rate() -> float:
    """Seconds of the stack's clock per wall second: 1 live, the speed in a replay. Spans
    that must last in wall time (a lease's TTL, a wait) are scaled by it when they are
    measured on the stack's clock."""
    return float(getattr(_installed(), "speed", 1.0))


def _installed() -> Clock:
    """The installed clock, installing the one `FLOWTRADER_CLOCK` names on first use."""
    clock = _clock
    return clock if clock is not None else install(from_env())


def current() -> Clock | None:
    """The installed clock (None before the first reading)."""
    return _clock


def install(clock: Clock | None) -> Clock:
    """Make `clock` the stack's clock (None: the wall clock again); returns it."""
    global _clock
    with _lock:
        _clock = clock or wall_clock
        return _clock


def from_env(environ: dict[str, str] | None = None) -> Clock:
    """The clock `FLOWTRADER_CLOCK` describes: unset or `wall`, the wall clock;
    `replay:<market start epoch s>:<speed>:<wall start epoch s>`, a replay clock."""
    spec = (os.environ if environ is None else environ).get(CLOCK_ENV, "").strip()
    if not spec or spec == "wall":
        return wall_clock
    kind, _, rest = spec.partition(":")
    if kind != "replay":
        raise ValueError(f"{CLOCK_ENV}={spec!r}: expected wall or replay:<start>:<speed>:<wall>")
    from chalicelib.adapters.replay import ReplayClock

    return ReplayClock.from_spec(rest)
