"""IBKR broker behaviour beyond the shared contract: the reply policy, lookup before retry
(live orders, then executions), 401 mid-order, order tickets, error mapping, the account and
secrets kept out of logs. ibind's real client against tests/fakes/ibkr_server.py.

IBKR semantics (spec 2.29.0, https://api.ibkr.com/gw/api/v3/api-docs): order questions are
answered at `POST /iserver/reply/{replyId}` with `confirmed` ("true will agree to the
message transmit the order. false will decline the message and discard the order", ibind's
`reply`); a duplicate cOID is refused "Order couldn't be submitted: Local order ID=..."
(ibind's `handle_questions`); executions carry `order_ref`, "the client-provided customer
order identifier. Specified via cOID".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from chalicelib.adapters.ibkr.broker import IbkrBroker
from chalicelib.adapters.ibkr.contracts import ConidResolver
from chalicelib.adapters.ibkr.orders import ReplyPolicy
from chalicelib.adapters.ibkr.session import forget_sessions
from chalicelib.domain import OrderIntent, OrderStatus, OrderType, Side
from chalicelib.ports import BrokerRejected, BrokerUnavailable
from tests.fakes.ibkr_server import FakeIbkr

NO_MARKET_DATA = (
    "You are submitting an order without market data. We strongly recommend against this as "
    "it may result in erroneous and unexpected trades.\nAre you sure you want to submit this order?"
)  # the spec's orderReplyMessageExample (o354)


@pytest.fixture
def fake() -> Iterator[FakeIbkr]:
    forget_sessions()
    with FakeIbkr() as server:
        server.prices["AAPL"] = 100.0
        yield server


def broker(fake: FakeIbkr, **kwargs: object) -> IbkrBroker:
    return IbkrBroker(fake.session(), wait_s=0, sleep=lambda _: None, **kwargs)


def intent(cid: str = "ft-a1-open", **kwargs: object) -> OrderIntent:
    base: dict[str, object] = {
        "client_order_id": cid,
        "alert_id": cid,
        "symbol": "AAPL",
        "side": Side.BUY,
        "qty": 10,
    }
    return OrderIntent(**(base | kwargs))


def order_posts(fake: FakeIbkr) -> list[dict]:
    return fake.posts(f"iserver/account/{fake.account_id}/orders")


def test_a_whitelisted_question_is_confirmed_and_the_order_placed(fake):
    placed = broker(fake).place_order(intent())

    replies = fake.posts("iserver/reply/")
    assert [r["body"] for r in replies] == [{"confirmed": True}]  # o10151, market order
    assert placed.status is OrderStatus.FILLED


def test_a_question_off_the_whitelist_is_declined_and_rejects_the_order(fake):
    fake.ask_next("o354", NO_MARKET_DATA)

    with pytest.raises(BrokerRejected) as err:
        broker(fake).place_order(intent(order_type=OrderType.LIMIT, limit_price=99.0))

    assert "no market data subscription" in err.value.reason
    assert "without market data" in err.value.reason  # IBKR's own words
    assert err.value.code == "o354"
    assert [r["body"] for r in fake.posts("iserver/reply/")] == [{"confirmed": False}]
    assert fake.orders == {}


def test_an_unknown_question_is_never_confirmed(fake):
    fake.ask_next("o99999", "Something new IBKR asks.")

    with pytest.raises(BrokerRejected, match="does not confirm"):
        broker(fake).place_order(intent(order_type=OrderType.LIMIT, limit_price=99.0))

    assert fake.orders == {}


def test_the_whitelist_is_a_setting(fake):
    fake.ask_next("o354", NO_MARKET_DATA)
    policy = ReplyPolicy.from_setting("o354, o10151")

    placed = broker(fake, policy=policy).place_order(intent())

    assert placed.status is OrderStatus.FILLED
    assert [r["body"] for r in fake.posts("iserver/reply/")] == [{"confirmed": True}] * 2


def test_a_lost_answer_is_found_by_lookup_and_not_placed_again(fake):
    fake.inject("POST", f"iserver/account/{fake.account_id}/orders", status=503, after=True)
    fake.ask_market_warning = False
    b = broker(fake)

    placed = b.place_order(intent())
    again = b.place_order(intent())

    assert placed.status is OrderStatus.FILLED
    assert again.broker_order_id == placed.broker_order_id
    assert len(order_posts(fake)) == 1
    assert [o["order_ref"] for o in fake.orders.values()] == ["ft-a1-open"]


def test_an_unknown_outcome_with_nothing_found_is_unavailable(fake):
    fake.inject("POST", f"iserver/account/{fake.account_id}/orders", status=504)

    with pytest.raises(BrokerUnavailable, match="did not confirm"):
        broker(fake).place_order(intent())

    assert fake.orders == {}


def test_an_order_from_an_earlier_session_is_found_in_the_executions(fake):
    b = broker(fake)
    first = b.place_order(intent())
    fake.orders.clear()  # a new brokerage session lists only its own orders
    fake.clock.advance(5)

    found = b.get_order_by_client_id("ft-a1-open")
    again = b.place_order(intent())

    assert (found.status, found.filled_qty, found.filled_avg_price) == (OrderStatus.FILLED, 10, 100)
    assert again.broker_order_id == first.broker_order_id
    assert len(order_posts(fake)) == 1


def test_an_expired_token_mid_order_renews_and_places_once(fake):
    b = broker(fake)
    b.get_positions()
    fake.expire_lst()

    placed = b.place_order(intent())

    assert placed.status is OrderStatus.FILLED
    assert fake.lst_requests == 2
    assert len(fake.orders) == 1


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"order_type": OrderType.STOP_LIMIT, "stop_price": 101.0, "limit_price": 101.5},
            {"orderType": "STOP_LIMIT", "price": 101.5, "auxPrice": 101.0},
        ),
        (
            {"order_type": OrderType.TRAILING_STOP, "trail_percent": 2.0},
            {"orderType": "TRAIL", "trailingAmt": 2.0, "trailingType": "%"},
        ),
        (
            {"order_type": OrderType.TRAILING_STOP, "trail_price": 1.25},
            {"orderType": "TRAIL", "trailingAmt": 1.25, "trailingType": "amt"},
        ),
        ({"order_type": OrderType.STOP, "stop_price": 104.0}, {"orderType": "STP", "price": 104.0}),
    ],
)
def test_order_types_become_ibkr_tickets_with_our_id(fake, kwargs, expected):
    placed = broker(fake).place_order(intent(**kwargs))

    ticket = order_posts(fake)[0]["body"]["orders"][0]
    assert expected.items() <= ticket.items()
    assert (ticket["cOID"], ticket["side"], ticket["tif"]) == ("ft-a1-open", "BUY", "DAY")
    assert placed.order_type is kwargs["order_type"]


def test_a_bracket_attaches_its_children_to_the_parent_cid(fake):
    broker(fake).place_order(intent(stop_loss=95.0, take_profit=110.0))

    tickets = order_posts(fake)[0]["body"]["orders"]
    assert [(t["cOID"], t.get("parentId")) for t in tickets] == [
        ("ft-a1-open", None),
        ("ft-a1-open-tp", "ft-a1-open"),
        ("ft-a1-open-sl", "ft-a1-open"),
    ]


def test_an_unknown_symbol_is_rejected_before_any_order(fake):
    with pytest.raises(BrokerRejected) as err:
        broker(fake).place_order(intent(symbol="ZZZZ"))

    assert "asset not found" in err.value.reason
    assert order_posts(fake) == []


def test_an_ibkr_refusal_is_rejected_with_its_words(fake):
    refusal = {"error": "Order rejected: insufficient buying power"}
    fake.inject("POST", f"iserver/account/{fake.account_id}/orders", status=200, body=refusal)

    with pytest.raises(BrokerRejected) as err:
        broker(fake).place_order(intent())

    assert err.value.reason.startswith("insufficient buying power")
    assert "Order rejected" in err.value.reason


def test_ibkr_down_for_reads_is_unavailable_after_retries(fake):
    b = broker(fake)
    b.get_positions()
    fake.inject("GET", f"portfolio/{fake.account_id}/summary", status=503, times=3)

    with pytest.raises(BrokerUnavailable):
        b.get_account()


def test_a_conid_is_looked_up_once(fake):
    resolver = ConidResolver(fake.session())
    b = IbkrBroker(resolver._session, contracts=resolver, wait_s=0, sleep=lambda _: None)

    b.place_order(intent("ft-1"))
    b.place_order(intent("ft-2"))

    assert resolver.lookups == 1
    assert len([r for r in fake.requests if r["path"] == "trsrv/stocks"]) == 1


def test_a_conid_expires_after_its_ttl(fake):
    now = [0.0]
    resolver = ConidResolver(fake.session(), ttl_s=60, clock=lambda: now[0])
    assert resolver.conid("AAPL") == 265598
    now[0] = 61.0

    assert resolver.conid("AAPL") == 265598
    assert resolver.lookups == 2


def test_cancel_of_an_unknown_order_is_rejected(fake):
    with pytest.raises(BrokerRejected) as err:
        broker(fake).cancel_order("999")
    assert err.value.code == "404"


def test_the_account_reads_equity_buying_power_and_the_day(fake):
    b = broker(fake)
    b.place_order(intent())
    fake.prices["AAPL"] = 110.0

    account = b.get_account()

    assert account.equity == pytest.approx(100_100.0)
    assert account.cash == pytest.approx(99_000.0)
    assert account.buying_power == pytest.approx(400_400.0)
    assert account.day_pl == pytest.approx(100.0)


def test_secrets_never_reach_a_log_line_or_an_error(fake, caplog):
    caplog.set_level(logging.DEBUG)
    b = broker(fake)
    b.place_order(intent())
    fake.expire_lst()
    b.get_positions()
    fake.ask_next("o354", NO_MARKET_DATA)
    with pytest.raises(BrokerRejected) as err:
        b.place_order(intent("ft-2", order_type=OrderType.LIMIT, limit_price=99.0))

    secrets = [*fake.credentials().secrets(), *fake.issued_lsts]
    assert len(fake.issued_lsts) == 2
    text = caplog.text + str(err.value)
    assert all(secret not in text for secret in secrets)
    assert fake.material.consumer_key not in text


def test_a_reject_prompt_is_a_rejection_with_ibkrs_text(fake):
    fake.prompt_next = True  # the spec's advancedOrderRejectPromptExample (p12)

    with pytest.raises(BrokerRejected) as err:
        broker(fake).place_order(intent())

    assert err.value.code == "p12"
    assert "price management algo" in err.value.reason
    assert "not immediately executable" in err.value.reason


def test_a_cancel_waits_until_ibkr_reports_it_cancelled(fake):
    b = broker(fake)
    resting = b.place_order(intent(order_type=OrderType.LIMIT, limit_price=90.0))
    fake.cancel_latency = 2
    before = len(fake.requests)

    b.cancel_order(resting.broker_order_id)

    assert fake.orders[int(resting.broker_order_id)]["status"] == "Cancelled"
    status_reads = [
        r for r in fake.requests[before:] if r["path"].startswith("iserver/account/order/status/")
    ]
    assert len(status_reads) == 3  # two PendingCancel answers, then Cancelled
