"""Shared builders for the score tests: an alert, a market snapshot, a decision context."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib.domain import (
    Account,
    Alert,
    Bar,
    DayClassification,
    DayType,
    DecisionContext,
    FlowSummary,
    MarketSnapshot,
    Verdict,
)

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def bars(start: float, end: float, n: int = 30) -> tuple[Bar, ...]:
    step = (end - start) / (n - 1)
    out = []
    for i in range(n):
        price = start + step * i
        out.append(
            Bar(
                time=NOW - timedelta(minutes=n - i),
                open=price - step / 2,
                high=price + 0.1,
                low=price - 0.1,
                close=price,
                volume=10_000,
            )
        )
    return tuple(out)


def snapshot(
    *,
    start: float = 100.0,
    last: float = 103.0,
    vwap: float = 101.5,
    atr: float = 1.0,
    rvol: float | None = 1.8,
    confirmed: bool | None = True,
) -> MarketSnapshot:
    verdict = None
    if confirmed is not None:
        verdict = Verdict.allow("volume") if confirmed else Verdict.deny("thin", check="volume")
    return MarketSnapshot(
        symbol="AAPL",
        source="files",
        as_of=NOW,
        last_price=last,
        bars=bars(start, last),
        atr=atr,
        vwap=vwap,
        relative_volume=rvol,
        volume_confirmation=verdict,
    )


def day(kind: DayType = DayType.TREND_UP, confidence: float = 0.8) -> DayClassification:
    return DayClassification(
        day=date(2026, 3, 10), symbol="AAPL", day_type=kind, confidence=confidence
    )


def flow(agrees: bool | None = True) -> FlowSummary:
    return FlowSummary(
        symbol="AAPL",
        window_minutes=30,
        call_premium=2e6,
        put_premium=5e5,
        direction="bullish" if agrees else "bearish",
        agrees=agrees,
    )


def alert(action: str = "buy", comment: str | None = None, **extra) -> Alert:
    return Alert(ticker="NASDAQ:AAPL", action=action, price=103.0, comment=comment, **extra)


def context(market=None, day_=None, flow_=None) -> DecisionContext:
    return DecisionContext(
        now=NOW,
        account=Account(equity=100_000, cash=100_000, buying_power=200_000),
        market=market,
        day=day_,
        flow=flow_,
    )


@pytest.fixture
def full_context() -> DecisionContext:
    return context(snapshot(), day(), flow())
