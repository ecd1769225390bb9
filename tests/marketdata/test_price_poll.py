"""The price poll feeds the market to the paper broker between alerts: the paper broker and
the state table on moto's server over HTTP, the market a replay of real AMZN bars
(2025-01-13) at a clock the test moves."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from chalicelib import bootstrap, clock
from chalicelib.adapters.files_market_data import FilesMarketData
from chalicelib.adapters.price_poll_marks import DynamoPollMarks
from chalicelib.adapters.replay import ReplayClock, ReplayMarketData
from chalicelib.domain import ExitReason, OrderIntent, OrderStatus, OrderType, Side
from chalicelib.services.price_poll import poll_prices
from chalicelib.services.sync_portfolio import sync_portfolio

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "backtest" / "data" / "AMZN_1min_2025-01-13.csv"


def at(hh: int, mm: int) -> datetime:
    """New York wall time on 2025-01-13 (UTC−5) as UTC."""
    return datetime(2025, 1, 13, hh + 5, mm, tzinfo=UTC)


class Wall:
    def __init__(self) -> None:
        self.at = 1_000.0

    def __call__(self) -> float:
        return self.at


class Inbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.events: list[str] = []

    def notify(self, subject: str, message: str, *, event: str = "info") -> None:
        self.sent.append((subject, message))
        self.events.append(event)


class Market:
    """The replayed market at a moment the test chooses, and the stack's clock with it."""

    def __init__(self, start: datetime) -> None:
        self.wall = Wall()
        self.clock = ReplayClock(start, 60.0, wall=self.wall)  # 1 wall second = 1 minute
        clock.install(self.clock)
        self.data = ReplayMarketData(FilesMarketData(SAMPLE), self.clock)

    def go_to(self, moment: datetime) -> None:
        self.wall.at += (moment - self.clock()).total_seconds() / 60.0

    def now(self) -> datetime:
        return self.clock()


@pytest.fixture
def world(aws):
    c = bootstrap.container()
    market = Market(at(9, 36))
    marks = DynamoPollMarks(c.dynamodb_client, c.settings.state_table)
    yield c, market, marks
    clock.install(None)


def buy(c, market: Market, alert_id: str, **intent) -> None:
    """What the worker does for a buy alert: the alert's price reaches the paper broker,
    the order is placed and recorded, and its fill booked."""
    now = market.now()
    price = market.data.latest_price("AMZN")
    c.broker.on_price("AMZN", price, now)
    order = c.broker.place_order(
        OrderIntent(
            client_order_id=f"ft-{alert_id}-open",
            alert_id=alert_id,
            symbol="AMZN",
            side=Side.BUY,
            qty=10,
            reference_price=price,
            **intent,
        )
    )
    c.state_store.record_order(alert_id, order, now)
    sync_portfolio(c.broker, c.state_store, now, changed=[(alert_id, order)])


def test_a_stop_fires_when_the_market_gets_there_with_no_alert(world):
    c, market, marks = world
    buy(c, market, "A1", stop_loss=216.60, take_profit=220.0)  # at 09:35's close, 217.22
    assert c.state_store.positions()[0].qty == 10
    inbox = Inbox()

    market.go_to(at(9, 45))  # 09:40's bar went down to 216.53
    result = poll_prices(
        c.broker, market.data, c.state_store, market.now(), marks=marks, notifier=inbox
    )

    assert result["symbols"] == ["AMZN"]
    assert result["bars_fed"] == 9  # 09:36 … 09:44
    assert result["filled"] == ["ft-A1-open#sl"]
    assert result["trades"] == 1
    (trade,) = c.state_store.trades(at(0, 0).date(), at(0, 0).date())
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert trade.alert_id == "A1"
    assert trade.exit_time == at(9, 41)  # the end of the bar that crossed it
    assert trade.exit_price <= 216.60  # a stop fills at or below its price (slippage)
    assert c.state_store.positions() == []
    assert len(inbox.sent) == 1
    assert inbox.sent[0][1].startswith("Stop-loss hit AMZN")
    assert inbox.events == ["stopped_out"]
    assert f"exit {trade.exit_price:.2f}" in inbox.sent[0][1]
    target = c.broker.get_order_by_client_id("ft-A1-open#tp")
    assert target.status is OrderStatus.CANCELED


def test_a_poll_feeds_each_bar_once_and_books_once(world):
    c, market, marks = world
    buy(c, market, "A2", stop_loss=216.60, take_profit=220.0)
    market.go_to(at(9, 45))
    first = poll_prices(c.broker, market.data, c.state_store, market.now(), marks=marks)

    again = poll_prices(c.broker, market.data, c.state_store, market.now(), marks=marks)

    assert first["trades"] == 1
    assert again["symbols"] == []  # flat, nothing working: nothing to watch
    assert len(c.state_store.trades(at(0, 0).date(), at(0, 0).date())) == 1


def test_no_bar_from_before_the_order_is_fed_to_it(world):
    c, market, marks = world
    market.go_to(at(9, 43))
    # 09:41 and 09:42 went down to 216.47: below this stop, but before the order existed.
    buy(c, market, "B1", stop_loss=216.50, take_profit=220.0)

    market.go_to(at(10, 0))
    result = poll_prices(c.broker, market.data, c.state_store, market.now(), marks=marks)

    assert result["bars_fed"] == 17  # 09:43 … 09:59, every one above 216.50
    assert result["filled"] == []
    assert c.state_store.positions()[0].qty == 10
    assert marks.fed_until("AMZN") == at(10, 0)


def test_a_resting_limit_fills_when_a_bars_low_reaches_it(world):
    c, market, marks = world
    buy(c, market, "L1", order_type=OrderType.LIMIT, limit_price=216.80)  # 217.22 now
    assert c.broker.get_order_by_client_id("ft-L1-open").status is not OrderStatus.FILLED

    market.go_to(at(9, 38))  # 09:37's low: 216.76
    result = poll_prices(c.broker, market.data, c.state_store, market.now(), marks=marks)

    assert result["filled"] == ["ft-L1-open"]
    order = c.broker.get_order_by_client_id("ft-L1-open")
    assert order.filled_avg_price == 216.80
    assert c.state_store.positions()[0].qty == 10


def test_a_symbol_the_source_cannot_serve_is_skipped_and_said(world):
    c, market, marks = world
    c.broker.on_price("MSFT", 400.0, market.now())
    c.broker.place_order(
        OrderIntent(
            client_order_id="ft-M1-open",
            alert_id="M1",
            symbol="MSFT",
            side=Side.BUY,
            qty=1,
            order_type=OrderType.LIMIT,
            limit_price=390.0,
        )
    )
    buy(c, market, "A3", stop_loss=216.60, take_profit=220.0)
    market.go_to(at(9, 45))

    result = poll_prices(c.broker, market.data, c.state_store, market.now(), marks=marks)

    assert result["errors"] == {"MSFT": "the replay plays AMZN, not MSFT"}
    assert result["filled"] == ["ft-A3-open#sl"]


def test_the_schedule_skips_a_broker_with_its_own_market_outside_the_session_and_no_source(
    world,
):
    from chalicelib.services.price_poll import scheduled_poll
    from tests.fakes.broker import FakeBroker

    c, market, marks = world

    def no_source():
        raise ValueError("the files data source needs FLOWTRADER_DATA_FILE (a CSV/Parquet)")

    own_market = scheduled_poll(
        FakeBroker(), lambda: market.data, c.state_store, market.now(), marks=marks
    )
    assert own_market == {"skipped": "fake works its orders against its own market"}
    saturday = datetime(2025, 1, 18, 15, 0, tzinfo=UTC)
    closed = scheduled_poll(c.broker, lambda: market.data, c.state_store, saturday, marks=marks)
    assert closed == {"skipped": "outside the trading session"}
    unbuilt = scheduled_poll(c.broker, no_source, c.state_store, market.now(), marks=marks)
    assert unbuilt["skipped"].startswith("no market data: the files data source needs")
    ran = scheduled_poll(c.broker, lambda: market.data, c.state_store, market.now(), marks=marks)
    assert ran["source"] == "replay"
