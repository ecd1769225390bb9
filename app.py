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
import os
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
    """The bearer token, or a dashboard session cookie (with its CSRF header on anything
    but a read: see `_dashboard_session_ok`)."""
    expected = bootstrap.container().settings.api_token.get_secret_value()
    header = (app.current_request.headers or {}).get("authorization", "")
    scheme, _, token = header.partition(" ")
    if (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), expected.encode())
    ):
        return True
    return not header and _dashboard_session_ok()


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


# A batch of up to 10: alerts that arrive together are decided in rank order (issue 12);
# FLOWTRADER_RANK_WINDOW_S (read here, when the app is packaged) lets SQS gather them.
@app.on_sqs_message(
    queue="flowtrader-alerts",
    batch_size=10,
    maximum_batching_window_in_seconds=int(os.environ.get("FLOWTRADER_RANK_WINDOW_S", "0")),
    maximum_concurrency=2,
)
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
        c = bootstrap.container()
        market = c.market_data(c.current_data_source())  # as switched by PUT /api/settings
        return _json(200, recent_bars(market, symbol, timeframe, limit, utc_now()))
    except (MarketDataUnavailable, ValueError) as exc:  # ValueError: a source misconfigured
        return _json(503, {"error": f"market data unavailable: {exc}"})


# --- price poll and replay (issue 11) ---
# (its additions go below, above the next section)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def price_poll(event: Any) -> dict[str, Any]:
    """The paper broker trades against the market: new bars of every symbol it holds or has
    orders in work its stops, targets and limits (only a simulated broker; in the session)."""
    from chalicelib.domain import utc_now
    from chalicelib.services.price_poll import scheduled_poll

    c = bootstrap.container()
    result = scheduled_poll(
        c.broker,
        lambda: c.market_data(c.current_data_source()),
        c.state_store,
        utc_now(),
        marks=c.poll_marks,
        notifier=c.notifier,
        clock=utc_now,
    )
    if result.get("filled") or result.get("errors"):
        app.log.info(json.dumps(result, default=str))
    return result


# --- flow (issue 12) ---
# (its additions go below, above the next section)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def scan_flow(event: Any) -> dict[str, Any]:
    """Record "smart money" flow highlights; notify those on the watchlist (in the session)."""
    result = bootstrap.run_flow_scan(bootstrap.container())
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


# 13:00 UTC on weekdays: 08:00 New York in winter, 09:00 in summer, before the 09:30 open.
@app.schedule(Cron(0, 13, "?", "*", "MON-FRI", "*"))
def premarket_note(event: Any) -> dict[str, Any]:
    """Today's pre-market note: kept for GET /api/notes/latest and sent by email (SNS)."""
    from chalicelib.domain import utc_now
    from chalicelib.services.premarket_note import premarket_note as write_note

    c = bootstrap.container()
    s = c.settings
    note = write_note(
        now=utc_now(),
        symbols=[x.strip().upper() for x in s.note_symbols.split(",") if x.strip()],
        market_data=bootstrap.note_market_data(c),
        state=c.state_store,
        store=bootstrap.note_store(c),
        notifier=c.notifier,
        writer=bootstrap.scorer(c),
        budget=bootstrap.score_budget(c),
        highlights=bootstrap.note_flow_highlights(c),
        daily_cap_usd=s.score_daily_cost_cap_usd,
        max_output_tokens=s.note_max_output_tokens,
    )
    if note is None:
        return {"note": None, "reason": "market closed today"}
    return {"note": note.day.isoformat(), "source": note.source}


@app.route("/api/notes/latest", methods=["GET"])
def latest_note() -> Response:
    """The latest pre-market note (404 until the first one is written)."""
    if not _authorized():
        return _unauthorized()
    note = bootstrap.note_store(bootstrap.container()).latest_note()
    if note is None:
        return _json(404, {"error": "no pre-market note yet"})
    return _json(200, note.model_dump(mode="json"))


# --- dashboard and actions (issue 13) ---
# (its additions go below, above the next section)

# The dashboard: a login page, then one page of panels over the /api routes (chalicelib/
# dashboard/; docs: README "Dashboard"). A session is a random id in an HttpOnly,
# SameSite=Strict cookie (services/dashboard_session); every state-changing request made
# with it must carry the session's CSRF token in X-CSRF-Token.
DASHBOARD_FILES = {
    # name: (content type, public before login)
    "login.js": ("text/javascript; charset=utf-8", True),
    "style.css": ("text/css; charset=utf-8", True),
    "dashboard.js": ("text/javascript; charset=utf-8", False),
    "lightweight-charts.standalone.production.js": ("text/javascript; charset=utf-8", False),
    "lightweight-charts.NOTICE": ("text/plain; charset=utf-8", False),
    "lightweight-charts.LICENSE": ("text/plain; charset=utf-8", False),
}
# lightweight-charts draws TradingView's attribution logo (its licence asks for the link)
# with one fixed <style> element: the policy allows exactly that text, by its hash
# (tests/dashboard/test_session.py recomputes it from the vendored build).
CHART_LOGO_STYLE_HASH = "sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY="
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        f"default-src 'self'; script-src 'self'; style-src 'self' '{CHART_LOGO_STYLE_HASH}'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _dashboard_file(name: str) -> str:
    from pathlib import Path

    base = Path(__file__).resolve().parent / "chalicelib" / "dashboard"
    path = base / "vendor" / name if name.startswith("lightweight-charts") else base / name
    return path.read_text(encoding="utf-8")


def _https() -> bool:
    """Behind API Gateway (X-Forwarded-Proto: https) the cookie is Secure; on the local
    stack's plain http it cannot be."""
    return (app.current_request.headers or {}).get("x-forwarded-proto", "").lower() == "https"


def _session_cookie() -> str | None:
    from chalicelib.services.dashboard_session import cookie_from

    return cookie_from((app.current_request.headers or {}).get("cookie"))


def _dashboard_session() -> Any:
    """The live dashboard session of this request, or None."""
    from chalicelib.domain import utc_now
    from chalicelib.services.dashboard_session import current_session

    cookie = _session_cookie()
    if cookie is None:
        return None
    c = bootstrap.container()
    return current_session(
        bootstrap.dashboard_sessions(c), cookie, c.settings.api_token.get_secret_value(), utc_now()
    )


def _dashboard_session_ok() -> bool:
    from chalicelib.services.dashboard_session import CSRF_HEADER, csrf_ok

    session = _dashboard_session()
    if session is None:
        return False
    if app.current_request.method in SAFE_METHODS:
        return True
    return csrf_ok(session, (app.current_request.headers or {}).get(CSRF_HEADER))


def _page(body: str, status: int = 200, **headers: str) -> Response:
    return Response(
        body=body,
        status_code=status,
        headers={"Content-Type": "text/html; charset=utf-8", **PAGE_HEADERS, **headers},
    )


def _json_body() -> dict[str, Any] | None:
    try:
        body = json.loads(app.current_request.raw_body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


@app.route("/dashboard", methods=["GET"])
def dashboard() -> Response:
    """The dashboard with a live session, else the login page (and nothing else)."""
    name = "index.html" if _dashboard_session() is not None else "login.html"
    return _page(_dashboard_file(name))


@app.route("/dashboard/static/{name}", methods=["GET"])
def dashboard_static(name: str) -> Response:
    known = DASHBOARD_FILES.get(name)
    if known is None:
        return _json(404, {"error": "no such file"})
    content_type, public = known
    if not public and _dashboard_session() is None:
        return _json(401, {"error": "log in first"})
    return Response(
        body=_dashboard_file(name),
        status_code=200,
        headers={
            "Content-Type": content_type,
            "Cache-Control": "no-cache" if public else "private, no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


@app.route("/dashboard/login", methods=["POST"], content_types=["application/json"])
def dashboard_login() -> Response:
    """`{"token": <API token>}` → a session cookie; the token is never echoed or logged."""
    from datetime import timedelta

    from chalicelib.domain import utc_now
    from chalicelib.services.dashboard_session import open_session, set_cookie, token_matches

    c = bootstrap.container()
    body = _json_body()
    given = body.get("token") if body else None
    expected = c.settings.api_token.get_secret_value()
    if not isinstance(given, str) or not token_matches(given.strip(), expected):
        return _json(401, {"error": "wrong token"})
    ttl = timedelta(hours=c.settings.dashboard_session_hours)
    opened = open_session(bootstrap.dashboard_sessions(c), expected, utc_now(), ttl)
    return Response(
        body={"ok": True, "expires_at": opened.session.expires_at.isoformat()},
        status_code=200,
        headers={
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            "Set-Cookie": set_cookie(opened.cookie_value, ttl, secure=_https()),
        },
    )


@app.route("/dashboard/logout", methods=["POST"], content_types=["application/json"])
def dashboard_logout() -> Response:
    from chalicelib.services.dashboard_session import clear_cookie, close_session

    if not _dashboard_session_ok():
        return _json(403, {"error": "no session, or the X-CSRF-Token header is missing"})
    close_session(bootstrap.dashboard_sessions(bootstrap.container()), _session_cookie())
    return Response(
        body={"ok": True},
        status_code=200,
        headers={"Content-Type": "application/json", "Set-Cookie": clear_cookie(secure=_https())},
    )


@app.route("/dashboard/session", methods=["GET"])
def dashboard_session() -> Response:
    """The page's CSRF token and refresh period (only to the session's own page: the
    cookie is SameSite=Strict and CORS is off)."""
    session = _dashboard_session()
    if session is None:
        return _json(401, {"error": "log in first"})
    return Response(
        body={
            "csrf": session.csrf,
            "expires_at": session.expires_at.isoformat(),
            "refresh_s": bootstrap.container().settings.dashboard_refresh_s,
            # Which /api routes this deployment has: the page asks only those (a panel
            # whose route is missing says "not available yet" without a failed request).
            "routes": {
                path: sorted(methods)
                for path, methods in app.routes.items()
                if path.startswith("/api/")
            },
        },
        status_code=200,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


def _forbidden_or_unauthorized() -> Response:
    """A session without its CSRF header is refused (403); no credentials at all, 401."""
    if _session_cookie() is not None and _dashboard_session() is not None:
        return _json(403, {"error": "missing or wrong X-CSRF-Token header"})
    return _unauthorized()


# Other areas' read routes the panels show. A route's refusal (404 "not classified yet",
# 503 "market data unavailable") is a panel's message, not a failed request in the
# browser's console: the page reads them through /dashboard/panel/<name>, always 200.
PANEL_ROUTES = {
    "day-type": "/api/day-type",
    "settings": "/api/settings",
    "flow": "/api/flow",
    "bars": "/api/bars",
}


@app.route("/dashboard/panel/{name}", methods=["GET"])
def dashboard_panel(name: str) -> Response:
    """`{"ok": true, "data": <the route's answer>}` or `{"ok": false, "status", "reason"}`;
    the query string is the route's own (`/dashboard/panel/bars?symbol=AAPL`)."""
    if not _authorized():
        return _unauthorized()
    path = PANEL_ROUTES.get(name)
    if path is None:
        return _json(404, {"error": "no such panel"})
    entry = app.routes.get(path, {}).get("GET")
    if entry is None:
        return _json(200, {"ok": False, "status": 404, "reason": "not available yet"})
    answer = entry.view_function()
    body = answer.body
    if isinstance(body, str | bytes):
        try:
            body = json.loads(body)
        except ValueError:
            body = {"error": "the route's answer is not JSON"}
    if answer.status_code == 200:
        return _json(200, {"ok": True, "data": body})
    said = [body.get("error"), body.get("reason")] if isinstance(body, dict) else []
    reason = ": ".join(str(x) for x in said if x) or "unavailable"
    return _json(200, {"ok": False, "status": answer.status_code, "reason": reason})


@app.route("/api/alerts", methods=["GET"])
def list_alerts() -> Response:
    """Recent alerts with decision, verdicts, score and latency (`?limit=&symbol=&status=
    &date=`; newest first, the last week unless `date` names a UTC day)."""
    from chalicelib.domain import utc_now
    from chalicelib.services.alert_views import BadFilter, parse_filters, recent_alerts

    if not _authorized():
        return _unauthorized()
    try:
        filters = parse_filters(dict(app.current_request.query_params or {}))
    except BadFilter as exc:
        return _json(400, {"error": str(exc)})
    store = bootstrap.recent_alerts_store(bootstrap.container())
    return _json(200, recent_alerts(store, utc_now().date(), **filters))


@app.route("/api/kill-switch", methods=["GET", "PUT"], content_types=["application/json"])
def kill_switch() -> Response:
    """GET: engaged or not (the state table's switch, or FLOWTRADER_KILL_SWITCH).
    PUT `{"engaged": true|false, "reason": "..."}`: set it; journaled and notified."""
    from chalicelib.domain import utc_now
    from chalicelib.services.trader_actions import set_kill_switch

    if not _authorized():
        return _forbidden_or_unauthorized()
    c = bootstrap.container()
    if app.current_request.method == "GET":
        reason = c.state_store.kill_switch()
        return _json(
            200,
            {
                "engaged": reason is not None or c.settings.kill_switch,
                "reason": reason,
                "by_setting": c.settings.kill_switch,
            },
        )
    body = _json_body()
    if body is None or not isinstance(body.get("engaged"), bool):
        return _json(400, {"error": 'send {"engaged": true|false}', "field": "engaged"})
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 200:
        return _json(400, {"error": "reason must be text (at most 200 characters)"})
    result = set_kill_switch(
        c.state_store, c.notifier, engaged=body["engaged"], reason=reason, now=utc_now()
    )
    return _json(200, result)


def _flatten(symbol: str | None) -> Response:
    from chalicelib.domain import utc_now
    from chalicelib.ports import BrokerUnavailable
    from chalicelib.services.account_lease import AccountBusy
    from chalicelib.services.flatten import BadRequestId, flatten

    if not _authorized():
        return _forbidden_or_unauthorized()
    body = _json_body()
    request_id = body.get("request_id") if body else None
    if not isinstance(request_id, str):
        return _json(400, {"error": 'send {"request_id": ...}', "field": "request_id"})
    if symbol is not None and not (
        0 < len(symbol) <= 16 and symbol.isascii() and symbol.replace(".", "").isalnum()
    ):
        return _json(400, {"error": "symbol must be a ticker like AAPL", "field": "symbol"})
    c = bootstrap.container()
    try:
        result = flatten(
            c.broker,
            c.state_store,
            c.notifier,
            request_id=request_id,
            now=utc_now(),
            symbol=symbol.upper() if symbol else None,
        )
    except BadRequestId as exc:
        return _json(400, {"error": str(exc), "field": "request_id"})
    except (AccountBusy, BrokerUnavailable) as exc:
        return _json(503, {"error": f"not flattened, try again: {exc}"})
    return _json(200, result)


@app.route("/api/positions/flatten", methods=["POST"], content_types=["application/json"])
def flatten_all() -> Response:
    """Close every position at market (`{"request_id"}`: one id per confirmed click)."""
    return _flatten(None)


@app.route("/api/positions/{symbol}/flatten", methods=["POST"], content_types=["application/json"])
def flatten_symbol(symbol: str) -> Response:
    """Close one position at market: its working orders canceled first."""
    return _flatten(symbol)


@app.route("/api/actions", methods=["GET"])
def list_actions() -> Response:
    """The day's dashboard actions (kill switch, flatten), oldest first (`?date=`, UTC)."""
    from datetime import date

    from chalicelib.domain import utc_now

    if not _authorized():
        return _unauthorized()
    raw = (app.current_request.query_params or {}).get("date")
    try:
        day = date.fromisoformat(raw) if raw else utc_now().date()
    except ValueError:
        return _json(400, {"error": "date must be a date like 2026-03-02", "field": "date"})
    events = bootstrap.container().state_store.journal(f"actions-{day.isoformat()}")
    return _json(200, {"date": day.isoformat(), "events": events})


# --- reports and alert channels (issue 13) ---
# (its additions go below, above the next section)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def flush_alert_digests(event: Any) -> dict[str, Any]:
    """Send one summary per burst the alert router held back (services/alerting.py)."""
    from chalicelib.services.alerting import RoutingNotifier

    notifier = bootstrap.container().notifier
    sent = notifier.flush_digests() if isinstance(notifier, RoutingNotifier) else 0
    return {"digests": sent}


def _subscription_change(subscribe: bool) -> Response:
    from chalicelib.services import subscriptions as subs

    if not _authorized():
        return _unauthorized()
    try:
        request = subs.parse_request(app.current_request.raw_body or b"", with_events=subscribe)
    except subs.BadSubscription as bad:
        return _json(400, bad.body())
    try:
        port = bootstrap.subscriptions(bootstrap.container())
    except ValueError as exc:
        return _json(503, {"error": str(exc)})
    if subscribe:
        return _json(201, subs.subscribe(port, request))
    result = subs.unsubscribe(port, request)
    if not result["removed"]:
        return _json(404, {"error": "no confirmed subscription for that endpoint", **result})
    return _json(200, result)


@app.route("/api/subscriptions", methods=["POST"], content_types=["application/json"])
def add_subscription() -> Response:
    """Subscribe a phone number (SMS) or an email to the alerts: {"endpoint", "events"?}."""
    return _subscription_change(subscribe=True)


@app.route("/api/subscriptions", methods=["DELETE"], content_types=["application/json"])
def remove_subscription() -> Response:
    """Unsubscribe a phone number or email: {"endpoint"}."""
    return _subscription_change(subscribe=False)


from chalice import Cron  # noqa: E402 - here, so the sections merge without conflicts

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
app.api.binary_types.append(XLSX)


@app.schedule(Cron(30, "20,21", "?", "*", "MON-FRI", "*"))
def daily_report(event: Any) -> dict[str, Any]:
    """After the close: the day's and the cumulative PnL CSVs, a summary, the journal. Fires
    at 20:30 and 21:30 UTC; `report_due` keeps the one that is 16:30 in New York."""
    from chalicelib.domain import utc_now
    from chalicelib.services.daily_report import daily_report as run_report
    from chalicelib.services.daily_report import report_due

    day = report_due(utc_now())
    if day is None:
        return {"skipped": "not 16:15-17:15 New York time on a trading day"}
    c = bootstrap.container()
    journal = bootstrap.sheets_journal(c)
    result = run_report(c.state_store, c.report_sink, day, notifier=c.notifier, journal=journal)
    app.log.info(json.dumps(result))
    return result


def _report_rows(kind: str) -> tuple[list[dict[str, str]], list[dict[str, str]]] | Response:
    """(trades rows, daily rows): `?date=` built from the state table, else the cumulative
    files the schedule wrote."""
    from chalicelib.services import daily_report as reports

    c = bootstrap.container()
    raw = (app.current_request.query_params or {}).get("date")
    if raw is not None:
        from datetime import date

        try:
            day = date.fromisoformat(raw)
        except ValueError:
            return _json(400, {"error": "date must be a date like 2026-03-02", "field": "date"})
        built = reports.build_day(c.state_store, c.report_sink, day)
        return built.trade_rows, [built.daily]
    trades = reports.read_rows(c.report_sink.get("trades.csv"))
    daily = reports.read_rows(c.report_sink.get("daily_pnl.csv"))
    if not daily:
        return _json(
            404,
            {
                "error": f"no {kind} yet: daily_report runs after the close; "
                "add ?date=YYYY-MM-DD for one day from the live records"
            },
        )
    return trades, daily


def _download(body: bytes | str, content_type: str, filename: str) -> Response:
    return Response(
        body=body,
        status_code=200,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


@app.route("/api/reports/daily.csv", methods=["GET"])
def download_daily_pnl() -> Response:
    """daily_pnl.csv: every reported day, or one (`?date=YYYY-MM-DD`)."""
    from chalicelib.services.daily_report import daily_csv

    if not _authorized():
        return _unauthorized()
    rows = _report_rows("daily report")
    if isinstance(rows, Response):
        return rows
    return _download(daily_csv(rows[1]), "text/csv; charset=utf-8", "daily_pnl.csv")


@app.route("/api/reports/trades.csv", methods=["GET"])
def download_trades() -> Response:
    """trades.csv: every reported trade, or one day's (`?date=YYYY-MM-DD`)."""
    from chalicelib.services.daily_report import trades_csv

    if not _authorized():
        return _unauthorized()
    rows = _report_rows("trade report")
    if isinstance(rows, Response):
        return rows
    return _download(trades_csv(rows[0]), "text/csv; charset=utf-8", "trades.csv")


@app.route("/api/reports/journal.xlsx", methods=["GET"])
def download_journal() -> Response:
    """The journal as Excel: sheets trades and daily_pnl, the CSVs' rows."""
    from chalicelib.adapters.xlsx_journal import workbook
    from chalicelib.rules.report_rows import DAILY_COLUMNS, TRADE_COLUMNS

    if not _authorized():
        return _unauthorized()
    rows = _report_rows("journal")
    if isinstance(rows, Response):
        return rows
    body = workbook([("trades", TRADE_COLUMNS, rows[0]), ("daily_pnl", DAILY_COLUMNS, rows[1])])
    return _download(body, XLSX, "journal.xlsx")


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
