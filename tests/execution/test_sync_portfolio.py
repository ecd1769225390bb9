"""sync_portfolio: the broker is the truth — fills booked once as trades, order and leg
statuses refreshed, positions replaced, drift flagged and never acted on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.memory_state import InMemoryStateStore
from chalicelib.domain import ExitReason, OrderIntent, OrderType, Side
from chalicelib.rules.market_calendar import trading_date
from chalicelib.services.account_lease import AccountBusy
from chalicelib.services.sync_portfolio import in_sync_window, scheduled_sync, sync_portfolio
from tests.execution.fake_broker import FakeBroker

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 New York


class Notes:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def notify(self, subject: str, message: str) -> None:
        self.sent.append(message)


def bracket_long(broker: FakeBroker, qty: float = 10, price: float = 100.0):
    intent = OrderIntent(
        client_order_id="ft-A1-open",
        alert_id="A1",
        symbol="AAPL",
        side=Side.BUY,
        qty=qty,
        reference_price=price,
        stop_loss=95.0,
        take_profit=110.0,
    )
    return broker.place_order(intent)


@pytest.fixture
def world():
    broker, state, notes = FakeBroker(), InMemoryStateStore(), Notes()
    entry = bracket_long(broker)
    state.record_order("A1", entry, NOW)
    first = sync_portfolio(broker, state, NOW, notifier=notes)
    assert first.baseline  # a fresh table takes the broker's word; nothing is replayed
    assert first.trades == ()
    return broker, state, notes


def test_a_stop_filled_at_the_broker_is_booked_once_named_and_shown(world):
    broker, state, notes = world
    stop = next(o for o in broker.working_exits("AAPL") if o.order_type is OrderType.STOP)
    broker.fill(stop.broker_order_id, 94.0)

    report = sync_portfolio(broker, state, NOW, notifier=notes)

    (trade,) = report.trades
    assert (trade.exit_reason, trade.qty, trade.alert_id) == (ExitReason.STOP_LOSS, 10, "A1")
    assert trade.pnl_usd == pytest.approx(-60.0)
    assert state.realized_pl(trading_date(NOW)) == pytest.approx(-60.0)
    assert any(m.startswith("Stop-loss hit AAPL: −$60.00 (−6.0 %)") for m in notes.sent)
    assert state.positions() == []
    entry = next(o for o in state.orders() if o["client_order_id"] == "ft-A1-open")
    assert {leg["order_type"]: leg["status"] for leg in entry["legs"]} == {
        "stop": "filled",
        "limit": "canceled",
    }
    assert [e["event"] for e in state.journal("A1")] == ["trade"]

    again = sync_portfolio(broker, state, NOW, notifier=notes)
    assert again.trades == ()
    assert state.realized_pl(trading_date(NOW)) == pytest.approx(-60.0)
    assert len(state.trades(trading_date(NOW), trading_date(NOW))) == 1


def test_a_position_changed_outside_flowtrader_is_drift_flagged_not_traded(world):
    broker, state, notes = world
    broker.set_position("AAPL", 4, 100.0)  # the trader sold 6 in the broker's own app
    placed = broker.place_calls

    report = sync_portfolio(broker, state, NOW, notifier=notes)

    (drift,) = report.drift
    assert (drift.symbol, drift.expected_qty, drift.broker_qty) == ("AAPL", 10, 4)
    assert any(
        m.startswith("Drift AAPL: broker holds 4, flowtrader expected 10") for m in notes.sent
    )
    assert [e["event"] for e in state.journal("portfolio-2026-12-01")] == ["drift"]
    assert broker.place_calls == placed  # never acted on
    assert [(p.symbol, p.qty) for p in state.positions()] == [("AAPL", 4)]  # the broker wins


def test_the_schedule_skips_outside_the_session_and_runs_inside_it():
    broker, state = FakeBroker(), InMemoryStateStore()
    night = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert not in_sync_window(night)
    assert scheduled_sync(broker, state, night) == {"skipped": "outside the trading session"}
    assert in_sync_window(NOW)
    assert scheduled_sync(broker, state, NOW, settle_s=0)["baseline"] is True
    assert scheduled_sync(broker, state, night, force=True, settle_s=0)["baseline"] is False


class MarkedBroker(FakeBroker):
    """The fake with marks on its positions (a moving market)."""

    mark = 101.0

    def get_positions(self):
        return [p.model_copy(update={"market_price": self.mark}) for p in super().get_positions()]


def test_a_sweep_with_nothing_to_book_needs_no_account_lease_and_still_moves_the_marks():
    """The schedule's sweep only takes the lease when it books: a decision holding the
    account never waits for a sweep that has nothing to do."""
    broker, state = MarkedBroker(), InMemoryStateStore()
    state.record_order("A1", bracket_long(broker), NOW)
    assert scheduled_sync(broker, state, NOW, settle_s=0)["leased"] is True  # the baseline
    assert state.acquire_account_lock("alert-B", NOW, timedelta(minutes=5))  # a decision

    broker.mark = 104.0
    quiet = scheduled_sync(broker, state, NOW, wait_s=0, settle_s=0)
    assert quiet["leased"] is False
    assert quiet["trades"] == []
    assert state.positions()[0].market_price == 104.0

    stop = next(o for o in broker.working_exits("AAPL") if o.order_type is OrderType.STOP)
    broker.fill(stop.broker_order_id, 94.0)  # now there is a fill to book: it waits its turn
    with pytest.raises(AccountBusy):
        scheduled_sync(broker, state, NOW, wait_s=0, settle_s=0)
    assert state.positions()[0].qty == 10  # nothing booked without the lease
    state.release_account_lock("alert-B")
    booked = scheduled_sync(broker, state, NOW, wait_s=0, settle_s=0)
    assert booked["leased"] is True
    assert len(booked["trades"]) == 1
    assert state.positions() == []


class InFlightBroker(MarkedBroker):
    """Shows a decision's fill before its worker booked it: the first read has 5 more."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_portfolio(self):
        self.reads += 1
        account, positions = super().get_portfolio()
        if self.reads == 1:  # the quiet pass's first look, mid-decision
            positions = [p.model_copy(update={"qty": p.qty + 5}) for p in positions]
        return account, positions


def test_a_quantity_a_decision_is_still_booking_is_looked_at_again_before_taking_the_lease():
    broker, state = InFlightBroker(), InMemoryStateStore()
    state.record_order("A1", bracket_long(broker), NOW)
    scheduled_sync(broker, state, NOW, settle_s=0)  # the baseline (first read)
    assert state.acquire_account_lock("alert-B", NOW, timedelta(minutes=5))  # the decision

    result = scheduled_sync(broker, state, NOW, wait_s=0, settle_s=0.01)

    assert result["leased"] is False  # gone on the second look: no lease, no drift
    assert result["drift"] == []
    assert state.positions()[0].qty == 10
