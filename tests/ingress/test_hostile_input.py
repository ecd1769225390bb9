"""Issue 9, parts 1 and 2, through app.py on moto's server: bad input gets a 4xx naming the
field and changes nothing; nothing untradeable gets through.

TradingView's alert variables, as its documentation describes them (cited for the freshness
cases below):

- "How to use a variable value in alert", TradingView support,
  https://www.tradingview.com/support/solutions/43000531021-how-to-use-a-variable-value-in-alert/
  `{{ticker}}` is the symbol ("AAPL, BTCUSD"), `{{exchange}}` its exchange ("NASDAQ, NYSE,
  CME"; delayed data ends in "_DL" or "_DLY", e.g. "NYMEX_DL"); `{{time}}` the time of the
  bar the alert triggered on, "in UTC, formatted as yyyy-MM-ddTHH:mm:ssZ"; `{{timenow}}` the
  "current fire time of the alert, formatted in the same way as {{time}}", to the second;
  `{{interval}}` the interval (timeframe/resolution) of the chart.
- "Introducing variables in alerts", TradingView blog, 2019-10-31,
  https://www.tradingview.com/blog/en/introducing-variables-in-alerts-14880/ (the same list).
- Pine Script FAQ, "Times, dates, and sessions",
  https://tradingview.com/pine-script-docs/faq/times-dates-and-sessions/ : the `time`
  built-in "represents the time of the bar open" — so `{{time}}` of an alert on a 1-hour
  bar's close is an hour before the alert fires.
- Interval strings are Pine's timeframe strings: a bare number of minutes ("1", "60",
  "240"), "S" for seconds ("30S"), "D"/"W"/"M" with an optional count ("1D", "W", "3M"); see
  https://stackoverflow.com/questions/65604875 for the seconds form.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import API_TOKEN
from tests.ingress.helpers import alert_body, post, queued_alert_ids, stored_items, tv_time

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def _nothing_stored() -> bool:
    return (
        stored_items(os.environ["FLOWTRADER_ALERTS_TABLE"]) == []
        and queued_alert_ids(os.environ["FLOWTRADER_QUEUE_URL"]) == []
    )


def _errors(response) -> list[dict[str, str]]:
    return json.loads(response.body).get("errors", [])


def _refused(response, status: int, field: str, *words: str) -> None:
    assert response.status_code == status, response.body
    errors = _errors(response)
    messages = [e["message"] for e in errors if e["field"] == field]
    assert messages, errors
    assert all(any(w in m for m in messages) for w in words), errors
    assert _nothing_stored()


def _raw(body: dict, **raw_fields: str) -> bytes:
    """The body as JSON text, with fields whose JSON is given verbatim (numbers, nesting)."""
    text = json.dumps(body)[:-1]
    for name, literal in raw_fields.items():
        text += f', "{name}": {literal}'
    return (text + "}").encode()


# --- the /api routes -------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["²", "¹²", "١٢", "-1", "1e3", "", " 5", "1" * 7, "5.0"])
def test_orders_limit_that_is_not_ascii_digits_is_400(client, limit):
    from urllib.parse import quote

    response = client.http.get(f"/api/orders?limit={quote(limit)}", headers=AUTH)

    assert response.status_code == 400
    assert json.loads(response.body)["field"] == "limit"


def test_orders_limit_in_digits_is_200(client):
    assert client.http.get("/api/orders?limit=5", headers=AUTH).status_code == 200


@pytest.mark.parametrize("route", ["/api/alerts/{}", "/api/alerts/{}/journal"])
@pytest.mark.parametrize("alert_id", ["x" * 3000, "%C3%A9t%C3%A9", "a%27OR%271", "01-02"])
def test_alert_routes_answer_404_for_text_that_is_no_alert_id_without_echoing_it(
    client, route, alert_id
):
    response = client.http.get(route.format(alert_id), headers=AUTH)

    assert response.status_code == 404
    assert "xxxxxxxx" not in response.body.decode()
    assert "OR" not in response.body.decode()


# --- bounded parsing -------------------------------------------------------------------


def test_unknown_field_nested_300_levels_is_422_naming_it(client):
    response = post(client, _raw(alert_body(), deep="[" * 300 + "]" * 300), "text/plain")

    _refused(response, 422, "deep", "nested deeper than 16 levels")


def test_nesting_too_deep_to_parse_is_400(client):
    response = post(client, _raw(alert_body(), deep="[" * 5000 + "]" * 5000), "text/plain")

    assert response.status_code == 400
    assert "nested too deeply" in json.loads(response.body)["error"]
    assert _nothing_stored()


def test_nesting_with_a_wrong_passphrase_is_401(client):
    body = alert_body(passphrase="wrong")

    response = post(client, _raw(body, deep="[" * 300 + "]" * 300), "text/plain")

    assert response.status_code == 401
    assert _nothing_stored()


@pytest.mark.parametrize("field", ["price", "quantity", "volume", "my_field", "ticker"])
def test_5000_digit_number_is_422_naming_the_field_with_the_right_passphrase(client, field):
    body = alert_body(**{field: None})

    response = post(client, _raw(body, **{field: "1" * 5000}), "text/plain")

    _refused(response, 422, field, "5000 characters")


@pytest.mark.parametrize("literal", ["1" * 5000, "0." + "1" * 5000, "1" * 5000 + "e-4999"])
def test_5000_digit_number_with_a_wrong_passphrase_is_401(client, literal):
    response = post(client, _raw(alert_body(passphrase="wrong"), price=literal), "text/plain")

    assert response.status_code == 401
    assert _nothing_stored()


def test_5000_digit_passphrase_is_401(client):
    body = alert_body(passphrase=None)

    response = post(client, _raw(body, passphrase="9" * 5000), "text/plain")

    assert response.status_code == 401


def test_long_numbers_are_never_converted():
    """int() refuses more than 4,300 digits (ValueError) and is quadratic below that: the
    parser must hand such numbers back unconverted, whatever their length."""
    from chalicelib.services.ingest_alert import parse_body, payload_problems

    payload = parse_body(b'{"n": ' + b"7" * 15000 + b', "f": 1e999}', max_bytes=16384)

    assert [p["field"] for p in payload_problems(payload)] == ["f", "n"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("field", ["price", "rsi"])
def test_non_finite_numbers_are_422_in_any_field(client, field, literal):
    response = post(client, _raw(alert_body(price=None), **{field: literal}), "text/plain")

    _refused(response, 422, field)


@pytest.mark.parametrize("field", ["time", "timenow"])
@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",
        "1850-01-01T00:00:00Z",
        "2999-01-01T15:30:00Z",
    ],
)
def test_times_outside_what_utc_can_hold_are_422(client, field, value):
    response = post(client, alert_body(**{field: value}))

    _refused(response, 422, field, "must be a time between")


# --- sane numbers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("price", 1e308, "between 0.0001 and 10,000,000"),
        ("price", 1e-320, "between 0.0001 and 10,000,000"),
        ("price", 0.00001, "between"),
        ("price", True, "must be a number, not true"),
        ("stop_loss", 1e-320, "between"),
        ("take_profit", 1e308, "between"),
        ("limit_price", 1e308, "between"),
        ("quantity", 1e308, "between 1e-09 and 10,000,000 shares"),
        ("quantity", 1e-320, "between"),
        ("quantity", -1, "positive"),
        ("quantity", False, "must be a number"),
        ("volume", 1e300, "from 0"),
        ("volume", -1, "from 0"),
    ],
)
def test_prices_and_quantities_outside_sane_bounds_are_422(client, field, value, words):
    response = post(client, alert_body(**{field: value}))

    _refused(response, 422, field, words)


# --- tradeable instruments -------------------------------------------------------------


@pytest.mark.parametrize(
    "ticker",
    [
        "X'OR'1'='1",
        "$(REBOOT)`ID`|X",
        "../../ETC/PASSWD",
        "<SCRIPT>ALERT(1)</SCRIPT>",
        "AA PL",
        "ＡＡＰＬ",
        "NASDAQ:ＡＡＰＬ",
        "ıBM",  # str.upper() would make it "IBM"
        "AAPL\x00",
        "NASDAQ:AAPL:X",
    ],
)
def test_tickers_that_are_no_ticker_are_422_and_nothing_is_stored(client, ticker):
    response = post(client, alert_body(ticker=ticker))

    _refused(response, 422, "ticker", "SYMBOL or EXCHANGE:SYMBOL")
    assert "SCRIPT" not in response.body.decode()


@pytest.mark.parametrize("ticker", ["CME_MINI:ES1!", "ES1!", "NQ1!", "CME:6E1!", "NYMEX_DL:CL1!"])
def test_futures_are_422_saying_this_broker_does_not_trade_them(client, ticker):
    response = post(client, alert_body(ticker=ticker))

    _refused(response, 422, "ticker", "futures are not tradeable with this broker")


@pytest.mark.parametrize(
    ("ticker", "words"),
    [
        ("BINANCE:BTCUSDT", "exchange BINANCE is not a US stock exchange"),
        ("FX:EURUSD", "exchange FX is not a US stock exchange"),
        ("OTC:GBTC", "accepted: AMEX, ARCA"),
        ("TOOLONG", "not a US stock symbol"),
        ("BRK.BBB", "not a US stock symbol"),
        ("NASDAQ:A1", "not a US stock symbol"),
    ],
)
def test_instruments_other_than_us_stocks_are_422(client, ticker, words):
    response = post(client, alert_body(ticker=ticker))

    _refused(response, 422, "ticker", words)


@pytest.mark.parametrize(
    ("ticker", "stored"),
    [
        ("NASDAQ:AAPL", "NASDAQ:AAPL"),
        ("nasdaq:aapl", "NASDAQ:AAPL"),
        ("AAPL", "AAPL"),
        ("NYSE:BRK.B", "NYSE:BRK.B"),
        ("AMEX:SPY", "AMEX:SPY"),
        ("ARCA:GLD", "ARCA:GLD"),
        ("BATS:IBIT", "BATS:IBIT"),
        ("NYSE_DL:IBM", "NYSE_DL:IBM"),
    ],
)
def test_us_stock_tickers_on_the_accepted_exchanges_are_202(client, ticker, stored):
    response = post(client, alert_body(ticker=ticker))

    assert response.status_code == 202, response.body
    from chalicelib import bootstrap

    record = bootstrap.container().alert_store.get(json.loads(response.body)["alert_id"])
    assert record["alert"]["ticker"] == stored


# --- unfilled placeholders -------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ticker", "{{exchange}}:{{ticker}}"),
        ("ticker", "NASDAQ:{{ticker}}"),
        ("action", "{{strategy.order.action}}"),
        ("market_position", "{{strategy.market_position}}"),
        ("prev_market_position", "{{strategy.prev_market_position}}"),
        ("order_type", "{{order_type}}"),
        ("price", "{{close}}"),
        ("quantity", "{{strategy.order.contracts}}"),
        ("time", "{{time}}"),
        ("timenow", "{{timenow}}"),
        ("interval", "{{interval}}"),
        ("strategy", "ORB {{strategy.name}}"),
        ("order_id", "{{strategy.order.id}}"),
        ("alert_id", "{{alert_id}}"),
        ("comment", 'RSI at {{plot("RSI")}}'),
        ("my_note", "{{plot_0}}"),
    ],
)
def test_unfilled_placeholder_in_any_field_is_422_naming_it(client, field, value):
    response = post(client, alert_body(**{field: value}))

    _refused(response, 422, field, "unfilled TradingView placeholder", value.split("{{")[1][:6])


def test_unfilled_placeholder_nested_in_an_unknown_field_is_422_naming_the_path(client):
    response = post(client, alert_body(meta={"tags": ["ok", "{{plot_1}}"]}))

    _refused(response, 422, "meta.tags.1", "{{plot_1}}")


def test_unquoted_unfilled_placeholder_is_400_naming_the_field(client):
    raw = _raw(alert_body(quantity=None), quantity="{{strategy.order.contracts}}")

    response = post(client, raw, "text/plain")

    assert response.status_code == 400
    error = json.loads(response.body)["error"]
    assert "quantity" in error
    assert "{{strategy.order.contracts}}" in error
    assert _nothing_stored()


# --- freshness: TradingView's clocks (see the module docstring) ------------------------


class _Ago:
    """A time relative to when the test runs (not to when it was collected)."""

    def __init__(self, **delta: float) -> None:
        self.delta = timedelta(**delta)

    def __repr__(self) -> str:
        return f"-{self.delta}"

    def __call__(self) -> str:
        return tv_time(datetime.now(UTC) - self.delta)


_ago = _Ago


def _resolved(fields: dict) -> dict:
    return {k: v() if isinstance(v, _Ago) else v for k, v in fields.items()}


@pytest.mark.parametrize(
    "fields",
    [
        {"timenow": _ago(seconds=10)},
        {"timenow": _ago(seconds=10), "time": _ago(hours=3), "interval": "60"},  # timenow wins
        {"time": _ago(minutes=59), "interval": "60"},  # a 1-hour bar's close fires 1 h late
        {"time": _ago(minutes=62), "interval": "60"},  # ... and 2 minutes of delivery
        {"time": _ago(hours=4, minutes=3), "interval": "240"},
        {"time": _ago(minutes=4), "interval": "30S"},
        {"time": _ago(hours=23), "interval": "1D"},
        {"time": _ago(hours=23), "interval": "D"},
        {"time": _ago(days=6), "interval": "W"},
        {"time": _ago(days=6), "interval": "1W"},
        {"time": _ago(days=29), "interval": "M"},
        {"time": _ago(minutes=3), "interval": None},  # the bar time alone, within 5 minutes
        {"time": None},  # no clock at all: not judged (deduplicated by body instead)
    ],
)
def test_fresh_alerts_are_202(client, fields):
    response = post(client, alert_body(**_resolved(fields)))

    assert response.status_code == 202, response.body


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"timenow": _ago(seconds=301)}, "timenow", "alerts older than 300 s are not traded"),
        ({"timenow": _ago(seconds=400), "time": _ago(seconds=30)}, "timenow", "fired"),
        ({"timenow": _ago(seconds=-60)}, "timenow", "in the future"),
        ({"time": _ago(minutes=66), "interval": "60"}, "time", "after its bar of '60' closed"),
        ({"time": _ago(minutes=6), "interval": "30S"}, "time", "bar opened"),
        ({"time": _ago(minutes=6), "interval": None}, "time", "no interval"),
        ({"time": _ago(minutes=6), "interval": "100T"}, "time", "interval '100T'"),
        ({"time": "2001-09-10T15:30:00Z"}, "time", "bar opened"),
        ({"time": "2199-01-01T15:30:00Z"}, "time", "in the future"),
        ({"time": _ago(seconds=-60), "interval": "1"}, "time", "in the future"),
        ({"time": _ago(days=2), "interval": "1D"}, "time", "send timenow"),
    ],
)
def test_stale_or_future_alerts_are_422_and_nothing_is_stored(client, fields, field, words):
    response = post(client, alert_body(**_resolved(fields)))

    _refused(response, 422, field, words)
    assert json.loads(response.body)["error"] == "the alert is not current; nothing was stored"


def test_max_alert_age_of_zero_turns_the_freshness_check_off(client, monkeypatch):
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_MAX_ALERT_AGE_S", "0")
    bootstrap.reset()

    response = post(client, alert_body(time="2001-09-10T15:30:00Z", interval="1"))

    assert response.status_code == 202


def test_max_alert_age_is_a_setting(client, monkeypatch):
    from chalicelib import bootstrap

    monkeypatch.setenv("FLOWTRADER_MAX_ALERT_AGE_S", "3600")
    bootstrap.reset()

    assert post(client, alert_body(timenow=_ago(minutes=50)())).status_code == 202
    assert post(client, alert_body(timenow=_ago(minutes=70)())).status_code == 422
