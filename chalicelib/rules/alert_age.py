"""Is an alert fresh enough to trade on? Judged from TradingView's own clocks, with `now` passed in.

TradingView fills two time placeholders (its support article "How to use a variable value in
alert"): `{{timenow}}` is when the alert fired, to the second; `{{time}}` is the time of the
*bar*, i.e. its open (Pine's `time`). An alert on a 1-hour bar's close therefore fires an hour
after its `{{time}}`. So an alert's age is judged by `timenow` when it has one; with only `time`,
the bar's length (from `{{interval}}`) is allowed on top. An alert with neither is not judged.

`{{interval}}` is Pine's timeframe string: minutes as a bare number (`1`, `5`, `60`, `240`),
seconds with `S` (`30S`), days, weeks and months with `D`, `W`, `M` and an optional count
(`D`, `1D`, `W`, `1W`, `M`, `3M`). Tick and range charts (`100T`, `1R`) have no bar length.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from chalicelib.domain import Alert, Verdict

_INTERVAL = re.compile(r"(\d{1,5})?([SHDWM]?)")
_UNIT = {
    "S": timedelta(seconds=1),
    "": timedelta(minutes=1),
    "H": timedelta(hours=1),
    "D": timedelta(days=1),
    "W": timedelta(weeks=1),
    "M": timedelta(days=31),  # the longest month: never refuse a fresh monthly alert
}
CHECK = "alert_age"


def bar_length(interval: str | None) -> timedelta | None:
    """The length of one bar of a TradingView `{{interval}}`, or None when it has none."""
    match = _INTERVAL.fullmatch((interval or "").strip().upper())
    if not interval or not match or (match.group(1) is None and match.group(2) == ""):
        return None
    count = int(match.group(1) or 1)
    return count * _UNIT[match.group(2)] if count > 0 else None


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.0f} s"


def check_alert_age(
    alert: Alert, now: datetime, *, max_age: timedelta, clock_skew: timedelta
) -> Verdict:
    """Allow, or deny as stale or from the future. `max_age` of zero turns the check off."""
    if max_age <= timedelta(0):
        return Verdict.allow(CHECK)
    for field in ("timenow", "time"):
        stamp = getattr(alert, field)
        if stamp is not None and stamp > now + clock_skew:
            return Verdict.deny(
                f"{field} {stamp.isoformat()} is {_seconds(stamp - now)} in the future "
                f"(more than the {_seconds(clock_skew)} allowed for clock differences)",
                check=CHECK,
            )
    if alert.timenow is not None:
        age = now - alert.timenow
        if age > max_age:
            return Verdict.deny(
                f"the alert fired {_seconds(age)} ago (timenow {alert.timenow.isoformat()}); "
                f"alerts older than {_seconds(max_age)} are not traded",
                check=CHECK,
            )
        return Verdict.allow(CHECK)
    if alert.time is None:
        return Verdict.allow(CHECK)
    bar = bar_length(alert.interval)
    age = now - alert.time
    if age > max_age + (bar or timedelta(0)):
        if bar is not None:
            allowance = f"{_seconds(max_age)} after its bar of {alert.interval!r} closed"
        elif alert.interval is None:
            allowance = f"{_seconds(max_age)} after the bar time (no interval given)"
        else:
            allowance = (
                f"{_seconds(max_age)} after the bar time "
                f"(interval {alert.interval!r} has no bar length)"
            )
        return Verdict.deny(
            f"the alert's bar opened {_seconds(age)} ago (time {alert.time.isoformat()}); "
            f"alerts are traded up to {allowance}; send timenow for the firing time",
            check=CHECK,
        )
    return Verdict.allow(CHECK)
