"""The Unusual Whales adapter through `requests` against a local server answering in the
spec's shapes (uw-api-spec.yaml from https://api.unusualwhales.com/api/openapi; fixtures in
tests/fixtures/unusual_whales/). No state table here: see test_unusual_whales_shared.py."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib.adapters.unusual_whales import UnusualWhales, minute_reset_s
from chalicelib.ports import FlowUnavailable
from tests.fakes.unusual_whales_server import FLOW_ALERTS, load_fixture
from tests.flow.conftest import NOW, TOKEN, alert_row, darkpool_row, make_client


def test_flow_alerts_parse_the_spec_example_into_typed_prints(uw, clock):
    # Spec: components.schemas["Flow Alert"].example — decimals as strings, counts as ints.
    prints = make_client(uw, clock).flow_alerts(("MSFT",))

    assert len(prints) == 1
    p = prints[0]
    assert (p.symbol, p.option_symbol, p.option_type) == ("MSFT", "MSFT231222C00375000", "call")
    assert p.created_at == datetime(2023, 12, 12, 16, 35, 52, 168490, tzinfo=UTC)
    assert (p.premium_usd, p.ask_side_premium_usd, p.bid_side_premium_usd) == (
        186705.0,
        151875.0,
        405.0,
    )
    assert (p.size, p.trade_count, p.is_sweep, p.alert_rule) == (461, 32, True, "RepeatedHits")
    assert (p.strike, p.expiry, p.price, p.underlying_price) == (
        375.0,
        date(2023, 12, 22),
        4.05,
        372.99,
    )
    assert (p.volume, p.open_interest) == (2442, 7913)
    assert p.bullish_premium_usd == 151875.0  # a call bought at the ask
    sent = uw.calls(FLOW_ALERTS)[0]
    assert sent["authorized"]
    assert sent["query"] == {"ticker_symbol": "MSFT", "limit": "100"}


def test_filters_go_to_the_vendor_in_its_own_parameter_names(uw, clock):
    uw.alerts = [
        alert_row(option_chain="AAPL260320C00200000", ticker="AAPL", created_at=NOW),
        alert_row(ticker="AAPL", type="put", option_chain="AAPL260320P00180000", created_at=NOW),
        alert_row(
            ticker="AAPL", has_sweep=False, option_chain="AAPL260320C00210000", created_at=NOW
        ),
        alert_row(
            ticker="AAPL", total_premium="9000", option_chain="AAPL260320C00220000", created_at=NOW
        ),
        alert_row(ticker="AAPL", created_at=NOW - timedelta(hours=2)),
    ]
    since = NOW - timedelta(minutes=30)

    prints = make_client(uw, clock).flow_alerts(
        ("AAPL", "MSFT"),
        newer_than=since,
        min_premium=100_000,
        is_sweep=True,
        side="ask",
        option_type="call",
        limit=500,
    )

    assert [p.option_symbol for p in prints] == ["AAPL260320C00200000"]
    assert uw.calls(FLOW_ALERTS)[0]["query"] == {
        "ticker_symbol": "AAPL,MSFT",
        "newer_than": str(int(since.timestamp())),  # spec NewerThan: unix seconds accepted
        "min_premium": "100000",
        "is_sweep": "true",
        "is_ask_side": "true",
        "is_call": "true",
        "limit": "200",  # the spec's maximum ("Default 100 Max 200 Min 1")
    }


def test_darkpool_ticks_and_tide_parse_the_spec_examples(uw, clock):
    client = make_client(uw, clock)

    dark = client.darkpool("QID")
    ticks = client.net_prem_ticks("AAPL")
    tide = client.market_tide()

    assert [(d.price, d.size, d.premium_usd) for d in dark] == [
        (18.9904, 6400, 121538.56),
        (18.99, 18600, 353214.0),
    ]
    assert (dark[0].nbbo_bid, dark[0].nbbo_ask, dark[0].day_volume) == (18.99, 19.0, 9946819)
    assert dark[0].tracking_id == "71984388012245"
    assert dark[0].executed_at == datetime(2025, 5, 2, 13, 42, 12, tzinfo=UTC)
    assert [(t.net_call_premium, t.net_put_premium) for t in ticks] == [
        (2234.0, -11106.0),
        (3234.0, -9106.0),
    ]
    assert ticks[0].time == datetime(2025, 3, 21, 19, 58, tzinfo=UTC)
    assert ticks[0].net_delta == pytest.approx(26294.858179642318)
    # Market tide stamps New York time: "2023-09-08 09:30:00-04:00" is 13:30 UTC.
    assert tide[0].time == datetime(2023, 9, 8, 13, 30, tzinfo=UTC)
    assert (tide[0].net_call_premium, tide[0].net_put_premium, tide[0].net_volume) == (
        660338.0,
        -547564.0,
        23558,
    )


def test_unknown_fields_are_ignored(uw, clock):
    uw.alerts = [alert_row(brand_new_field={"nested": [1, 2]}, iv_start="0.31", sector="Tech")]
    uw.darkpool["QID"] = [darkpool_row(some_future_flag=True)]

    client = make_client(uw, clock)

    assert [p.premium_usd for p in client.flow_alerts()] == [186705.0]
    assert [d.size for d in client.darkpool("QID")] == [6400]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"total_premium": "abc"}, "total_premium is 'abc', not a number"),
        ({"total_premium": "NaN"}, "total_premium is 'NaN', not a number"),
        ({"total_premium": "1e999"}, "not a finite number"),
        ({"total_premium": True}, "total_premium is True, not a number"),
        ({"total_premium": "-5"}, "total_premium is -5, below 0"),
        ({"total_premium": None}, "total_premium is missing"),
        ({"total_ask_side_prem": [1]}, "total_ask_side_prem is '[1]', not a number"),
        ({"total_size": "4.5"}, "total_size is '4.5', not a whole number"),
        ({"created_at": "yesterday"}, "created_at is 'yesterday', not a time"),
        ({"created_at": None}, "created_at is missing"),
        ({"type": "straddle"}, "type is 'straddle', not call or put"),
        ({"has_sweep": "maybe"}, "has_sweep is 'maybe', not true or false"),
        ({"expiry": "2023-13-45"}, "expiry is '2023-13-45', not a date"),
    ],
)
def test_a_malformed_row_is_skipped_with_a_logged_reason(uw, clock, caplog, fields, reason):
    good = alert_row(option_chain="MSFT231222C00380000")
    uw.alerts = [alert_row(**fields), good]

    with caplog.at_level(logging.WARNING, logger="chalicelib.adapters.unusual_whales"):
        prints = make_client(uw, clock).flow_alerts()

    assert [p.option_symbol for p in prints] == ["MSFT231222C00380000"]
    assert reason in caplog.text


def test_a_row_that_is_not_an_object_is_skipped(uw, clock, caplog):
    uw.alerts = ["MSFT", 42, alert_row()]

    with caplog.at_level(logging.WARNING):
        prints = make_client(uw, clock).flow_alerts()

    assert len(prints) == 1
    assert "row is str, not an object" in caplog.text


def test_a_darkpool_print_without_size_or_price_is_skipped(uw, clock, caplog):
    uw.darkpool["QID"] = [darkpool_row(size=0), darkpool_row(price="-1"), darkpool_row()]

    with caplog.at_level(logging.WARNING):
        assert len(make_client(uw, clock).darkpool("QID")) == 1
    assert caplog.text.count("is not a trade") == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<html><body>502 Bad Gateway</body></html>", "the answer is not JSON"),
        ('{"result": []}', 'the answer is not {"data": [...]}'),
        ('{"data": {"ticker": "MSFT"}}', 'the answer is not {"data": [...]}'),
        ("[1, 2, 3]", 'the answer is not {"data": [...]}'),
        ("", "the answer is not JSON"),
    ],
)
def test_a_garbage_body_is_flow_unavailable_and_not_retried(uw, clock, body, reason):
    uw.inject(FLOW_ALERTS, status=200, body=body, content_type="application/json")

    with pytest.raises(FlowUnavailable, match=reason.replace("[", r"\[").replace("{", r"\{")):
        make_client(uw, clock).flow_alerts()
    assert len(uw.calls(FLOW_ALERTS)) == 1


def test_a_429_storm_is_retried_after_the_vendors_retry_after(uw, clock):
    # UW's own client reads Retry-After (seconds) from a 429 (unusual-whales-official-mcp
    # src/client.ts); we wait exactly that long, inside the call's budget.
    uw.inject(
        FLOW_ALERTS,
        status=429,
        body='{"msg": "Too many requests"}',
        headers={"Retry-After": "2"},
        times=2,
    )

    prints = make_client(uw, clock, timeout_s=10.0).flow_alerts()

    assert len(prints) == 1
    assert clock.sleeps == [2.0, 2.0]
    assert len(uw.calls(FLOW_ALERTS)) == 3


def test_a_429_longer_than_the_budget_gives_up_at_once(uw, clock):
    uw.inject(FLOW_ALERTS, status=429, body="{}", headers={"Retry-After": "30"}, times=5)

    with pytest.raises(FlowUnavailable, match=r"rate limited \(429\)"):
        make_client(uw, clock, timeout_s=2.0).flow_alerts()

    assert clock.sleeps == []  # no wait that would end past the deadline
    assert len(uw.calls(FLOW_ALERTS)) == 1


def test_a_429_without_retry_after_uses_the_minute_reset_header(uw, clock):
    uw.inject(FLOW_ALERTS, status=429, body="{}", headers={"x-uw-req-per-minute-reset": "3"})

    make_client(uw, clock, timeout_s=10.0).flow_alerts()

    assert clock.sleeps == [3.0]


def test_server_errors_are_retried_with_exponential_backoff(uw, clock):
    # A 500 is plain text (spec: "Error Message on an internal server error.").
    uw.inject(FLOW_ALERTS, status=500, body="Something went wrong", times=2)

    prints = make_client(uw, clock, backoff_s=0.25).flow_alerts()

    assert len(prints) == 1
    assert clock.sleeps == [0.25, 0.5]


def test_server_errors_past_the_attempts_are_flow_unavailable(uw, clock):
    uw.inject(FLOW_ALERTS, status=503, body="down", times=10)

    with pytest.raises(FlowUnavailable, match="server error 503"):
        make_client(uw, clock, attempts=3).flow_alerts()
    assert len(uw.calls(FLOW_ALERTS)) == 3


def test_a_wrong_token_is_refused_once_and_the_token_never_shows(uw, clock, caplog):
    with caplog.at_level(logging.DEBUG), pytest.raises(FlowUnavailable) as raised:
        make_client(uw, clock, token="not-the-token-xyz").flow_alerts()

    assert "401" in str(raised.value)
    assert len(uw.calls(FLOW_ALERTS)) == 1
    assert "not-the-token-xyz" not in str(raised.value) + caplog.text
    assert TOKEN not in caplog.text


def test_a_422_says_what_the_vendor_said(uw, clock):
    error = load_fixture("error_422.json")  # spec: components.schemas["Error Message"].example
    uw.inject("/api/darkpool/", status=422, body=json.dumps(error), content_type="application/json")

    with pytest.raises(FlowUnavailable, match="422 Invalid path input: MSFT12"):
        make_client(uw, clock).darkpool("MSFT")


def test_the_fake_refuses_what_the_spec_refuses(uw):
    # The server checks the spec's query parameters, so an adapter bug would show as a 422.
    import requests

    answer = requests.get(
        uw.url + FLOW_ALERTS,
        params={"is_sweep": "true", "limit": "abc"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 422
    assert "limit=abc" in answer.json()["msg"]


def test_a_ticker_that_is_not_one_never_reaches_the_path(uw, clock):
    with pytest.raises(FlowUnavailable, match="not a ticker"):
        make_client(uw, clock).darkpool("../../api/market/market-tide")
    assert uw.calls() == []


def test_a_slow_vendor_raises_within_the_budget(uw):
    # Real clock: the request's own timeout is what is left of the 0.3 s budget.
    uw.inject(FLOW_ALERTS, status=200, body='{"data": []}', delay_s=2.0, times=3)
    client = UnusualWhales(TOKEN, base_url=uw.url, timeout_s=0.3)

    with pytest.raises(FlowUnavailable, match="no answer within"):
        client.flow_alerts()


def test_usage_headers_are_kept(uw, clock):
    client = make_client(uw, clock)
    client.flow_alerts()
    assert client.usage["x-uw-daily-req-count"] == "1"
    assert client.usage["x-uw-token-req-limit"] == "20000"


@pytest.mark.parametrize(
    ("raw", "seconds"), [("60", 60.0), ("15", 15.0), ("42000", 42.0), (None, None), ("x", None)]
)
def test_minute_reset_reads_seconds_or_milliseconds(raw, seconds):
    assert minute_reset_s(raw) == seconds


def test_a_flood_of_bad_rows_logs_a_few_and_counts_the_rest(uw, clock, caplog):
    uw.alerts = [alert_row(total_premium="x") for _ in range(40)]

    with caplog.at_level(logging.WARNING, logger="chalicelib.adapters.unusual_whales"):
        assert make_client(uw, clock).flow_alerts() == []

    assert caplog.text.count("not a number") == 5
    assert "skipped 40 flow alert rows in all" in caplog.text
