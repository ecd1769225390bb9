"""The flow scanner (every 5 minutes in the session) and the flow read views.

One scan reads the market's large flow alerts of the last few minutes, the watchlist's own
flow alerts and each watchlist ticker's dark-pool prints of the day; picks the highlights
(`rules/flow_highlights.py`); records each one once in the state table; and tells the trader
about the new ones on the watchlist in one notification. A vendor call that fails is
reported in the result and the rest of the scan goes on.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain import DarkPoolPrint, FlowHighlight, FlowPrint
from chalicelib.ports import FlowHighlights, FlowSource, FlowUnavailable, Notifier
from chalicelib.rules.flow_highlights import ScanRules, find_highlights
from chalicelib.rules.market_calendar import is_market_open
from chalicelib.services.notify import deliver

log = logging.getLogger(__name__)

SOURCE_OFF = "no Unusual Whales token (FLOWTRADER_UNUSUAL_WHALES_API_KEY): flow is off"
TICKER = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
MAX_WATCHLIST = 50  # each ticker costs one dark-pool call per scan
MAX_NOTIFIED_LINES = 10


class BadWatchlist(ValueError):
    """The watchlist given is not a list of tickers; the message says what is wrong."""


def parse_symbols(raw: Any) -> tuple[str, ...]:
    """Tickers from a list or a comma-separated string: upper-cased, each once, in order."""
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list):
        raise BadWatchlist('symbols must be a list of tickers, e.g. ["AAPL", "MSFT"]')
    symbols: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise BadWatchlist("each symbol must be a ticker string")
        symbol = item.strip().upper()
        if not symbol:
            continue
        if not TICKER.match(symbol):
            raise BadWatchlist(f"{symbol[:20]!r} is not a ticker (letters, digits, . or -)")
        if symbol not in symbols:
            symbols.append(symbol)
    if len(symbols) > MAX_WATCHLIST:
        raise BadWatchlist(f"at most {MAX_WATCHLIST} symbols")
    return tuple(symbols)


def current_watchlist(store: FlowHighlights, setting: str) -> tuple[tuple[str, ...], str]:
    """The watchlist and where it came from: the one PUT /api/watchlist stored, else the
    FLOWTRADER_WATCHLIST setting."""
    stored = store.watchlist()
    if stored is not None:
        return stored, "state"
    try:
        return parse_symbols(setting), "setting"
    except BadWatchlist as exc:
        log.warning("FLOWTRADER_WATCHLIST ignored: %s", exc)
        return (), "setting"


def _notice(highlights: list[FlowHighlight]) -> tuple[str, str]:
    symbols = sorted({h.symbol for h in highlights})
    subject = f"flowtrader: flow on {', '.join(symbols)}"[:100]
    lines = [h.headline for h in highlights[:MAX_NOTIFIED_LINES]]
    if len(highlights) > MAX_NOTIFIED_LINES:
        lines.append(f"... and {len(highlights) - MAX_NOTIFIED_LINES} more (GET /api/flow)")
    return subject, "\n".join(lines)


def scan_flow(
    source: FlowSource | None,
    store: FlowHighlights,
    notifier: Notifier,
    now: datetime,
    *,
    rules: ScanRules,
    watchlist: tuple[str, ...],
    lookback_minutes: int = 10,
    force: bool = False,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """One scan (module docstring); skipped without a source or outside the session
    unless `force`. Once `budget_s` has passed (the Lambda's timeout is near), no further
    vendor call is started; the ones skipped are reported. Returns what it did."""
    if source is None:
        return {"skipped": SOURCE_OFF}
    if not force and not is_market_open(now):
        return {"skipped": "outside the trading session"}
    since = now - timedelta(minutes=lookback_minutes)
    ends = None if budget_s is None else clock() + budget_s
    errors: dict[str, str] = {}
    prints: list[FlowPrint] = []
    queries: list[tuple[str, tuple[str, ...], float | None]] = [
        ("market", (), rules.alert_min_premium_usd)
    ]
    if watchlist:
        queries.append(("watchlist", watchlist, None))
    for name, symbols, min_premium in queries:
        try:
            prints += source.flow_alerts(
                symbols, newer_than=since, min_premium=min_premium, limit=200
            )
        except FlowUnavailable as exc:
            errors[f"flow_alerts:{name}"] = str(exc)
    darkpool: dict[str, list[DarkPoolPrint]] = {}
    for symbol in watchlist:
        if ends is not None and clock() >= ends:
            errors[f"darkpool:{symbol}"] = f"skipped: the scan's {budget_s:g} s were used up"
            continue
        try:
            darkpool[symbol] = source.darkpool(symbol)
        except FlowUnavailable as exc:
            errors[f"darkpool:{symbol}"] = str(exc)
    found = find_highlights(prints, darkpool, rules, since=since)
    new = [h for h in found if store.record_once(h, now)]
    watched = [h for h in new if h.symbol in watchlist]
    if watched:
        subject, message = _notice(watched)
        deliver(notifier, subject, message, "flow_highlight")  # the router's event (issue 13)
    if errors:
        log.warning("flow scan: %s", errors)
    return {
        "prints": len(prints),
        "highlights": len(found),
        "new": len(new),
        "notified": len(watched),
        "errors": errors,
    }


def flow_view(
    store: FlowHighlights,
    source_name: str | None,
    now: datetime,
    *,
    hours: int = 24,
    limit: int = 100,
    symbol: str | None = None,
) -> dict[str, Any]:
    """GET /api/flow: recent highlights, newest first (none, and why, without a token)."""
    if source_name is None:
        return {"highlights": [], "source": None, "reason": SOURCE_OFF}
    wanted = 1000 if symbol else limit
    highlights = store.recent(now - timedelta(hours=hours), now, limit=wanted)
    if symbol:
        highlights = [h for h in highlights if h.symbol == symbol][:limit]
    return {
        "highlights": [h.model_dump(mode="json") for h in highlights],
        "source": source_name,
        "reason": f"highlights of the last {hours} h"
        + (f" for {symbol}" if symbol else "")
        + ("" if highlights else ": none yet (the scanner runs every 5 minutes in the session)"),
    }
