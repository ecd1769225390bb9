"""FlowAgreement (rules/checks.py): with the setting on, no entry against the flow."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.adapters.memory_state import InMemoryStateStore
from chalicelib.domain import Account, DecisionContext, FlowSummary, OrderIntent, Side
from chalicelib.rules.checks import FlowAgreement, Proposal

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
ACCOUNT = Account(equity=100_000, cash=100_000, buying_power=100_000)


def proposal(side: Side, direction: str | None, *, closes: bool = False) -> Proposal:
    flow = None
    if direction is not None:
        flow = FlowSummary(
            symbol="AAPL",
            window_minutes=30,
            bullish_premium=120_000,
            bearish_premium=60_000,
            direction=direction,
        )
    intent = OrderIntent(
        client_order_id="ft-a1-open",
        alert_id="a1",
        symbol="AAPL",
        side=side,
        qty=1,
        reference_price=190.0,
        closes_position=closes,
    )
    return Proposal(intent, ACCOUNT, context=DecisionContext(now=NOW, account=ACCOUNT, flow=flow))


def verdict(check: FlowAgreement, p: Proposal):
    return check(p, InMemoryStateStore(), NOW)


def test_off_by_default_allows_an_entry_against_the_flow():
    assert verdict(FlowAgreement(), proposal(Side.BUY, "bearish")).allowed


def test_a_long_against_bearish_flow_is_denied_with_the_figures():
    v = verdict(FlowAgreement(required=True), proposal(Side.BUY, "bearish"))
    assert not v.allowed
    assert v.check == "flow_agreement"
    assert v.reason == (
        "options flow disagrees: bearish in AAPL over the last 30 min (bullish 120,000 vs "
        "bearish 60,000 USD premium) against a long entry"
    )


def test_a_short_against_bullish_flow_is_denied():
    v = verdict(FlowAgreement(required=True), proposal(Side.SELL, "bullish"))
    assert not v.allowed
    assert v.reason.endswith("against a short entry")


@pytest.mark.parametrize(
    ("side", "direction"),
    [(Side.BUY, "bullish"), (Side.SELL, "bearish"), (Side.BUY, "neutral"), (Side.BUY, None)],
)
def test_agreeing_neutral_or_missing_flow_allows(side, direction):
    assert verdict(FlowAgreement(required=True), proposal(side, direction)).allowed


def test_a_close_is_never_held_by_the_flow():
    assert verdict(
        FlowAgreement(required=True), proposal(Side.SELL, "bullish", closes=True)
    ).allowed


def test_no_context_allows():
    p = proposal(Side.BUY, "bearish")
    bare = Proposal(p.intent, ACCOUNT)
    assert verdict(FlowAgreement(required=True), bare).allowed
