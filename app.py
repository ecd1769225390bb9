"""flowtrader's Lambdas: HTTP routes, the queue worker and schedules.

Each handler parses its input, calls one service and maps the result to a response. Nothing
is imported here beyond Chalice and the composition root: services, pydantic models,
settings and adapters (boto3, vendor SDKs) load on first use, so a cold start pays only for
what the invoked handler touches.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from chalice import Chalice, Cron, Rate, Response

from chalicelib import __version__, bootstrap

app = Chalice(app_name="flowtrader")
app.log.setLevel(logging.INFO)

WEBHOOK_CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",  # curl -d without a content type
]


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json"})


def _source_ip() -> str | None:
    context = app.current_request.context or {}
    return (context.get("identity") or {}).get("sourceIp")


@app.route("/webhook", methods=["POST"], content_types=WEBHOOK_CONTENT_TYPES)
def webhook() -> Response:
    from chalicelib.domain import utc_now
    from chalicelib.services.ingest_alert import WebhookRejected, ingest_alert

    c = bootstrap.container()
    try:
        result = ingest_alert(
            app.current_request.raw_body or b"",
            _source_ip(),
            settings=c.settings,
            store=c.alert_store,
            queue=c.alert_queue,
            now=utc_now(),
        )
    except WebhookRejected as rejected:
        return _json(rejected.status, rejected.body())
    if result.status == "duplicate":
        return _json(200, {"status": "duplicate", "alert_id": result.alert_id})
    return _json(202, {"status": "accepted", "alert_id": result.alert_id})


def _authorized() -> bool:
    expected = bootstrap.container().settings.api_token.get_secret_value()
    header = (app.current_request.headers or {}).get("authorization", "")
    scheme, _, token = header.partition(" ")
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), expected.encode())
    )


def _known_alert_id(alert_id: str) -> bool:
    """Alert ids are ULIDs (26 ASCII letters and digits); text that could be none names no
    alert and is never sent to the table (DynamoDB refuses keys over 2 KB with an error)."""
    return 0 < len(alert_id) <= 64 and alert_id.isascii() and alert_id.isalnum()


def _no_such_alert(alert_id: str) -> Response:
    shown = alert_id if _known_alert_id(alert_id) else "with that id (ids are 26-character ULIDs)"
    return _json(404, {"error": f"no alert {shown}"})


def _unauthorized() -> Response:
    return Response(
        body={"error": "missing or wrong bearer token"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


@app.route("/api/alerts/{alert_id}", methods=["GET"])
def get_alert(alert_id: str) -> Response:
    if not _authorized():
        return _unauthorized()
    if not _known_alert_id(alert_id):
        return _no_such_alert(alert_id)
    record = bootstrap.container().alert_store.get(alert_id)
    if record is None:
        return _no_such_alert(alert_id)
    return _json(200, record)


@app.route("/api/health", methods=["GET"])
def health() -> Response:
    from chalicelib.services.health import check_health

    report = check_health(bootstrap.container())
    report["version"] = __version__
    return _json(200 if report["ready"] else 503, report)


@app.on_sqs_message(queue="flowtrader-alerts", batch_size=1, maximum_concurrency=2)
def process_alerts(event: Any) -> dict[str, Any]:
    """Process a batch of queued alerts; failed records are reported for redelivery."""
    from chalicelib.services.queue_worker import handle_batch

    raw = event.to_dict() if hasattr(event, "to_dict") else event
    return handle_batch(raw, bootstrap.container())


@app.route("/api/orders", methods=["GET"])
def list_orders() -> Response:
    """Recorded orders, newest first (`?limit=`, default 100, at most 500)."""
    from chalicelib.services.portfolio import recent_orders

    if not _authorized():
        return _unauthorized()
    raw = (app.current_request.query_params or {}).get("limit", "100")
    # ASCII digits only: str.isdigit() alone accepts "²", which int() refuses.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6):
        return _json(400, {"error": "limit must be a whole number (1 to 500)", "field": "limit"})
    return _json(200, recent_orders(bootstrap.container().state_store, int(raw)))


@app.route("/api/positions", methods=["GET"])
def list_positions() -> Response:
    """The positions snapshot written after each order."""
    from chalicelib.services.portfolio import open_positions

    if not _authorized():
        return _unauthorized()
    return _json(200, open_positions(bootstrap.container().state_store))


@app.route("/api/alerts/{alert_id}/journal", methods=["GET"])
def get_alert_journal(alert_id: str) -> Response:
    """Every journaled step of one alert: decision, each gate verdict, orders, outcome."""
    from chalicelib.services.portfolio import alert_journal

    if not _authorized():
        return _unauthorized()
    if not _known_alert_id(alert_id):
        return _no_such_alert(alert_id)
    return _json(200, alert_journal(bootstrap.container().state_store, alert_id))


@app.schedule(Rate(1, unit=Rate.MINUTES))
def requeue_pending(event: Any) -> dict[str, Any]:
    """Queue alerts whose enqueue failed after they were stored, or that nobody took."""
    from chalicelib.domain import utc_now
    from chalicelib.services.ingest_alert import requeue_pending as sweep

    c = bootstrap.container()
    depth = c.alert_queue.depth()  # first: see requeue_pending
    requeued = sweep(c.alert_store, c.alert_queue, utc_now(), waiting=depth)
    if requeued:
        app.log.info(json.dumps({"requeued": requeued}))
    return {"requeued": len(requeued)}


@app.route("/api/pnl", methods=["GET"])
def get_pnl() -> Response:
    """Realized P/L per closed trade and symbol, unrealized, the broker's day P/L
    (`?date=YYYY-MM-DD`, or `?from=&to=`; default today, New York trading day)."""
    from chalicelib.domain import utc_now
    from chalicelib.rules.market_calendar import trading_date
    from chalicelib.services.pnl import BadRange, parse_range, pnl_report

    if not _authorized():
        return _unauthorized()
    today = trading_date(utc_now())
    try:
        start, end = parse_range(dict(app.current_request.query_params or {}), today)
    except BadRange as exc:
        return _json(400, {"error": str(exc)})
    return _json(200, pnl_report(bootstrap.container().state_store, start, end, today))


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sync_portfolio(event: Any) -> dict[str, Any]:
    """The broker is the truth: book fills, refresh positions and order statuses, flag drift."""
    from chalicelib.domain import utc_now
    from chalicelib.services.sync_portfolio import scheduled_sync

    c = bootstrap.container()
    result = scheduled_sync(c.broker, c.state_store, utc_now(), notifier=c.notifier)
    if result.get("trades") or result.get("drift"):
        app.log.info(json.dumps(result, default=str))
    return result


# --- market data, settings switch, day type (issue 11) ---
# (its additions go below, above the next section)


@app.route("/api/settings", methods=["GET"])
def get_settings() -> Response:
    """The settings switchable at run time (the market-data source), what is in force,
    the choices and the recent changes."""
    from chalicelib.services.runtime_settings import effective

    if not _authorized():
        return _unauthorized()
    c = bootstrap.container()
    return _json(200, effective(c.runtime_settings, c.runtime_defaults))


@app.route("/api/settings", methods=["PUT"], content_types=["application/json"])
def put_settings() -> Response:
    """Switch a run-time setting: `{"data_source": "alpaca"}` (optionally `"version": N`
    from the GET, to refuse a change made meanwhile). 400 bad, 409 conflict, 422 unusable."""
    from chalicelib.adapters.dynamodb_settings import Conflict
    from chalicelib.domain import utc_now
    from chalicelib.services.notify import Notice, send
    from chalicelib.services.runtime_settings import BadSettings, UnusableSetting, change, effective

    if not _authorized():
        return _unauthorized()
    c = bootstrap.container()
    try:
        body = app.current_request.json_body
    except Exception:
        return _json(400, {"error": "body is not JSON"})
    try:
        changed = change(
            c.runtime_settings,
            body,
            now=utc_now(),
            by="api",
            usable=c.why_unusable,
            defaults=c.runtime_defaults,
            journal=c.state_store,
        )
    except BadSettings as exc:
        return _json(400, {"error": str(exc)})
    except UnusableSetting as exc:
        return _json(422, {"error": str(exc)})
    except Conflict as exc:
        return _json(409, {"error": str(exc)})
    if changed:
        text = ", ".join(f"{k} → {v}" for k, v in changed.items())
        send(c.notifier, Notice("settings", "flowtrader settings changed", f"Settings: {text}"))
    return _json(200, {"changed": changed, **effective(c.runtime_settings, c.runtime_defaults)})


def _market_data(c: Any) -> Any:
    """The MarketData source in force (`current_data_source`, switchable at run time), or
    None where this build has no market data."""
    build = getattr(c, "market_data", None)
    return None if build is None else build(c.current_data_source())


def _day_type_at(c: Any) -> Any:
    from chalicelib.services.classify_day import parse_new_york_time

    return parse_new_york_time(c.settings.day_type_at)


# Every minute of 13:00-21:59 UTC on weekdays: 09:30-16:00 New York in daylight and in
# standard time. The service acts once a day, at the first tick at/after FLOWTRADER_DAY_TYPE_AT
# (New York), so the time is right across DST changes (see services/classify_day.py).
@app.schedule(Cron("*", "13-21", "?", "*", "MON-FRI", "*"))
def classify_day(event: Any) -> dict[str, Any]:
    """Classify today's session (trend_up / trend_down / choppy / no_trade) once a day."""
    from chalicelib.domain import utc_now
    from chalicelib.services.classify_day import scheduled_classification

    c = bootstrap.container()
    try:
        market = _market_data(c)
    except Exception as exc:  # a source that cannot be built (keys, file): say which, retry
        return {"classified": False, "reason": f"market data source unusable: {exc}"}
    result = scheduled_classification(
        market, c.state_store, c.settings.day_type_symbol, utc_now(), _day_type_at(c)
    )
    if result.get("classified") or "not a trading day" not in str(result.get("reason")):
        app.log.info(json.dumps({"classify_day": result}, default=str))
    return result


@app.route("/api/day-type", methods=["GET"])
def get_day_type() -> Response:
    """Today's stored day classification with its features (`?date=YYYY-MM-DD` for another
    New York trading day), or 404 saying why there is none."""
    from datetime import date

    from chalicelib.domain import utc_now
    from chalicelib.rules.market_calendar import trading_date

    if not _authorized():
        return _unauthorized()
    c = bootstrap.container()
    raw = (app.current_request.query_params or {}).get("date")
    try:
        day = date.fromisoformat(raw) if raw else trading_date(utc_now())
    except ValueError:
        return _json(400, {"error": "date must be YYYY-MM-DD", "field": "date"})
    found = c.state_store.day_classification(day)
    if found is None:
        return _json(
            404,
            {
                "error": f"{day.isoformat()} is not classified",
                "reason": f"the schedule classifies each trading day at "
                f"{c.settings.day_type_at} New York (FLOWTRADER_DAY_TYPE_AT) from "
                f"{c.settings.day_type_symbol}; POST /api/day-type/refresh classifies now",
            },
        )
    return _json(200, found.model_dump(mode="json"))


@app.route("/api/day-type/refresh", methods=["POST"])
def refresh_day_type() -> Response:
    """Classify today now and store it. Body (optional JSON): `{"through_now": true}` uses
    every bar so far instead of stopping at FLOWTRADER_DAY_TYPE_AT."""
    from chalicelib.domain import utc_now
    from chalicelib.ports import MarketDataUnavailable
    from chalicelib.rules.day_type import DayTypeUnavailable
    from chalicelib.services.classify_day import NotATradingDay, classify_day_now

    if not _authorized():
        return _unauthorized()
    c = bootstrap.container()
    try:
        body = app.current_request.json_body or {}
    except Exception:  # Chalice raises BadRequestError on a body that is not JSON
        return _json(400, {"error": "the body must be JSON (or empty)"})
    through_now = body.get("through_now", False) if isinstance(body, dict) else None
    if not isinstance(through_now, bool):
        return _json(400, {"error": "through_now must be true or false", "field": "through_now"})
    try:
        market = _market_data(c)
    except Exception as exc:  # construction checks keys/files; its message says which
        return _json(503, {"error": f"market data source unusable: {exc}"})
    if market is None:
        return _json(503, {"error": "no market data source is configured"})
    try:
        result = classify_day_now(
            market,
            c.state_store,
            c.settings.day_type_symbol,
            utc_now(),
            _day_type_at(c),
            through_now=through_now,
        )
    except NotATradingDay as exc:
        return _json(409, {"error": str(exc)})
    except DayTypeUnavailable as exc:
        return _json(409, {"error": f"cannot classify yet: {exc}"})
    except MarketDataUnavailable as exc:
        return _json(503, {"error": f"market data unavailable: {exc}"})
    return _json(200, result.model_dump(mode="json"))


@app.route("/api/bars", methods=["GET"])
def get_bars() -> Response:
    """Recent bars from the current data source (`?symbol=AMZN&timeframe=1Min&limit=390`)."""
    from chalicelib.domain import utc_now
    from chalicelib.ports import MarketDataUnavailable
    from chalicelib.services.bars import BadBarsQuery, parse_bars_query, recent_bars

    if not _authorized():
        return _unauthorized()
    try:
        symbol, timeframe, limit = parse_bars_query(dict(app.current_request.query_params or {}))
    except BadBarsQuery as bad:
        return _json(400, {"error": str(bad), "field": bad.field})
    try:
        market = bootstrap.container().market_data()
        return _json(200, recent_bars(market, symbol, timeframe, limit, utc_now()))
    except (MarketDataUnavailable, ValueError) as exc:  # ValueError: a source misconfigured
        return _json(503, {"error": f"market data unavailable: {exc}"})


# --- price poll and replay (issue 11) ---
# (its additions go below, above the next section)


# --- flow (issue 12) ---
# (its additions go below, above the next section)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def scan_flow(event: Any) -> dict[str, Any]:
    """Record "smart money" flow highlights; notify those on the watchlist (in the session)."""
    from chalicelib.domain import utc_now
    from chalicelib.services.flow_scan import current_watchlist
    from chalicelib.services.flow_scan import scan_flow as scan

    c = bootstrap.container()
    s = c.settings
    store = bootstrap.flow_highlights(c)
    watchlist, _ = current_watchlist(store, s.watchlist)
    result = scan(
        bootstrap.flow_source(c, timeout_s=s.uw_scan_timeout_s),
        store,
        c.notifier,
        utc_now(),
        rules=bootstrap.flow_scan_rules(s),
        watchlist=watchlist,
        lookback_minutes=s.flow_scan_lookback_minutes,
        budget_s=s.flow_scan_budget_s,
    )
    if result.get("new") or result.get("errors"):
        app.log.info(json.dumps({"scan_flow": result}, default=str))
    return result


def _whole_number(name: str, default: int, top: int) -> int | Response:
    raw = (app.current_request.query_params or {}).get(name, str(default))
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= top):
        return _json(400, {"error": f"{name} must be a whole number (1 to {top})", "field": name})
    return int(raw)


@app.route("/api/flow", methods=["GET"])
def list_flow() -> Response:
    """Recent flow highlights, newest first (`?hours=` 1..168, `?limit=` 1..500, `?symbol=`)."""
    from chalicelib.domain import utc_now
    from chalicelib.services.flow_scan import TICKER, flow_view

    if not _authorized():
        return _unauthorized()
    hours = _whole_number("hours", 24, 168)
    limit = _whole_number("limit", 100, 500)
    if isinstance(hours, Response):
        return hours
    if isinstance(limit, Response):
        return limit
    symbol = (app.current_request.query_params or {}).get("symbol", "").strip().upper() or None
    if symbol is not None and not TICKER.match(symbol):
        return _json(400, {"error": "symbol must be a ticker, e.g. AAPL", "field": "symbol"})
    c = bootstrap.container()
    source = bootstrap.flow_source(c)
    body = flow_view(
        bootstrap.flow_highlights(c),
        source.name if source else None,
        utc_now(),
        hours=hours,
        limit=limit,
        symbol=symbol,
    )
    return _json(200, body)


@app.route("/api/watchlist", methods=["GET"])
def get_watchlist() -> Response:
    """The tickers whose flow highlights are notified, and where the list came from."""
    from chalicelib.services.flow_scan import current_watchlist

    if not _authorized():
        return _unauthorized()
    c = bootstrap.container()
    symbols, origin = current_watchlist(bootstrap.flow_highlights(c), c.settings.watchlist)
    return _json(200, {"watchlist": list(symbols), "source": origin})


@app.route("/api/watchlist", methods=["PUT"], content_types=["application/json"])
def put_watchlist() -> Response:
    """Replace the watchlist: `{"symbols": ["AAPL", "MSFT"]}` (`[]` empties it)."""
    from chalicelib.domain import utc_now
    from chalicelib.services.flow_scan import BadWatchlist, parse_symbols

    if not _authorized():
        return _unauthorized()
    raw = app.current_request.raw_body or b""
    if len(raw) > 16 * 1024:
        return _json(413, {"error": "body too large"})
    try:
        body = json.loads(raw)
    except ValueError:
        return _json(400, {"error": 'body must be JSON: {"symbols": ["AAPL", "MSFT"]}'})
    if not isinstance(body, dict) or "symbols" not in body:
        return _json(422, {"error": 'body must be {"symbols": [...]}', "field": "symbols"})
    try:
        symbols = parse_symbols(body["symbols"])
    except BadWatchlist as exc:
        return _json(422, {"error": str(exc), "field": "symbols"})
    bootstrap.flow_highlights(bootstrap.container()).set_watchlist(symbols, utc_now())
    return _json(200, {"watchlist": list(symbols), "source": "state"})


# --- score, notes and ranking (issue 12) ---
# (its additions go below, above the next section)


# --- dashboard and actions (issue 13) ---
# (its additions go below, above the next section)


# --- reports and alert channels (issue 13) ---
# (its additions go below, above the next section)


# --- ibkr (issue 14) ---
# (its additions go below, above the next section)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def ibkr_tickle(event: Any) -> dict[str, Any]:
    """Keep the IBKR brokerage session alive (IBKR expects `/tickle` about every 60 s);
    returns at once when IBKR is neither the broker nor the data source."""
    result = bootstrap.ibkr_keep_alive(bootstrap.container())
    if "error" in result:
        app.log.warning("ibkr tickle: %s", result["error"])
    return result


# --- tradestation (issue 14) ---
# (its additions go below, above the next section)
