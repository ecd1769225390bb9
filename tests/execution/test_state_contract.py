"""One contract, two stores: the in-memory state (backtest, unit tests) and DynamoDB (live).

The DynamoDB store runs against moto's server over HTTP; concurrency tests give each thread
its own boto3 client, as separate Lambdas would have.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import boto3
import pytest

from chalicelib.adapters.dynamodb_state import DynamoStateStore
from chalicelib.adapters.memory_state import InMemoryStateStore
from chalicelib.domain import (
    DayClassification,
    DayType,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from chalicelib.rules.risk_state import RiskState

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def dynamo_store() -> DynamoStateStore:
    client = boto3.session.Session().client("dynamodb")
    return DynamoStateStore(client, os.environ["FLOWTRADER_STATE_TABLE"])


@pytest.fixture(params=["memory", "dynamodb"])
def make_store(request):
    """A factory: every call is a new handle on the same state (a new 'Lambda')."""
    if request.param == "memory":
        shared = InMemoryStateStore()
        return lambda: shared
    request.getfixturevalue("aws")
    return dynamo_store


@pytest.fixture
def store(make_store):
    return make_store()


def test_store_is_a_risk_state(store):
    assert isinstance(store, RiskState)


def test_kill_switch_engages_with_a_reason_and_releases(store):
    assert store.kill_switch() is None
    store.set_kill_switch("broker outage", NOW)
    assert store.kill_switch() == "broker outage"
    store.set_kill_switch(None, NOW)
    assert store.kill_switch() is None


def test_claims_stop_at_the_limit_within_the_window(store):
    assert [store.claim_trade_slot(f"A{i}", NOW, window=HOUR, limit=3) for i in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert len(store.trade_times(NOW, HOUR)) == 3


def test_a_slot_frees_when_its_claim_leaves_the_rolling_window(store):
    store.claim_trade_slot("A1", NOW, window=HOUR, limit=1)
    assert not store.claim_trade_slot("A2", NOW + timedelta(minutes=59), window=HOUR, limit=1)
    assert store.claim_trade_slot("A2", NOW + HOUR, window=HOUR, limit=1)
    assert store.trade_times(NOW + HOUR, HOUR) == [NOW + HOUR]


def test_reclaiming_with_the_same_id_keeps_one_slot(store):
    assert store.claim_trade_slot("A1", NOW, window=HOUR, limit=2)
    assert store.claim_trade_slot("A1", NOW, window=HOUR, limit=2)
    assert len(store.trade_times(NOW, HOUR)) == 1
    assert store.trade_times(NOW, HOUR, exclude_claim="A1") == []


def test_release_gives_the_slot_back(store):
    store.claim_trade_slot("A1", NOW, window=HOUR, limit=1)
    store.release_trade_slot("A1")
    store.release_trade_slot("A1")  # releasing twice is harmless
    assert store.claim_trade_slot("A2", NOW, window=HOUR, limit=1)


def test_symbol_windows_are_separate_from_the_account_window(store):
    assert store.claim_trade_slot("A1", NOW, window=HOUR, limit=1, symbol="AAPL")
    assert store.claim_trade_slot("A2", NOW, window=HOUR, limit=1, symbol="MSFT")
    assert not store.claim_trade_slot("A3", NOW, window=HOUR, limit=1, symbol="AAPL")
    assert store.trade_times(NOW, HOUR) == []
    assert store.trade_times(NOW, HOUR, symbol="AAPL") == [NOW]


def test_parallel_claims_never_exceed_the_limit(make_store):
    def claim(i: int) -> bool:
        return make_store().claim_trade_slot(f"A{i:02d}", NOW, window=HOUR, limit=3)

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(claim, range(20)))
    assert sum(results) == 3
    assert len(make_store().trade_times(NOW, HOUR)) == 3


def test_realized_pl_is_booked_once_per_key_and_per_day(store):
    day = date(2026, 12, 1)
    assert store.realized_pl(day) == 0.0
    assert store.add_realized_pl(day, -120.5, key="fill-1")
    assert not store.add_realized_pl(day, -120.5, key="fill-1")
    assert store.add_realized_pl(day, 20.25, key="fill-2")
    assert store.realized_pl(day) == pytest.approx(-100.25)
    assert store.realized_pl(date(2026, 12, 2)) == 0.0


def test_day_type_round_trips(store):
    day = date(2026, 12, 1)
    assert store.day_type(day) is None
    store.set_day_type(day, DayType.NO_TRADE)
    assert store.day_type(day) is DayType.NO_TRADE


def test_day_classification_round_trips_with_its_features(store):
    day = date(2026, 12, 1)
    assert store.day_classification(day) is None
    classification = DayClassification(
        day=day,
        symbol="SPY",
        day_type=DayType.CHOPPY,
        confidence=0.8,
        features={"efficiency": 0.12, "vwap_crosses": 7.0},
        classified_at=NOW,
        reason="1/5 trend signals (adx)",
    )
    store.save_day_classification(classification)
    assert store.day_classification(day) == classification
    assert store.day_type(day) is DayType.CHOPPY  # the gate's read follows the save
    assert store.day_classification(date(2026, 12, 2)) is None


def test_a_day_type_set_directly_reads_back_as_a_classification_without_features(store):
    day = date(2026, 12, 1)
    store.save_day_classification(
        DayClassification(day=day, symbol="SPY", day_type=DayType.TREND_UP, confidence=0.6)
    )
    store.set_day_type(day, DayType.NO_TRADE)
    read = store.day_classification(day)
    assert read is not None
    assert read.day_type is DayType.NO_TRADE
    assert read.features == {}
    assert "set directly" in read.reason


def test_journal_keeps_an_alerts_events_in_order(store):
    store.append_journal("A1", "decided", {"kind": "open"}, NOW)
    store.append_journal("A1", "gate", {"allowed": True}, NOW + timedelta(seconds=1))
    store.append_journal("A2", "decided", {"kind": "close"}, NOW)
    events = store.journal("A1")
    assert [e["event"] for e in events] == ["decided", "gate"]
    assert events[0]["data"] == {"kind": "open"}
    assert store.journal("missing") == []


def _order(client_order_id: str, status: OrderStatus = OrderStatus.ACCEPTED) -> Order:
    return Order(
        broker_order_id="b-" + client_order_id,
        client_order_id=client_order_id,
        symbol="AAPL",
        side=Side.BUY,
        qty=5,
        order_type=OrderType.MARKET,
        status=status,
    )


def test_orders_upsert_by_client_id_and_list_newest_first(store):
    store.record_order("01A", _order("ft-01A-open"), NOW)
    store.record_order("01B", _order("ft-01B-open"), NOW)
    store.record_order("01A", _order("ft-01A-open", OrderStatus.FILLED), NOW + HOUR)
    orders = store.orders()
    assert [o["client_order_id"] for o in orders] == ["ft-01B-open", "ft-01A-open"]
    assert orders[1]["status"] == "filled"
    assert orders[1]["alert_id"] == "01A"
    assert len(store.orders(limit=1)) == 1


def test_positions_snapshot_replaces_the_previous_one(store):
    store.replace_positions(
        [
            Position(symbol="AAPL", qty=5, avg_entry_price=100),
            Position(symbol="MSFT", qty=-2, avg_entry_price=400),
        ],
        NOW,
    )
    store.replace_positions([Position(symbol="MSFT", qty=-3, avg_entry_price=401)], NOW)
    assert store.positions() == [Position(symbol="MSFT", qty=-3, avg_entry_price=401)]


def test_journal_keeps_same_time_events_apart_by_sequence(store):
    store.append_journal("A1", "gate", {"leg": "close"}, NOW, seq=1)
    store.append_journal("A1", "gate", {"leg": "open"}, NOW, seq=2)
    store.append_journal("A1", "decided", {}, NOW, seq=0)
    assert [(e["event"], e["data"].get("leg")) for e in store.journal("A1")] == [
        ("decided", None),
        ("gate", "close"),
        ("gate", "open"),
    ]


def test_account_lock_has_one_holder_until_released_or_expired(make_store):
    store = make_store()
    ttl = timedelta(seconds=60)

    assert store.acquire_account_lock("a", NOW, ttl)
    assert store.acquire_account_lock("a", NOW, ttl)  # the holder renews
    assert not store.acquire_account_lock("b", NOW + timedelta(seconds=59), ttl)
    store.release_account_lock("b")  # not the holder: no effect
    assert not store.acquire_account_lock("b", NOW, ttl)
    store.release_account_lock("a")
    assert store.acquire_account_lock("b", NOW, ttl)
    assert store.acquire_account_lock("c", NOW + timedelta(seconds=61), ttl)  # b's lease expired
    store.release_account_lock("b")  # b no longer holds it: c keeps it
    assert not store.acquire_account_lock("d", NOW + timedelta(seconds=62), ttl)


def test_marks_refresh_only_while_the_snapshot_is_as_read(make_store):
    """The sweep refreshes marks without the account lease: each write must lose to a
    decision that changed that position's snapshot after the sweep read it."""
    store = make_store()
    held = [
        Position(symbol="AAPL", qty=10, avg_entry_price=100.0, market_price=101.0),
        Position(symbol="MSFT", qty=5, avg_entry_price=400.0, market_price=401.0),
    ]
    store.replace_positions(held, NOW)
    read = make_store().positions()
    # A decision sells MSFT down to 2 after the sweep read the snapshot.
    moved = Position(symbol="MSFT", qty=2, avg_entry_price=400.0, market_price=402.0)
    make_store().replace_positions([held[0], moved], NOW + HOUR)
    marks = [
        Position(symbol="AAPL", qty=10, avg_entry_price=100.0, market_price=103.5),
        Position(symbol="MSFT", qty=5, avg_entry_price=400.0, market_price=399.0),
    ]
    assert make_store().refresh_marks(marks, read, NOW + HOUR) == 1
    after = {p.symbol: p for p in store.positions()}
    assert after["AAPL"].market_price == 103.5  # refreshed
    assert (after["MSFT"].qty, after["MSFT"].market_price) == (2, 402.0)  # the decision's
    # A quantity the sweep sees changed is never written by a marks refresh.
    changed = [Position(symbol="AAPL", qty=7, avg_entry_price=100.0, market_price=104.0)]
    assert make_store().refresh_marks(changed, store.positions(), NOW + HOUR) == 0
    assert {p.symbol: p.qty for p in store.positions()} == {"AAPL": 10, "MSFT": 2}
