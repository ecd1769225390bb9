"""The money-safety invariants (docs/architecture.md), end to end on moto's server.

Alerts are stored in the real alert table, state lives in the real state table, and each
worker thread gets its own boto3 clients, as separate Lambdas would. The broker is our
port's fake, and the paper broker (DynamoDB-backed) for the same invariants.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from chalicelib.adapters.dynamodb_alerts import DynamoAlertStore
from chalicelib.adapters.dynamodb_state import DynamoStateStore
from chalicelib.adapters.paper_broker import PaperBroker
from chalicelib.domain import Alert
from chalicelib.rules.gate import Gate, RiskLimits
from chalicelib.rules.market_calendar import trading_date
from chalicelib.rules.orders import OrderRules
from chalicelib.services.process_alert import AlertFailed, Execution, process_alert
from tests.execution.fake_broker import FakeBroker, FlakyBroker, LambdaCrash

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # a Tuesday, 10:00 New York


class Lambda:
    """One worker's own clients: alert store, state store (and the paper broker's)."""

    def __init__(self) -> None:
        client = boto3.session.Session().client("dynamodb")
        self.alerts = DynamoAlertStore(client, os.environ["FLOWTRADER_ALERTS_TABLE"])
        self.state = DynamoStateStore(client, os.environ["FLOWTRADER_STATE_TABLE"])
        self.client = client


class RecordingNotifier:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail = fail

    def notify(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))
        if self.fail:
            raise RuntimeError("SNS is down")


@pytest.fixture(params=["fake", "paper"])
def broker_kind(request, aws):
    return request.param


def make_broker(kind: str):
    if kind == "fake":
        return FakeBroker()
    return PaperBroker(
        Lambda().client,
        os.environ["FLOWTRADER_STATE_TABLE"],
        slippage_bps=0.0,
        clock=lambda: NOW,
    )


def order_count(broker) -> int:
    return len(broker.list_orders())


def store_alert(lam: Lambda, alert_id: str, **fields) -> str:
    body = {"ticker": "NASDAQ:AAPL", "action": "buy", "price": 100.0, "quantity": 2, **fields}
    lam.alerts.store_once(
        alert_id, f"id:{alert_id}", Alert.model_validate(body), NOW, NOW + timedelta(days=1), None
    )
    return alert_id


def execution(lam: Lambda, broker, notifier=None, **limits) -> Execution:
    risk = RiskLimits(market_hours_only=False, **limits)
    return Execution(
        state=lam.state,
        broker=broker,
        gate=Gate.from_limits(risk),
        rules=OrderRules(),
        notifier=notifier,
        lock_wait_s=120.0,  # correctness under contention, not speed: a loaded CI box is slow
    )


def run(lam: Lambda, alert_id: str, ex: Execution, attempt: int = 1):
    return process_alert(alert_id, store=lam.alerts, now=NOW, execution=ex, attempt=attempt)


def test_accepted_alert_records_decision_verdicts_and_order_on_the_alert(broker_kind):
    lam = Lambda()
    broker = make_broker(broker_kind)
    notifier = RecordingNotifier()
    alert_id = store_alert(lam, "01JDUP0000000000000000000A", stop_loss=98.0, take_profit=104.0)

    outcome = run(lam, alert_id, execution(lam, broker, notifier))

    assert outcome.status in ("accepted", "filled")
    record = lam.alerts.get(alert_id)
    assert record["status"] == outcome.status
    details = record["details"]
    assert details["decision"]["kind"] == "open"
    assert {v["check"] for v in details["verdicts"]["open"]} >= {"kill_switch", "cooldown"}
    assert details["orders"][0]["client_order_id"] == f"ft-{alert_id}-open"
    assert [o["client_order_id"] for o in lam.state.orders()] == [f"ft-{alert_id}-open"]
    events = [e["event"] for e in lam.state.journal(alert_id)]
    assert events[:2] == ["context", "decided"]
    assert events[-1] == "outcome"
    assert "gate" in events
    assert notifier.sent


def test_duplicate_delivery_of_one_alert_places_one_order(broker_kind):
    lam = Lambda()
    broker = make_broker(broker_kind)
    alert_id = store_alert(lam, "01JDUP0000000000000000000B")
    ex = execution(lam, broker)

    first = run(lam, alert_id, ex)
    again = run(lam, alert_id, ex, attempt=2)

    assert again.skipped
    assert again.status == first.status
    assert order_count(broker) == 1


def test_concurrent_duplicate_deliveries_place_one_order(broker_kind):
    broker = make_broker(broker_kind)
    alert_id = store_alert(Lambda(), "01JDUP0000000000000000000C")

    def deliver(_: int):
        lam = Lambda()
        return run(lam, alert_id, execution(lam, broker)).status

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(deliver, range(4)))
    assert order_count(broker) == 1


def test_redelivery_after_a_crash_between_broker_call_and_record_places_one_order(broker_kind):
    lam = Lambda()
    broker = FlakyBroker(make_broker(broker_kind), crash_after=1)
    alert_id = store_alert(lam, "01JCRASH000000000000000000")

    with pytest.raises(LambdaCrash):
        run(lam, alert_id, execution(lam, broker))
    assert lam.alerts.get(alert_id)["status"] == "received"  # nothing recorded after the call

    outcome = run(Lambda(), alert_id, execution(lam, broker), attempt=2)

    assert outcome.status in ("accepted", "filled")
    assert order_count(broker.inner) == 1
    assert broker.place_calls == 1
    assert lam.alerts.get(alert_id)["details"]["recovered"] is True


def test_a_crash_between_a_partial_close_and_its_protection_is_repaired_on_redelivery(
    broker_kind,
):
    """The worker dies right after the partial close (its legs already canceled): the
    redelivery must find the close, not sell again, and give the remainder its stop back."""
    from chalicelib.domain import OrderType

    lam = Lambda()
    inner = make_broker(broker_kind)
    broker = FlakyBroker(inner)
    opened = store_alert(
        lam, "01JPARTOPEN000000000000000", market_position="long", quantity=10,
        stop_loss=95.0, take_profit=110.0,
    )  # fmt: skip
    assert run(lam, opened, execution(lam, broker)).status == "filled"
    partial = store_alert(
        lam, "01JPARTCRASH00000000000000", action="sell", market_position="long",
        market_position_size=4, prev_market_position_size=10,
    )  # fmt: skip
    broker.crash_after = 1
    with pytest.raises(LambdaCrash):
        run(lam, partial, execution(lam, broker))
    assert [p.qty for p in inner.get_positions()] == [4]
    assert not [o for o in inner.working_exits("AAPL") if o.order_type is OrderType.STOP]

    outcome = run(Lambda(), partial, execution(lam, broker), attempt=2)

    assert outcome.status in ("accepted", "filled")
    assert [p.qty for p in inner.get_positions()] == [4]  # sold once
    stops = [o for o in inner.working_exits("AAPL") if o.order_type is OrderType.STOP]
    assert [(o.qty, o.stop_price) for o in stops] == [(4, 95.0)]


def test_thirty_parallel_alerts_with_a_limit_of_three_place_exactly_three_orders(broker_kind):
    broker = make_broker(broker_kind)
    seed = Lambda()
    ids = [
        store_alert(seed, f"01JPAR{i:020d}", ticker=f"SYM{i:02d}", quantity=1) for i in range(30)
    ]

    def worker(alert_id: str):
        lam = Lambda()  # its own clients, like a separate Lambda
        return run(lam, alert_id, execution(lam, broker, max_trades_per_hour=3))

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(worker, ids))

    placed = [o for o in outcomes if o.status in ("accepted", "filled")]
    rejected = [o for o in outcomes if o.status == "rejected"]
    assert len(placed) == 3
    assert len(rejected) == 27
    assert all("cooldown" in o.reason for o in rejected)
    assert order_count(broker) == 3
    stored = [seed.alerts.get(i) for i in ids]
    assert sum(r["status"] == "rejected" and "cooldown" in r["reason"] for r in stored) == 27


def test_parallel_opens_in_distinct_symbols_never_exceed_max_open_positions(broker_kind):
    broker = make_broker(broker_kind)
    seed = Lambda()
    ids = [
        store_alert(seed, f"01JPOS{i:020d}", ticker=f"POS{i:02d}", quantity=1) for i in range(12)
    ]

    def worker(alert_id: str):
        lam = Lambda()
        ex = execution(lam, broker, max_trades_per_hour=0, max_open_positions=4)
        return run(lam, alert_id, ex)

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(worker, ids))

    placed = [o for o in outcomes if o.status in ("accepted", "filled")]
    rejected = [o for o in outcomes if o.status == "rejected"]
    assert len(placed) == 4
    assert len(rejected) == 8
    assert all("max open positions" in o.reason for o in rejected)
    assert len(broker.get_positions()) == 4


def test_resting_limit_entries_count_towards_max_open_positions_before_they_fill(aws):
    lam = Lambda()
    broker = make_broker("paper")
    limits = {"max_trades_per_hour": 0, "max_open_positions": 2}
    outcomes = []
    for i, symbol in enumerate(["AAA", "BBB", "CCC"]):
        alert_id = store_alert(
            lam, f"01JREST{i:019d}", ticker=symbol, order_type="limit", limit_price=95.0
        )
        outcomes.append(run(lam, alert_id, execution(lam, broker, **limits)))

    assert [o.status for o in outcomes] == ["accepted", "accepted", "rejected"]
    assert "max open positions" in outcomes[2].reason
    assert broker.get_positions() == []  # nothing has filled: the limit counted working orders


def test_a_crashed_lease_holder_blocks_the_account_only_until_its_lease_expires(aws):
    lam = Lambda()
    broker = make_broker("fake")
    lam.state.acquire_account_lock("crashed-alert", NOW, timedelta(seconds=60))
    alert_id = store_alert(lam, "01JLEASE000000000000000000")
    ex = execution(lam, broker)
    busy = dataclasses.replace(ex, lock_wait_s=0.2)

    with pytest.raises(AlertFailed, match="held the account"):
        run(lam, alert_id, busy)
    later = process_alert(
        alert_id, store=lam.alerts, now=NOW + timedelta(seconds=61), execution=busy, attempt=2
    )

    assert later.status in ("accepted", "filled")
    assert order_count(broker) == 1


def test_broker_500_then_success_places_one_order(broker_kind):
    lam = Lambda()
    broker = FlakyBroker(make_broker(broker_kind), fail_before=1)
    alert_id = store_alert(lam, "01JFLAKY000000000000000000")

    outcome = run(lam, alert_id, execution(lam, broker))

    assert outcome.status in ("accepted", "filled")
    assert broker.place_calls == 2
    assert order_count(broker.inner) == 1


def test_timeout_after_the_broker_accepted_is_found_by_client_id_not_placed_again(broker_kind):
    lam = Lambda()
    broker = FlakyBroker(make_broker(broker_kind), fail_after=1)
    alert_id = store_alert(lam, "01JTIMEOUT0000000000000000")

    outcome = run(lam, alert_id, execution(lam, broker))

    assert outcome.status in ("accepted", "filled")
    assert broker.place_calls == 1
    assert order_count(broker.inner) == 1


def test_broker_down_records_failed_retries_via_redelivery_and_notifies_on_the_last(aws):
    lam = Lambda()
    broker = FlakyBroker(FakeBroker(), fail_before=100)
    notifier = RecordingNotifier()
    alert_id = store_alert(lam, "01JDOWN0000000000000000000")
    ex = execution(lam, broker, notifier)

    for attempt in range(1, 6):
        with pytest.raises(AlertFailed):
            run(lam, alert_id, ex, attempt=attempt)
        record = lam.alerts.get(alert_id)
        assert record["status"] == "failed"
        assert record["reason"].startswith("broker unavailable")
    assert "gave up after 5 attempts" in record["reason"]
    errors = [subject for subject, _ in notifier.sent if "ERROR" in subject]
    assert errors == [f"flowtrader: ERROR AAPL {alert_id}"]
    assert order_count(broker.inner) == 0


def test_failed_alert_succeeds_on_redelivery_once_the_broker_is_back(aws):
    lam = Lambda()
    broker = FlakyBroker(FakeBroker(), fail_before=2)
    alert_id = store_alert(lam, "01JBACK0000000000000000000")
    ex = execution(lam, broker)

    with pytest.raises(AlertFailed):
        run(lam, alert_id, ex)
    outcome = run(lam, alert_id, ex, attempt=2)

    assert outcome.status in ("accepted", "filled")
    assert order_count(broker.inner) == 1
    assert len(lam.state.trade_times(NOW, timedelta(hours=1))) == 1  # one cooldown slot


def test_daily_loss_limit_rejects_with_its_reason(broker_kind):
    lam = Lambda()
    broker = make_broker(broker_kind)
    lam.state.add_realized_pl(trading_date(NOW), -750.0, key="earlier-loss")
    alert_id = store_alert(lam, "01JLOSS0000000000000000000")

    outcome = run(lam, alert_id, execution(lam, broker, max_daily_loss_usd=500))

    assert outcome.status == "rejected"
    assert outcome.reason.startswith("daily loss limit")
    assert order_count(broker) == 0
    assert lam.alerts.get(alert_id)["reason"].startswith("daily loss limit")


def test_a_paper_stop_filled_by_a_later_price_counts_towards_the_daily_loss_limit(aws):
    lam = Lambda()
    broker = make_broker("paper")
    limits = {"max_trades_per_hour": 0, "max_daily_loss_usd": 500.0}
    entry = store_alert(lam, "01JSTOP0000000000000000001", quantity=100, stop_loss=95.0)
    assert run(lam, entry, execution(lam, broker, **limits)).status in ("accepted", "filled")

    # The next AAPL alert's price (90) runs through the working stop first: a 1,000 USD loss.
    again = store_alert(lam, "01JSTOP0000000000000000002", quantity=100, price=90.0)
    outcome = run(lam, again, execution(lam, broker, **limits))

    assert outcome.status == "rejected"
    assert "daily loss limit" in outcome.reason
    assert lam.state.realized_pl(trading_date(NOW)) == pytest.approx(-1000.0)  # 100 × (90 − 100)
    assert broker.get_positions() == []


def test_kill_switch_rejects_with_its_reason(broker_kind):
    lam = Lambda()
    broker = make_broker(broker_kind)
    lam.state.set_kill_switch("halted by the trader", NOW)
    alert_id = store_alert(lam, "01JKILL0000000000000000000")

    outcome = run(lam, alert_id, execution(lam, broker))

    assert outcome.status == "rejected"
    assert "kill switch" in outcome.reason
    assert "halted by the trader" in outcome.reason
    assert order_count(broker) == 0


def test_failing_notifier_neither_blocks_nor_repeats_the_order(broker_kind):
    lam = Lambda()
    broker = make_broker(broker_kind)
    alert_id = store_alert(lam, "01JNOTIFY00000000000000000")

    outcome = run(lam, alert_id, execution(lam, broker, RecordingNotifier(fail=True)))

    assert outcome.status in ("accepted", "filled")
    assert order_count(broker) == 1


def test_broker_rejection_releases_the_cooldown_slot(aws):
    from chalicelib.ports import BrokerRejected

    class Refusing(FakeBroker):
        def place_order(self, intent):
            raise BrokerRejected("insufficient buying power", code="40310000")

    lam = Lambda()
    alert_id = store_alert(lam, "01JREFUSE00000000000000000")

    outcome = run(lam, alert_id, execution(lam, Refusing(), max_trades_per_hour=1))

    assert outcome.status == "rejected"
    assert "insufficient buying power" in outcome.reason
    assert "40310000" in outcome.reason
    assert lam.state.trade_times(NOW, timedelta(hours=1)) == []


def test_reverse_closes_then_opens_and_books_realized_pl(aws):
    lam = Lambda()
    broker = FakeBroker()
    broker.set_position("AAPL", -5, 110.0)
    # A strategy flip short 5 → long 2 is one TradingView order of 7 contracts.
    alert_id = store_alert(lam, "01JREVERSE0000000000000000", market_position="long", quantity=7)

    outcome = run(lam, alert_id, execution(lam, broker))

    assert outcome.orders == (f"ft-{alert_id}-close", f"ft-{alert_id}-open")
    assert lam.state.realized_pl(trading_date(NOW)) == pytest.approx(50.0)  # covered 10 lower
    assert [(p.symbol, p.qty) for p in lam.state.positions()] == [("AAPL", 2)]
    events = [(e["event"], e["data"].get("leg")) for e in lam.state.journal(alert_id)]
    assert events == [
        ("context", None),  # what the decision saw (here: no sources configured)
        ("decided", None),
        ("gate", "close"),
        ("order", None),
        ("gate", "open"),
        ("order", None),
        ("trade", None),  # sync_portfolio booked the close's fill
        ("outcome", None),
    ]


def test_reverse_whose_open_hits_the_cooldown_still_closes_and_says_why(aws):
    lam = Lambda()
    broker = FakeBroker()
    broker.set_position("AAPL", -5, 110.0)
    lam.state.claim_trade_slot("earlier", NOW, window=timedelta(hours=1), limit=1)
    alert_id = store_alert(lam, "01JREVCOOL0000000000000000", market_position="long", quantity=7)

    outcome = run(lam, alert_id, execution(lam, broker, max_trades_per_hour=1))

    assert outcome.status == "partially_filled"
    assert outcome.orders == (f"ft-{alert_id}-close",)
    assert "long not opened: cooldown" in outcome.reason
    assert broker.get_positions() == []


def test_kill_switch_stops_both_halves_of_a_reverse(aws):
    lam = Lambda()
    broker = FakeBroker()
    broker.set_position("AAPL", -5, 110.0)
    lam.state.set_kill_switch("halt", NOW)
    alert_id = store_alert(lam, "01JREVKILL0000000000000000", market_position="long", quantity=7)

    outcome = run(lam, alert_id, execution(lam, broker))

    assert outcome.status == "rejected"
    assert "kill switch" in outcome.reason
    assert broker.orders == {}


def test_duplicate_that_sees_its_twins_position_records_the_order_not_a_rejection(aws):
    """A concurrent delivery placed the order after this one claimed the alert: the
    decision now says "already long", but the broker has the alert's order, so it stands."""
    lam = Lambda()
    broker = FakeBroker()
    alert_id = store_alert(lam, "01JTWIN0000000000000000000")
    twin = execution(lam, broker)
    from chalicelib.rules.orders import decide_orders

    alert = Alert.model_validate(lam.alerts.get(alert_id)["alert"])
    decision = decide_orders(
        alert, alert_id, account=broker.get_account(), positions=[], rules=OrderRules()
    )
    broker.place_order(decision.intents[0])  # the twin's order, not yet recorded

    outcome = run(lam, alert_id, twin)

    assert outcome.status == "filled"
    assert outcome.orders == (f"ft-{alert_id}-open",)
    assert len(broker.orders) == 1
