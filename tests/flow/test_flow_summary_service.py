"""flow_summary_for (services/flow.py): the three vendor calls through the real adapter and
the local UW server, summarised; and the one deadline that bounds them."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from chalicelib.adapters.unusual_whales import UnusualWhales
from chalicelib.domain import Side
from chalicelib.ports import FlowUnavailable
from chalicelib.services.flow import flow_summary_for
from tests.fakes.unusual_whales_server import FLOW_ALERTS
from tests.flow.conftest import NOW, TOKEN, alert_row, darkpool_row, make_client, tick_row


@pytest.fixture
def aapl(uw):
    """AAPL's last half hour: bullish call buying, a dark-pool print, two ticks."""
    uw.alerts = [
        alert_row(
            ticker="AAPL",
            option_chain="AAPL260320C00200000",
            type="call",
            total_premium="300000",
            total_ask_side_prem="250000",
            total_bid_side_prem="50000",
            has_sweep=True,
            created_at=NOW - timedelta(minutes=5),
        ),
        alert_row(
            ticker="AAPL",
            option_chain="AAPL260320P00180000",
            type="put",
            total_premium="100000",
            total_ask_side_prem="50000",
            total_bid_side_prem="50000",
            has_sweep=False,
            created_at=NOW - timedelta(minutes=20),
        ),
        alert_row(ticker="AAPL", created_at=NOW - timedelta(hours=3)),  # the vendor drops it
    ]
    uw.darkpool["AAPL"] = [
        darkpool_row(
            ticker="AAPL",
            price="190",
            size=1000,
            premium="190000",
            executed_at=NOW - timedelta(minutes=3),
        ),
        darkpool_row(
            ticker="AAPL",
            price="189",
            size=1000,
            premium="189000",
            executed_at=NOW - timedelta(minutes=90),
        ),
    ]
    uw.ticks["AAPL"] = [
        tick_row(
            net_call_premium="40000", net_put_premium="-10000", tape_time=NOW - timedelta(minutes=2)
        ),
    ]
    return uw


def test_the_summary_of_a_bullish_half_hour_agrees_with_a_long(aapl, clock):
    s = flow_summary_for("AAPL", Side.BUY, make_client(aapl, clock), NOW, window_minutes=30)

    assert (s.symbol, s.source, s.window_minutes, s.print_count) == (
        "AAPL",
        "unusual_whales",
        30,
        2,
    )
    assert (s.call_premium, s.put_premium) == (300_000, 100_000)
    assert (s.bullish_premium, s.bearish_premium) == (300_000, 100_000)  # 250k+50k / 50k+50k
    assert (s.direction, s.agrees, s.sweep_count) == ("bullish", True, 1)
    assert s.darkpool_notional == 190_000
    # 189k printed from 13:30:30 to the window start 14:30:30: two 30-minute windows.
    assert s.darkpool_avg_notional == 94_500
    assert s.net_tick_premium == 50_000
    assert "gaps" not in s.details
    sent = aapl.calls(FLOW_ALERTS)[0]["query"]
    # The window's start in whole minutes, so concurrent alerts share one cached answer.
    assert sent["newer_than"] == str(int((NOW - timedelta(minutes=30, seconds=30)).timestamp()))
    assert sent["ticker_symbol"] == "AAPL"


def test_a_short_against_that_flow_disagrees(aapl, clock):
    s = flow_summary_for("AAPL", Side.SELL, make_client(aapl, clock), NOW, window_minutes=30)
    assert s.agrees is False


def test_a_failing_darkpool_leaves_a_gap_not_an_error(aapl, clock):
    aapl.inject("/api/darkpool/", status=500, body="Something went wrong", times=10)

    s = flow_summary_for("AAPL", Side.BUY, make_client(aapl, clock), NOW, window_minutes=30)

    assert s.direction == "bullish"
    assert s.darkpool_notional == 0
    assert "server error 500" in s.details["gaps"]["darkpool"]


def test_failing_flow_alerts_are_flow_unavailable(aapl, clock):
    aapl.inject(FLOW_ALERTS, status=401, body='{"msg": "Unauthorized"}', times=1)

    with pytest.raises(FlowUnavailable, match="401"):
        flow_summary_for("AAPL", Side.BUY, make_client(aapl, clock), NOW, window_minutes=30)


def test_a_slow_vendor_raises_within_the_timeout(aapl):
    aapl.inject(FLOW_ALERTS, status=200, body='{"data": []}', delay_s=3.0, times=5)
    source = UnusualWhales(TOKEN, base_url=aapl.url, timeout_s=5.0)

    with pytest.raises(FlowUnavailable, match=r"flow alerts: no answer within 0\.3 s"):
        flow_summary_for("AAPL", Side.BUY, source, NOW, window_minutes=30, timeout_s=0.3)


class HangingSource:
    """A source whose calls never return until released: the service must not wait."""

    name = "hanging"
    timeout_s = 0.2

    def __init__(self) -> None:
        self.release = threading.Event()

    def flow_alerts(self, *args, **kwargs):
        self.release.wait(10)
        return []

    def darkpool(self, *args, **kwargs):
        self.release.wait(10)
        return []

    def net_prem_ticks(self, *args, **kwargs):
        self.release.wait(10)
        return []

    def market_tide(self, *args, **kwargs):
        return []


def test_a_hanging_source_is_abandoned_at_its_timeout():
    source = HangingSource()
    try:
        with pytest.raises(FlowUnavailable, match=r"no answer within 0\.2 s"):
            flow_summary_for("AAPL", Side.BUY, source, NOW, window_minutes=30)
    finally:
        source.release.set()


def test_the_decision_context_gets_the_flow_slot(aws, aapl, monkeypatch):
    # The seam the worker uses: ContextSources(flow=bootstrap.flow_for_alerts(container)).
    from chalicelib import bootstrap
    from chalicelib.domain import Alert
    from chalicelib.services.context import ContextSources, gather_context

    monkeypatch.setenv("FLOWTRADER_UNUSUAL_WHALES_API_KEY", TOKEN)
    monkeypatch.setenv("FLOWTRADER_UW_BASE_URL", aapl.url)
    monkeypatch.setenv("FLOWTRADER_UW_TIMEOUT_S", "20")  # a loaded test machine is slow
    flow = bootstrap.flow_for_alerts(bootstrap.Container())
    alert = Alert(ticker="NASDAQ:AAPL", action="buy", price=190.0)

    view = gather_context(alert, ContextSources(flow=flow, deadline_s=30), NOW)

    assert view.flow is not None
    assert (view.flow.symbol, view.flow.direction, view.flow.agrees) == ("AAPL", "bullish", True)
    assert "flow" not in view.gaps
    assert view.as_record()["flow"]["bullish_premium"] == 300_000


def test_a_slow_vendor_is_a_gap_in_the_decision_context(aws, aapl, monkeypatch):
    from chalicelib import bootstrap
    from chalicelib.domain import Alert
    from chalicelib.services.context import ContextSources, gather_context

    aapl.inject(FLOW_ALERTS, status=200, body='{"data": []}', delay_s=3.0, times=5)
    monkeypatch.setenv("FLOWTRADER_UNUSUAL_WHALES_API_KEY", TOKEN)
    monkeypatch.setenv("FLOWTRADER_UW_BASE_URL", aapl.url)
    monkeypatch.setenv("FLOWTRADER_UW_TIMEOUT_S", "0.3")
    flow = bootstrap.flow_for_alerts(bootstrap.Container())
    alert = Alert(ticker="AAPL", action="buy", price=190.0)

    view = gather_context(alert, ContextSources(flow=flow, deadline_s=1.5), NOW)

    assert view.flow is None
    # Whichever gives up first (the adapter's budget, the service's wait, the context's
    # deadline on a loaded machine) says so; the decision goes on without flow.
    assert view.gaps["flow"].startswith(("failed: FlowUnavailable:", "timed out after 1.5 s"))


def test_without_a_token_there_is_no_flow_slot(aws):
    from chalicelib import bootstrap

    assert bootstrap.flow_for_alerts(bootstrap.Container()) is None
