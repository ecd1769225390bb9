"""Unusual Whales: options flow alerts, net-premium ticks, dark-pool prints and the market
tide over its REST API (`requests`), behind the `FlowSource` port.

Vendor behaviour this module relies on (the spec, `uw-api-spec.yaml` from
https://api.unusualwhales.com/api/openapi, and UW's own client, unusual-whales-official-mcp
`src/client.ts`):
- bearer auth (`securitySchemes.authorization: http bearer`); 401 without a valid token,
  422 for a bad parameter (`{"msg": …}`), 500 as plain text;
- every answer is `{"data": [...]}` with decimals as strings (`"total_premium": "186705"`)
  and counts as integers; rows may carry fields this module does not know (ignored);
- 429 when the plan's limit is hit, with `Retry-After` in seconds (UW's client reads it);
  UW's client defaults to 120 requests a minute (`UW_RATE_LIMIT_PER_MINUTE`);
- answers carry the token's usage in `x-uw-*` headers: `x-uw-daily-req-count`,
  `x-uw-token-req-limit`, `x-uw-minute-req-counter`, `x-uw-req-per-minute-remaining` and
  `x-uw-req-per-minute-reset` (as UW API users record them; the spec does not list them).

Every public call returns within `timeout_s` (retries, backoff and rate-limit waits
included) or raises `FlowUnavailable`, so a decision waiting on flow is never held up.
Requests are counted against a per-minute budget shared by every Lambda
(`SharedRateLimit`, the state table); a 429's `Retry-After`, or a remaining budget of 0,
blocks every caller until then. Answers are kept a few seconds in a shared
`ResponseCache`, so concurrent Lambdas deciding on the same ticker make one call.

Rows that do not parse (a number that is not one, a missing time, an unknown option type)
are skipped with a logged reason; a body that is not `{"data": [...]}` is `FlowUnavailable`.
The token is sent only in the Authorization header and never logged or put in a message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import requests
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)
from tenacity.stop import stop_base

from chalicelib.domain import DarkPoolPrint, FlowPrint, MarketTide, NetPremTick
from chalicelib.ports import FlowUnavailable, ResponseCache, SharedRateLimit

if TYPE_CHECKING:
    from chalicelib.settings import Settings

log = logging.getLogger(__name__)

BASE_URL = "https://api.unusualwhales.com"
NAME = "unusual_whales"
MAX_FLOW_ALERTS = 200  # the spec's `limit` maximum for flow-alerts
MAX_DARKPOOL = 500  # ... and for darkpool
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_ERROR_CHARS = 200
LOGGED_ROWS = 5  # malformed rows logged one by one per answer; the rest are counted
T = TypeVar("T")


class Malformed(ValueError):
    """One row's field is not what the spec says; the row is skipped."""


class _Retryable(Exception):
    """A 429, a 5xx or a connection failure: worth another attempt, after `retry_after_s`
    when the vendor said how long."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


# --- parsing: the spec's shapes into domain objects --------------------------------------


def _number(row: dict[str, Any], field: str, *, required: bool = True) -> float | None:
    value = row.get(field)
    if value is None or value == "":
        if required:
            raise Malformed(f"{field} is missing")
        return None
    if isinstance(value, bool):
        raise Malformed(f"{field} is {value!r}, not a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and _NUMBER.match(value.strip()):
        number = float(value.strip())
    else:
        raise Malformed(f"{field} is {str(value)[:40]!r}, not a number")
    if not math.isfinite(number):
        raise Malformed(f"{field} is {value!r}, not a finite number")
    return number


def _required(row: dict[str, Any], field: str) -> float:
    number = _number(row, field)
    assert number is not None  # _number raises when a required field is missing
    return number


def _int(row: dict[str, Any], field: str, *, required: bool = False) -> int | None:
    number = _number(row, field, required=required)
    if number is None:
        return None
    if number != int(number):
        raise Malformed(f"{field} is {row.get(field)!r}, not a whole number")
    return int(number)


def _nonnegative(row: dict[str, Any], field: str, *, required: bool = False) -> float:
    number = _number(row, field, required=required) or 0.0
    if number < 0:
        raise Malformed(f"{field} is {number:g}, below 0")
    return number


def _time(row: dict[str, Any], field: str) -> datetime:
    """UW stamps times like "2023-12-12 16:35:52.168490+00:00" or "2023-09-08 09:30:00-04:00"."""
    value = row.get(field)
    if not isinstance(value, str) or not value:
        raise Malformed(f"{field} is missing")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"{field} is {value[:40]!r}, not a time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _date(row: dict[str, Any], field: str) -> date | None:
    value = row.get(field)
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise Malformed(f"{field} is {str(value)[:40]!r}, not a date") from None


def _text(row: dict[str, Any], field: str, *, required: bool = False) -> str | None:
    value = row.get(field)
    if value is None or value == "":
        if required:
            raise Malformed(f"{field} is missing")
        return None
    if not isinstance(value, str | int):
        raise Malformed(f"{field} is {type(value).__name__}, not text")
    return str(value)


def _flag(row: dict[str, Any], field: str) -> bool:
    value = row.get(field)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise Malformed(f"{field} is {str(value)[:20]!r}, not true or false")


def flow_print(row: dict[str, Any]) -> FlowPrint:
    """One `Flow Alert` row (spec: components.schemas["Flow Alert"])."""
    option_type = row.get("type")
    if option_type not in ("call", "put"):
        raise Malformed(f"type is {str(option_type)[:20]!r}, not call or put")
    return FlowPrint(
        symbol=_text(row, "ticker", required=True) or "",
        option_symbol=_text(row, "option_chain", required=True) or "",
        option_type=option_type,
        created_at=_time(row, "created_at"),
        premium_usd=_nonnegative(row, "total_premium", required=True),
        ask_side_premium_usd=_nonnegative(row, "total_ask_side_prem"),
        bid_side_premium_usd=_nonnegative(row, "total_bid_side_prem"),
        size=_int(row, "total_size") or 0,
        trade_count=_int(row, "trade_count") or 0,
        is_sweep=_flag(row, "has_sweep"),
        alert_rule=_text(row, "alert_rule") or "",
        strike=_number(row, "strike", required=False),
        expiry=_date(row, "expiry"),
        price=_number(row, "price", required=False),
        underlying_price=_number(row, "underlying_price", required=False),
        volume=_int(row, "volume"),
        open_interest=_int(row, "open_interest"),
        alert_id=_text(row, "id"),
    )


def darkpool_print(row: dict[str, Any]) -> DarkPoolPrint:
    """One `Darkpool Trade` row (spec: components.schemas["Darkpool Trade"])."""
    price = _required(row, "price")
    size = _int(row, "size", required=True) or 0
    if price <= 0 or size <= 0:
        raise Malformed(f"price {price:g} × size {size} is not a trade")
    return DarkPoolPrint(
        symbol=_text(row, "ticker", required=True) or "",
        executed_at=_time(row, "executed_at"),
        price=price,
        size=size,
        premium_usd=_number(row, "premium", required=False) or price * size,
        nbbo_bid=_number(row, "nbbo_bid", required=False),
        nbbo_ask=_number(row, "nbbo_ask", required=False),
        day_volume=_int(row, "volume"),
        tracking_id=_text(row, "tracking_id"),
        market_center=_text(row, "market_center"),
        canceled=_flag(row, "canceled"),
    )


def net_prem_tick(row: dict[str, Any]) -> NetPremTick:
    """One `Net Prem Tick response.` row."""
    return NetPremTick(
        time=_time(row, "tape_time"),
        net_call_premium=_required(row, "net_call_premium"),
        net_put_premium=_required(row, "net_put_premium"),
        net_call_volume=_int(row, "net_call_volume") or 0,
        net_put_volume=_int(row, "net_put_volume") or 0,
        call_volume=_int(row, "call_volume") or 0,
        put_volume=_int(row, "put_volume") or 0,
        net_delta=_number(row, "net_delta", required=False),
    )


def market_tide(row: dict[str, Any]) -> MarketTide:
    """One `Daily Market Tide` row."""
    return MarketTide(
        time=_time(row, "timestamp"),
        net_call_premium=_required(row, "net_call_premium"),
        net_put_premium=_required(row, "net_put_premium"),
        net_volume=_int(row, "net_volume") or 0,
    )


def parse_rows(rows: Iterable[Any], parse: Callable[[dict[str, Any]], T], what: str) -> list[T]:
    """The rows that parse; each one that does not is logged with its reason and skipped."""
    parsed: list[T] = []
    skipped = 0
    for index, row in enumerate(rows):
        try:
            if not isinstance(row, dict):
                raise Malformed(f"row is {type(row).__name__}, not an object")
            parsed.append(parse(row))
        except Malformed as exc:
            skipped += 1
            if skipped <= LOGGED_ROWS:
                log.warning("unusual whales: skipped %s row %d: %s", what, index, exc)
    if skipped > LOGGED_ROWS:
        log.warning("unusual whales: skipped %d %s rows in all", skipped, what)
    return parsed


def data_rows(body: bytes, path: str) -> list[Any]:
    """The `data` list of a `{"data": [...]}` body, else FlowUnavailable."""
    try:
        document = json.loads(body)
    except ValueError:
        raise FlowUnavailable(f"unusual whales {path}: the answer is not JSON") from None
    rows = document.get("data") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise FlowUnavailable(f'unusual whales {path}: the answer is not {{"data": [...]}}')
    return rows


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def minute_reset_s(value: str | None) -> float | None:
    """`x-uw-req-per-minute-reset`: users report it both as seconds ("60") and as
    milliseconds until the minute resets; anything above 60 is read as milliseconds."""
    seconds = _seconds(value)
    if seconds is None:
        return None
    return seconds / 1000.0 if seconds > 60 else seconds


def _query_time(moment: datetime) -> str:
    """`newer_than`: "unix time in milliseconds or seconds … Also accepts an ISO date or
    RFC 3339 datetime" (spec: NewerThan); whole seconds."""
    return str(int(moment.timestamp()))


class _PastDeadline(stop_base):
    """Stop retrying when the next wait would end at or past the call's deadline (tenacity
    computes `upcoming_sleep` before it asks the stop condition)."""

    def __init__(self, deadline: float, clock: Callable[[], float]) -> None:
        self._deadline = deadline
        self._clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._clock() + (retry_state.upcoming_sleep or 0.0) >= self._deadline


class UnusualWhales:
    """The `FlowSource` over UW's REST API (module docstring)."""

    name = NAME

    def __init__(
        self,
        token: str,
        *,
        base_url: str = BASE_URL,
        timeout_s: float = 2.0,
        attempts: int = 3,
        backoff_s: float = 0.25,
        requests_per_minute: int = 120,
        rate_limit: SharedRateLimit | None = None,
        cache: ResponseCache | None = None,
        cache_ttl_s: float = 20.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise ValueError("an Unusual Whales token is needed (UNUSUAL_WHALES_API_KEY)")
        self._token = token
        self._base = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._attempts = max(1, attempts)
        self._backoff_s = backoff_s
        self._per_minute = requests_per_minute
        self._limit = rate_limit
        self._cache = cache
        self._cache_ttl_s = cache_ttl_s
        self._session = session or requests.Session()
        self._clock = clock
        self._sleep = sleep
        self.usage: dict[str, str] = {}  # the last x-uw-* headers seen
        self.requests_sent = 0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        rate_limit: SharedRateLimit | None = None,
        cache: ResponseCache | None = None,
        timeout_s: float | None = None,
    ) -> UnusualWhales:
        return cls(
            settings.unusual_whales_api_key.get_secret_value(),
            base_url=settings.uw_base_url or BASE_URL,
            timeout_s=settings.uw_timeout_s if timeout_s is None else timeout_s,
            attempts=settings.uw_attempts,
            requests_per_minute=settings.uw_requests_per_minute,
            rate_limit=rate_limit,
            cache=cache,
            cache_ttl_s=settings.uw_cache_ttl_s,
        )

    # --- the port ------------------------------------------------------------------------

    def flow_alerts(
        self,
        symbols: tuple[str, ...] = (),
        *,
        newer_than: datetime | None = None,
        min_premium: float | None = None,
        is_sweep: bool | None = None,
        side: str | None = None,
        option_type: str | None = None,
        limit: int = 100,
    ) -> list[FlowPrint]:
        params: dict[str, str] = {"limit": str(max(1, min(limit, MAX_FLOW_ALERTS)))}
        if symbols:
            params["ticker_symbol"] = ",".join(symbols)
        if newer_than is not None:
            params["newer_than"] = _query_time(newer_than)
        if min_premium is not None:
            params["min_premium"] = str(int(min_premium))  # the spec's type is integer
        if is_sweep is not None:
            params["is_sweep"] = "true" if is_sweep else "false"
        if side is not None:
            if side not in ("ask", "bid"):
                raise ValueError(f"side must be ask or bid, not {side!r}")
            params[f"is_{side}_side"] = "true"
        if option_type is not None:
            if option_type not in ("call", "put"):
                raise ValueError(f"option_type must be call or put, not {option_type!r}")
            params[f"is_{option_type}"] = "true"
        path = "/api/option-trades/flow-alerts"
        return parse_rows(self._get(path, params), flow_print, "flow alert")

    def net_prem_ticks(self, symbol: str, day: date | None = None) -> list[NetPremTick]:
        params = {"date": day.isoformat()} if day else {}
        path = f"/api/stock/{_ticker(symbol)}/net-prem-ticks"
        return parse_rows(self._get(path, params), net_prem_tick, "net premium tick")

    def darkpool(
        self,
        symbol: str,
        *,
        day: date | None = None,
        newer_than: datetime | None = None,
        limit: int = MAX_DARKPOOL,
    ) -> list[DarkPoolPrint]:
        params: dict[str, str] = {"limit": str(max(1, min(limit, MAX_DARKPOOL)))}
        if day is not None:
            params["date"] = day.isoformat()
        if newer_than is not None:
            params["newer_than"] = _query_time(newer_than)
        path = f"/api/darkpool/{_ticker(symbol)}"
        return parse_rows(self._get(path, params), darkpool_print, "dark-pool print")

    def market_tide(self, day: date | None = None) -> list[MarketTide]:
        params = {"date": day.isoformat()} if day else {}
        return parse_rows(self._get("/api/market/market-tide", params), market_tide, "tide")

    # --- one GET: cache, shared rate limit, retries, all inside the deadline ---------------

    def _get(self, path: str, params: dict[str, str]) -> list[Any]:
        deadline = self._clock() + self.timeout_s
        key = hashlib.sha256(f"{path}?{urlencode(sorted(params.items()))}".encode()).hexdigest()
        cached = self._cache_get(key)
        if cached is not None:
            return data_rows(cached, path)
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts) | _PastDeadline(deadline, self._clock),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            body = retrying(self._attempt, path, params, deadline)
        except _Retryable as exc:
            raise FlowUnavailable(f"unusual whales {path}: {exc.reason}") from None
        rows = data_rows(body, path)  # refuse garbage before it is shared
        self._cache_put(key, body)
        return rows

    def _wait(self, state: RetryCallState) -> float:
        """`Retry-After` when the vendor gave one, else exponential backoff."""
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _Retryable) and exc.retry_after_s is not None:
            return exc.retry_after_s
        return float(self._backoff_s * 2 ** (state.attempt_number - 1))

    def _attempt(self, path: str, params: dict[str, str], deadline: float) -> bytes:
        self._take_a_request(deadline)
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise FlowUnavailable(f"unusual whales {path}: no time left ({self.timeout_s:g} s)")
        self.requests_sent += 1
        try:
            response = self._session.get(
                self._base + path,
                params=params,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                timeout=remaining,
            )
        except requests.Timeout:
            raise _Retryable(f"no answer within {remaining:.2f} s") from None
        except requests.RequestException as exc:
            raise _Retryable(f"unreachable ({type(exc).__name__})") from None
        self._note_usage(response)
        status = response.status_code
        if status == 429:
            retry_after = _seconds(response.headers.get("Retry-After"))
            if retry_after is None:
                retry_after = minute_reset_s(response.headers.get("x-uw-req-per-minute-reset"))
            if retry_after is not None:
                self._block(self._clock() + retry_after)
            raise _Retryable("rate limited (429)", retry_after)
        if status >= 500:
            raise _Retryable(f"server error {status}")
        if status != 200:
            raise FlowUnavailable(f"unusual whales {path}: {status} {_error_text(response)}")
        return response.content

    def _take_a_request(self, deadline: float) -> None:
        """Wait for the shared budget (a block the vendor asked for, then this minute's
        count), or give up when the wait would pass the deadline."""
        if self._limit is None:
            return
        try:
            blocked = self._limit.blocked_until()
            now = self._clock()
            if blocked is not None and blocked > now:
                if blocked >= deadline:
                    raise FlowUnavailable(
                        f"unusual whales is rate limited for {blocked - now:.1f} s more"
                    )
                self._sleep(blocked - now)
            if self._per_minute <= 0:
                return
            now = self._clock()
            if self._limit.try_acquire(now, self._per_minute):
                return
            next_minute = (now // 60 + 1) * 60
            if next_minute < deadline:
                self._sleep(next_minute - now)
                if self._limit.try_acquire(self._clock(), self._per_minute):
                    return
            raise FlowUnavailable(
                f"client-side rate limit of {self._per_minute} requests a minute reached "
                "(FLOWTRADER_UW_REQUESTS_PER_MINUTE)"
            )
        except FlowUnavailable:
            raise
        except Exception as exc:  # the state table down: the vendor's own 429s still apply
            log.warning("unusual whales: shared rate limit unavailable (%s); sending", exc)

    def _note_usage(self, response: requests.Response) -> None:
        usage = {k.lower(): v for k, v in response.headers.items() if k.lower().startswith("x-uw-")}
        if not usage:
            return
        self.usage = usage
        if usage.get("x-uw-req-per-minute-remaining") == "0" and response.status_code != 429:
            reset = minute_reset_s(usage.get("x-uw-req-per-minute-reset"))
            now = self._clock()
            self._block(now + reset if reset is not None else (now // 60 + 1) * 60)

    def _block(self, until_s: float) -> None:
        if self._limit is None:
            return
        try:
            self._limit.block_until(until_s)
        except Exception as exc:
            log.warning("unusual whales: could not share the rate-limit block (%s)", exc)

    def _cache_get(self, key: str) -> bytes | None:
        if self._cache is None or self._cache_ttl_s <= 0:
            return None
        try:
            return self._cache.get(key, self._clock())
        except Exception as exc:
            log.warning("unusual whales: response cache unavailable (%s)", exc)
            return None

    def _cache_put(self, key: str, body: bytes) -> None:
        if self._cache is None or self._cache_ttl_s <= 0:
            return
        try:
            self._cache.put(key, body, self._clock(), self._cache_ttl_s)
        except Exception as exc:
            log.warning("unusual whales: could not cache an answer (%s)", exc)


def _ticker(symbol: str) -> str:
    """A path segment that can only be a ticker (spec: SingleTicker), never a path."""
    cleaned = symbol.strip().upper()
    if not re.fullmatch(r"[A-Z0-9.\-]{1,12}", cleaned):
        raise FlowUnavailable(f"{symbol[:20]!r} is not a ticker Unusual Whales knows")
    return cleaned


def _error_text(response: requests.Response) -> str:
    """UW's `{"msg": …}` (422) or the plain text (500), cut short."""
    try:
        document = response.json()
        text = document.get("msg") if isinstance(document, dict) else None
    except ValueError:
        text = None
    return str(text or response.text or response.reason or "")[:_ERROR_CHARS]
