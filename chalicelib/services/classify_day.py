"""Classify today's session (rules/day_type.py) from the reference symbol's bars and store
the answer the gate reads: on a schedule at a New York time, and on demand.

The schedule (app.py `classify_day`) fires every minute of the US session hours in UTC
and acts once per day, at the first tick at or after the configured New York time: one
cron cannot say "10:00 New York" across daylight-saving changes, and a minute cron that
checks the New York clock is right in both (and for any configured time) at the cost of
one state read a minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from chalicelib.domain import Bar, DayClassification
from chalicelib.ports import DayClassifications, DayTypeState, MarketData
from chalicelib.rules import market_calendar
from chalicelib.rules.day_type import DEFAULT_THRESHOLDS, DayTypeThresholds, classify_day

DEFAULT_AT = time(10, 0)
LOOKBACK_SESSIONS = 14  # the daily ATR's period, and enough days for the usual volume
TIMEFRAME = "1Min"


class NotATradingDay(ValueError):
    """The NYSE is shut on that day: there is no session to classify."""


def parse_new_york_time(text: str) -> time:
    """`HH:MM` (New York wall clock) → time; ValueError with the expected shape."""
    try:
        hours, minutes = text.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a New York time like 10:00 (HH:MM)") from exc


def scheduled_time(day: date, at: time = DEFAULT_AT) -> datetime:
    """When `at` New York time is on `day`, in UTC (daylight-saving aware)."""
    noon = datetime.combine(day, time(12)).replace(tzinfo=UTC)
    offset = market_calendar.eastern_utc_offset(noon)
    return (datetime.combine(day, at) - offset).replace(tzinfo=UTC)


def prior_trading_days(day: date, count: int) -> list[date]:
    """The `count` NYSE trading days before `day`, oldest first."""
    days: list[date] = []
    probe = day
    while len(days) < count:
        probe -= timedelta(days=1)
        if market_calendar.is_trading_day(probe):
            days.append(probe)
    return list(reversed(days))


def split_sessions(bars: Sequence[Bar]) -> dict[date, list[Bar]]:
    """Bars by New York trading date (each session's bars in order)."""
    out: dict[date, list[Bar]] = {}
    for bar in sorted(bars, key=lambda b: b.time):
        out.setdefault(market_calendar.trading_date(bar.time), []).append(bar)
    return out


def classify_day_now(
    market: MarketData,
    state: DayTypeState,
    symbol: str,
    now: datetime,
    at: time = DEFAULT_AT,
    *,
    through_now: bool = False,
    lookback_sessions: int = LOOKBACK_SESSIONS,
    thresholds: DayTypeThresholds = DEFAULT_THRESHOLDS,
) -> DayClassification:
    """Classify today's session from `symbol`'s one-minute bars up to `at` New York time
    (up to `now` when that is earlier, or when `through_now`), store it and return it.

    Raises NotATradingDay on a day the market is shut, DayTypeUnavailable (rules) with too
    few bars, and MarketDataUnavailable when the source cannot answer; nothing is stored
    then, and yesterday's classification is never reused for today.
    """
    day = market_calendar.trading_date(now)
    bounds = market_calendar.session_bounds(day)
    if bounds is None:
        raise NotATradingDay(f"{day.isoformat()} is not an NYSE trading day")
    cutoff = now if through_now else min(now, scheduled_time(day, at))
    first = prior_trading_days(day, lookback_sessions)
    start_day = first[0] if first else day
    start_bounds = market_calendar.session_bounds(start_day)
    start = start_bounds[0] if start_bounds else bounds[0]
    bars = market.bars(symbol, TIMEFRAME, start, cutoff)
    sessions = split_sessions(bars)
    today = sessions.pop(day, [])
    prior = [sessions[d] for d in sorted(sessions) if d < day]
    classification = classify_day(symbol, today, prior, at=cutoff, thresholds=thresholds)
    classification = classification.model_copy(
        update={"reason": f"{classification.reason} (source {market.name})"}
    )
    state.save_day_classification(classification)
    return classification


def classification_due(
    state: DayTypeState, now: datetime, at: time = DEFAULT_AT
) -> tuple[bool, str]:
    """Whether the scheduled classification should run at `now`, and why (not)."""
    day = market_calendar.trading_date(now)
    bounds = market_calendar.session_bounds(day)
    if bounds is None:
        return False, f"{day.isoformat()} is not a trading day"
    due_at = scheduled_time(day, at)
    if now < due_at:
        return False, f"before {at.strftime('%H:%M')} New York ({due_at.isoformat()})"
    if now >= bounds[1]:
        return False, "after the close"
    if state.day_classification(day) is not None:
        return False, f"{day.isoformat()} is already classified"
    return True, "due"


def scheduled_classification(
    market: MarketData | None,
    state: DayTypeState,
    symbol: str,
    now: datetime,
    at: time = DEFAULT_AT,
) -> dict[str, object]:
    """The schedule's tick: classify once a day at/after `at` New York time. A failed try
    (no source, too few bars, the source down) stores nothing, so the next minute retries
    until the close."""
    from chalicelib.ports import MarketDataUnavailable
    from chalicelib.rules.day_type import DayTypeUnavailable

    due, why = classification_due(state, now, at)
    if not due:
        return {"classified": False, "reason": why}
    if market is None:
        return {"classified": False, "reason": "no market data source is configured"}
    try:
        result = classify_day_now(market, state, symbol, now, at)
    except (MarketDataUnavailable, DayTypeUnavailable, NotATradingDay) as exc:
        return {"classified": False, "reason": str(exc)}
    return {
        "classified": True,
        "day": result.day.isoformat(),
        "day_type": result.day_type.value,
        "confidence": result.confidence,
        "reason": result.reason,
    }


def todays_classification(state: DayClassifications, now: datetime) -> DayClassification | None:
    """The stored classification of `now`'s New York trading day (the context's day slot:
    `ContextSources(day=lambda alert, now: todays_classification(state, now))`)."""
    return state.day_classification(market_calendar.trading_date(now))
