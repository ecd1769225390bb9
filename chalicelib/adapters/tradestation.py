"""TradeStation (SIM or live) behind the `Broker` port, on the v3 REST API through `requests`.

TradeStation has no official Python SDK; the contract is its OpenAPI document
(api.tradestation.com/docs, "TradeStation API v3") and the authentication pages.

Money safety first:
- **No client order id in the API.** An order request can carry `OrderConfirmID` ("a unique
  identifier regarding an order used to prevent duplicates. Must be unique per API key, per
  order, per user", 1..22 characters), but no order TradeStation returns echoes it. So:
  1. every request carries `OrderConfirmID` derived from our client order id (`confirm_id`), so
     a second POST of the same intent is refused as a duplicate instead of becoming a second
     order;
  2. the TradeStation `OrderID` of every order placed is remembered under our id
     (`client_ids`, in memory, backed by `recorded_id`: the state table's recorded order);
  3. when the outcome of a POST is unknown (timeout, 5xx, 429) or TradeStation calls it a
     duplicate, today's orders are scanned for the intent's fingerprint (symbol, trade action,
     quantity, type, prices) among orders no other id claims, before anything is POSTed again.
  A fingerprint scan that finds an older identical order answers with it: in doubt an order is
  *not* placed rather than placed twice.
- One POST per `place_order` call; reads (GETs, cancels) are retried here (`read_attempts`).
- `TradeAction` comes from the position (`trade_action`): BUY / SELLSHORT open, SELL /
  BUYTOCOVER close; an intent that would cross zero is refused (a reversal is a close and an
  open, two intents).
- A bracket entry is one POST: the entry with `OSOs: [{Type: BRK, Orders: [limit, stop]}]`; a
  held remainder's OCO protection is a `BRK` group (`/orderexecution/ordergroups`): "Bracket
  orders are used to exit an existing position" (API reference, Place Group Order).
- Tokens: access tokens last 20 minutes and are cached until shortly before `expires_in`; the
  refresh token lives in Secrets Manager and, when TradeStation rotates it, the new one is
  written back (`RefreshTokenStore`) before it is used
  (https://api.tradestation.com/docs/fundamentals/authentication/refresh-tokens/). A 401 on a
  call refreshes once and repeats the call once.
- Errors become `BrokerRejected` (TradeStation said no) or `BrokerUnavailable` (outcome
  unknown) with TradeStation's own words; tokens and secrets never reach a message or a log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from chalicelib.domain import Account, Order, OrderIntent, OrderStatus, OrderType, Position, Side
from chalicelib.ports import BrokerRejected, BrokerUnavailable, RefreshTokenStore
from chalicelib.rules.prices import round_to_tick

if TYPE_CHECKING:
    import requests

    from chalicelib.settings import Settings

log = logging.getLogger(__name__)

SIM_URL = "https://sim-api.tradestation.com/v3"
LIVE_URL = "https://api.tradestation.com/v3"
TOKEN_URL = "https://signin.tradestation.com/oauth/token"  # noqa: S105 (a URL)
NOT_CANCELABLE = "42210000"  # the port's code for "not cancelable" (tests/adapters contract)
TOKEN_MARGIN_S = 60.0  # refresh this long before the access token's `expires_in` runs out
MAX_ORDER_IDS = 50  # GET .../orders/{orderIds}: "1 to 50 Order IDs"

# Status -> ours, by the spec's categories (components.schemas.Status): Open, Canceled,
# Rejected, Filled. Open statuses not listed are working states we call PENDING.
_STATUS = {
    "ACK": OrderStatus.NEW,
    "OPN": OrderStatus.NEW,
    "DON": OrderStatus.ACCEPTED,
    "PLA": OrderStatus.PENDING,
    "FPR": OrderStatus.PARTIALLY_FILLED,
    "FLL": OrderStatus.FILLED,
    "FLP": OrderStatus.CANCELED,  # "Partial Fill (UROut)": part filled, the rest is out
    "CAN": OrderStatus.CANCELED,
    "OUT": OrderStatus.CANCELED,
    "SCN": OrderStatus.CANCELED,
    "TSC": OrderStatus.CANCELED,
    "UCH": OrderStatus.CANCELED,  # replaced
    "EXP": OrderStatus.EXPIRED,
    "REJ": OrderStatus.REJECTED,
}
_DONE = frozenset({"FLL", "FLP", "CAN", "OUT", "SCN", "TSC", "UCH", "EXP", "REJ", "BRO", "DOA"})
CANCEL_PENDING = frozenset({"UCN", "LAT", "RPD", "RSN", "CSN"})  # a cancel/replace in flight
_OPEN = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING)
_ORDER_TYPE = {
    "Market": OrderType.MARKET,
    "Limit": OrderType.LIMIT,
    "StopMarket": OrderType.STOP,
    "StopLimit": OrderType.STOP_LIMIT,
}
_TS_TYPE = {v: k for k, v in _ORDER_TYPE.items()}
_BUYS = frozenset({"buy", "buytocover", "buytoopen", "buytoclose"})
_DURATION = {"day": "DAY", "gtc": "GTC", "ioc": "IOC", "fok": "FOK", "opg": "OPG", "cls": "CLO"}


# --- pure helpers -----------------------------------------------------------------------


def confirm_id(client_order_id: str, part: str = "") -> str:
    """A 22-character `OrderConfirmID` (the spec's maximum) derived from our id (and the
    order's place in a group), so the same intent always carries the same one."""
    digest = hashlib.sha256(f"{client_order_id}|{part}".encode()).hexdigest()
    return digest[:22]


def trade_action(side: Side, held: Decimal, qty: Decimal, *, closes: bool) -> str:
    """TradeStation's `TradeAction` for an equity order, from the position held.

    Closes (and protective exits) are SELL for a long and BUYTOCOVER for a short. Opens are
    BUY and SELLSHORT; an open on the side that reduces the position is that position's close
    action. An order that would take the position through zero is refused: TradeStation's
    actions are either opening or closing, so a reversal is a close followed by an open.
    """
    if closes:
        return "SELL" if side is Side.SELL else "BUYTOCOVER"
    if side is Side.BUY:
        if held >= 0:
            return "BUY"
        if qty <= -held:
            return "BUYTOCOVER"
    else:
        if held <= 0:
            return "SELLSHORT"
        if qty <= held:
            return "SELL"
    raise BrokerRejected(
        f"a {side.value} of {qty} would cross the position of {held}: TradeStation needs a "
        "close and then an open",
        code="cross",
    )


def _str_price(value: float | None) -> str | None:
    """A price on a valid tick, as the API's string."""
    if value is None:
        return None
    return _str(Decimal(str(round_to_tick(value))))


def _str(value: Decimal | float) -> str:
    text = format(Decimal(str(value)).normalize(), "f")
    return text


def _duration(intent: OrderIntent) -> dict[str, str]:
    tif = intent.time_in_force.lower()
    if tif not in _DURATION:
        raise BrokerRejected(f"time in force {intent.time_in_force!r} is not one TradeStation has")
    return {"Duration": _DURATION[tif]}


def _one(
    account_id: str,
    intent: OrderIntent,
    action: str,
    kind: OrderType,
    *,
    limit: float | None = None,
    stop: float | None = None,
    part: str = "",
) -> dict[str, Any]:
    """One `OrderRequest` as the spec shapes it (every number a string)."""
    body: dict[str, Any] = {
        "AccountID": account_id,
        "Symbol": intent.symbol,
        "Quantity": _str(Decimal(str(intent.qty))),
        "OrderType": _TS_TYPE[OrderType.STOP if kind is OrderType.TRAILING_STOP else kind],
        "TradeAction": action,
        "TimeInForce": _duration(intent),
        "Route": "Intelligent",
        "OrderConfirmID": confirm_id(intent.client_order_id, part),
    }
    if limit is not None:
        body["LimitPrice"] = _str_price(limit)
    if stop is not None:
        body["StopPrice"] = _str_price(stop)
    return body


def build_order_request(
    intent: OrderIntent, account_id: str, held: Decimal
) -> tuple[str, dict[str, Any]]:
    """(path, JSON body) for `intent`: `/orderexecution/orders` for a single order or a
    bracket/OTO entry (an OSO), `/orderexecution/ordergroups` for a BRK protection."""
    qty = Decimal(str(intent.qty))
    closes = intent.closes_position or intent.protects_position
    action = trade_action(intent.side, held, qty, closes=closes)
    if intent.protects_position:
        return _protection(intent, account_id, action)
    legs = [p for p in (intent.take_profit, intent.stop_loss) if p is not None]
    kind = intent.order_type
    if legs and kind is OrderType.TRAILING_STOP:
        raise BrokerRejected("flowtrader does not send bracket legs on a trailing stop entry")
    body = _one(account_id, intent, action, kind, limit=_limit(intent), stop=_stop(intent))
    if kind is OrderType.TRAILING_STOP:
        trail = (
            {"Amount": _str_price(intent.trail_price)}
            if intent.trail_price is not None
            else {"Percent": _str(Decimal(str(intent.trail_percent)))}
        )
        body["AdvancedOptions"] = {"TrailingStop": trail}
    if legs:
        exit_action = "SELL" if intent.side is Side.BUY else "BUYTOCOVER"
        exits = []
        if intent.take_profit is not None:
            exits.append(
                _one(
                    account_id, intent, exit_action, OrderType.LIMIT,
                    limit=intent.take_profit, part="tp",
                )
            )  # fmt: skip
        if intent.stop_loss is not None:
            exits.append(
                _one(
                    account_id, intent, exit_action, OrderType.STOP,
                    stop=intent.stop_loss, part="sl",
                )
            )  # fmt: skip
        # Two exits: a bracket (BRK) that works once the entry fills; one: a NORMAL OSO.
        body["OSOs"] = [{"Type": "BRK" if len(exits) == 2 else "NORMAL", "Orders": exits}]
    return "/orderexecution/orders", body


def _limit(intent: OrderIntent) -> float | None:
    if intent.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        if intent.limit_price is None:
            raise BrokerRejected(f"a {intent.order_type.value} order needs limit_price")
        return intent.limit_price
    return None


def _stop(intent: OrderIntent) -> float | None:
    if intent.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
        if intent.stop_price is None:
            raise BrokerRejected(f"a {intent.order_type.value} order needs stop_price")
        return intent.stop_price
    return None


def _protection(intent: OrderIntent, account_id: str, action: str) -> tuple[str, dict[str, Any]]:
    """Exit-only protection of a held position: both prices are a BRK group (limit first),
    one price a plain stop or limit order."""
    tp, sl = intent.take_profit, intent.stop_loss
    limit = _one(account_id, intent, action, OrderType.LIMIT, limit=tp, part="tp")
    stop = _one(account_id, intent, action, OrderType.STOP, stop=sl, part="sl")
    if tp is not None and sl is not None:
        return "/orderexecution/ordergroups", {"Type": "BRK", "Orders": [limit, stop]}
    if sl is not None:
        stop["OrderConfirmID"] = confirm_id(intent.client_order_id)
        return "/orderexecution/orders", stop
    if tp is not None:
        limit["OrderConfirmID"] = confirm_id(intent.client_order_id)
        return "/orderexecution/orders", limit
    raise BrokerRejected("a protective order needs stop_loss and/or take_profit")


def fingerprint(body: dict[str, Any]) -> tuple[str, ...]:
    """What identifies the order a request body creates, as today's orders show it."""
    return (
        str(body["Symbol"]),
        str(body["TradeAction"]).upper(),
        _str(Decimal(str(body["Quantity"]))),
        str(body["OrderType"]),
        _str(Decimal(body["LimitPrice"])) if body.get("LimitPrice") else "",
        _str(Decimal(body["StopPrice"])) if body.get("StopPrice") else "",
    )


_TRADE_ACTION_SHOWN = {"buy": "BUY", "sell": "SELL", "sellshort": "SELLSHORT"}
_TRADE_ACTION_SHOWN["buytocover"] = "BUYTOCOVER"


def raw_fingerprint(raw: dict[str, Any]) -> tuple[str, ...] | None:
    leg = (raw.get("Legs") or [{}])[0]
    action = _TRADE_ACTION_SHOWN.get(str(leg.get("BuyOrSell", "")).lower())
    if action is None or not leg.get("Symbol") or not leg.get("QuantityOrdered"):
        return None
    return (
        str(leg["Symbol"]),
        action,
        _str(Decimal(str(leg["QuantityOrdered"]))),
        str(raw.get("OrderType", "")),
        _str(Decimal(raw["LimitPrice"])) if raw.get("LimitPrice") else "",
        _str(Decimal(raw["StopPrice"])) if raw.get("StopPrice") else "",
    )


def _dec(value: Any) -> float | None:
    return None if value in (None, "") else float(Decimal(str(value)))


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def foreign_reason(raw: dict[str, Any]) -> str | None:
    """Why an order is not one flowtrader trades (options, futures, spreads), or None."""
    legs = raw.get("Legs") or []
    if len(legs) != 1:
        return "multi-leg order" if legs else "order without legs"
    asset = legs[0].get("AssetType") or "STOCK"
    if asset != "STOCK":
        return f"{asset.lower()} order"
    if raw.get("Spread"):
        return "spread order"
    return None


def foreign_view(raw: dict[str, Any], reason: str) -> dict[str, Any]:
    legs = raw.get("Legs") or []
    return {
        "id": str(raw.get("OrderID", "")),
        "client_order_id": "",
        "symbol": "/".join(str(leg.get("Symbol") or "") for leg in legs),
        "class": "/".join(str(leg.get("AssetType") or "") for leg in legs),
        "status": str(raw.get("Status") or ""),
        "side": "/".join(str(leg.get("BuyOrSell") or "") for leg in legs),
        "qty": legs[0].get("QuantityOrdered") if legs else None,
        "reason": reason,
    }


def parse_order(raw: dict[str, Any], client_order_id: str) -> Order:
    """One TradeStation order (stock, one leg) as ours, without its linked orders."""
    leg = raw["Legs"][0]
    kind = _ORDER_TYPE.get(str(raw.get("OrderType")), OrderType.MARKET)
    if raw.get("TrailingStop") or "TRL" in str(raw.get("AdvancedOptions") or ""):
        kind = OrderType.TRAILING_STOP
    status = str(raw.get("Status") or "")
    filled = _STATUS.get(status) is OrderStatus.FILLED
    return Order(
        broker_order_id=str(raw["OrderID"]),
        client_order_id=client_order_id,
        symbol=str(leg.get("Symbol") or ""),
        side=Side.BUY if str(leg.get("BuyOrSell", "")).lower() in _BUYS else Side.SELL,
        qty=_dec(leg.get("QuantityOrdered")) or 0.0,
        order_type=kind,
        status=_STATUS.get(status, OrderStatus.PENDING),
        filled_qty=_dec(leg.get("ExecQuantity")) or 0.0,
        filled_avg_price=_dec(raw.get("FilledPrice")) if _dec(leg.get("ExecQuantity")) else None,
        limit_price=_dec(raw.get("LimitPrice")),
        stop_price=_dec(raw.get("StopPrice")),
        submitted_at=_time(raw.get("OpenedDateTime")),
        filled_at=_time(raw.get("ClosedDateTime")) if filled else None,
    )


def _links(raw: dict[str, Any], *relationships: str) -> list[str]:
    return [
        str(c["OrderID"])
        for c in raw.get("ConditionalOrders") or []
        if str(c.get("Relationship", "")).upper() in relationships
    ]


# --- tokens -----------------------------------------------------------------------------


class _Transport(Exception):
    """No HTTP answer (timeout, connection refused or dropped)."""


@dataclass
class _Failure:
    status: int | None
    error: str
    message: str

    @property
    def transient(self) -> bool:
        return self.status is None or self.status >= 500 or self.status == 429

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else "no response"
        text = ": ".join(p for p in (self.error, self.message) if p)
        return f"{where}: {text}" if text else where


def _failure_of(resp: requests.Response) -> _Failure:
    """TradeStation's `ErrorResponse` ({Error, Message}), else the body's first 200 chars."""
    try:
        body = resp.json()
    except ValueError:
        return _Failure(resp.status_code, "", resp.text[:200])
    if isinstance(body, dict):
        return _Failure(
            resp.status_code,
            str(body.get("Error") or body.get("error") or ""),
            str(body.get("Message") or body.get("error_description") or "")[:300],
        )
    return _Failure(resp.status_code, "", str(body)[:200])


class StaticRefreshToken:
    """A refresh token held in memory only (a token from the environment). A rotated token
    is kept for this process and lost on the next cold start, so a warning says so."""

    def __init__(self, token: str) -> None:
        self._token = token

    def load(self) -> str:
        return self._token

    def save(self, refresh_token: str) -> None:
        log.warning(
            "tradestation: the refresh token was rotated but no secret is configured to keep "
            "it (FLOWTRADER_TRADESTATION_REFRESH_TOKEN_SECRET); sign in again after a restart"
        )
        self._token = refresh_token


class SecretsManagerRefreshToken:
    """The refresh token in a JSON secret (the app secret by default): read on every refresh,
    so a token another Lambda rotated is picked up; a rotated one is written back into the
    same JSON (the other keys kept)."""

    def __init__(
        self,
        client: Any,
        secret_id: str,
        key: str = "tradestation_refresh_token",
        *,
        fallback: str = "",
    ) -> None:
        self._client = client
        self._secret_id = secret_id
        self._key = key
        self._fallback = fallback  # the environment's token, until the secret holds one

    def _value(self) -> dict[str, Any]:
        from chalicelib.adapters.secrets import SecretsUnavailable, fetch_secret_json

        try:
            return fetch_secret_json(self._secret_id, self._client)
        except SecretsUnavailable as exc:
            raise BrokerUnavailable(f"cannot read the TradeStation refresh token: {exc}") from exc

    def _key_in(self, value: dict[str, Any]) -> str:
        wanted = self._key.lower().removeprefix("flowtrader_")
        for key in value:
            if str(key).lower().removeprefix("flowtrader_") == wanted:
                return str(key)
        return self._key

    def load(self) -> str:
        value = self._value()
        return str(value.get(self._key_in(value)) or self._fallback)

    def save(self, refresh_token: str) -> None:
        value = self._value()
        value[self._key_in(value)] = refresh_token
        try:
            self._client.put_secret_value(SecretId=self._secret_id, SecretString=json.dumps(value))
        except Exception as exc:  # boto errors; the secret's name is enough to act on
            raise BrokerUnavailable(
                f"TradeStation rotated the refresh token but writing it to {self._secret_id} "
                f"failed ({type(exc).__name__}): sign in again if the next start cannot refresh"
            ) from exc
        log.info("tradestation: rotated refresh token written to %s", self._secret_id)


class TokenSource:
    """Access tokens by the refresh-token grant, cached until `TOKEN_MARGIN_S` before expiry.

    TradeStation: "A new access token should only be obtained when the current one is
    approaching expiration or has expired"; with a rotating key "you will receive a new
    Refresh Token in the response" — written to `store` before it is relied on. When the grant
    is refused the store is read again once (another Lambda may have rotated the token).
    """

    def __init__(
        self,
        session: requests.Session,
        token_url: str,
        client_id: str,
        client_secret: str,
        store: RefreshTokenStore,
        *,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._store = store
        self._timeout_s = timeout_s
        self._clock = clock
        self._access: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0

    def access_token(self) -> str:
        with self._lock:
            if self._access is None or self._clock() >= self._expires_at:
                self._refresh()
            assert self._access is not None
            return self._access

    def invalidate(self) -> None:
        with self._lock:
            self._access = None

    def _refresh(self) -> None:
        token = self._store.load()
        if not token:
            raise BrokerRejected(
                "no TradeStation refresh token: sign in once (docs/brokers/tradestation.md) "
                "and store it as tradestation_refresh_token",
                code="auth",
            )
        body = self._grant(token)
        if body is None:  # refused: maybe another process rotated it meanwhile
            again = self._store.load()
            body = self._grant(again) if again and again != token else None
            token = again or token
        if body is None:
            raise BrokerRejected(
                "TradeStation refused the refresh token (expired, revoked or rotated away): "
                "sign in again (docs/brokers/tradestation.md)",
                code="auth",
            )
        rotated = body.get("refresh_token")
        if rotated and rotated != token:
            self._store.save(str(rotated))
        self._access = str(body["access_token"])
        lifetime = float(body.get("expires_in") or 1200)
        self._expires_at = self._clock() + max(lifetime - TOKEN_MARGIN_S, lifetime / 2)
        self.refreshes += 1

    def _grant(self, refresh_token: str) -> dict[str, Any] | None:
        """The token endpoint's answer, None when it refuses the grant."""
        import requests

        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "refresh_token": refresh_token,
        }
        if self._client_secret:
            form["client_secret"] = self._client_secret
        try:
            resp = self._session.post(self._url, data=form, timeout=self._timeout_s)
        except requests.RequestException as exc:
            raise BrokerUnavailable(
                f"TradeStation sign-in unreachable ({type(exc).__name__})"
            ) from exc
        if resp.status_code >= 500 or resp.status_code == 429:
            raise BrokerUnavailable(f"TradeStation sign-in unavailable (HTTP {resp.status_code})")
        if resp.status_code != 200:
            failure = _failure_of(resp)
            log.warning("tradestation: refresh grant refused (%s)", failure.error or failure)
            return None
        body = resp.json()
        if not isinstance(body, dict) or not body.get("access_token"):
            raise BrokerUnavailable("TradeStation sign-in answered without an access token")
        return body


# --- the broker -------------------------------------------------------------------------


class _OutcomeUnknown(Exception):
    """The POST may or may not have placed the order, and the scan found none."""


class TradeStationBroker:
    """One TradeStation account. Build with `connect(...)` or `from_settings(settings)`.

    `recorded_id`: our client order id -> TradeStation OrderID as recorded elsewhere (the
    state table), consulted when this process has not placed the order itself.
    """

    name = "tradestation"

    def __init__(
        self,
        session: requests.Session,
        tokens: TokenSource,
        account_id: str,
        *,
        base_url: str = SIM_URL,
        timeout_s: float = 5.0,
        read_attempts: int = 3,
        wait_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        cancel_settle_s: float = 2.0,
        recorded_id: Callable[[str], str | None] | None = None,
    ) -> None:
        if not account_id:
            raise BrokerUnavailable(
                "TradeStation account is not configured: set FLOWTRADER_TRADESTATION_ACCOUNT_ID"
            )
        self._session = session
        self._tokens = tokens
        self._account = account_id
        self._base = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._read_attempts = max(1, read_attempts)
        self._wait_s = wait_s
        self._sleep = sleep
        self._cancel_settle_s = cancel_settle_s
        self._recorded_id = recorded_id
        self._ids: dict[str, str] = {}  # our client order id -> the primary OrderID
        self._cids: dict[str, str] = {}  # OrderID -> our client order id
        self._unsure: dict[str, tuple[str, ...]] = {}  # cid -> fingerprint, outcome unknown
        self._foreign_seen: set[str] = set()

    @classmethod
    def connect(
        cls,
        account_id: str,
        client_id: str,
        client_secret: str,
        store: RefreshTokenStore,
        *,
        base_url: str = SIM_URL,
        token_url: str = TOKEN_URL,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> TradeStationBroker:
        import requests

        if not client_id:
            raise BrokerUnavailable(
                "TradeStation API key is not configured: set FLOWTRADER_TRADESTATION_CLIENT_ID"
            )
        if base_url.rstrip("/") == LIVE_URL:
            log.warning("tradestation: LIVE trading; orders go to the live account")
        session = requests.Session()
        tokens = TokenSource(
            session, token_url, client_id, client_secret, store, timeout_s=timeout_s, clock=clock
        )
        return cls(session, tokens, account_id, base_url=base_url, timeout_s=timeout_s, **kwargs)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        secrets_client: Any | None = None,
        recorded_id: Callable[[str], str | None] | None = None,
    ) -> TradeStationBroker:
        """The refresh token lives in `tradestation_refresh_token_secret` (else the app secret,
        `secrets_arn`) when one is set, read and rotated there (the environment's token only
        until the secret holds one); else the environment's, in memory."""
        secret = settings.tradestation_refresh_token_secret or settings.secrets_arn
        store: RefreshTokenStore
        if secret:
            if secrets_client is None:
                import boto3

                secrets_client = boto3.session.Session().client("secretsmanager")
            store = SecretsManagerRefreshToken(
                secrets_client,
                secret,
                fallback=settings.tradestation_refresh_token.get_secret_value(),
            )
        else:
            store = StaticRefreshToken(settings.tradestation_refresh_token.get_secret_value())
        base = settings.tradestation_base_url or (
            SIM_URL if settings.tradestation_sim else LIVE_URL
        )
        return cls.connect(
            settings.tradestation_account_id,
            settings.tradestation_client_id,
            settings.tradestation_client_secret.get_secret_value(),
            store,
            base_url=base,
            token_url=settings.tradestation_token_url,
            timeout_s=settings.tradestation_timeout_s,
            recorded_id=recorded_id,
        )

    # --- Broker port -------------------------------------------------------------------

    def place_order(self, intent: OrderIntent) -> Order:
        """Look up, then POST once; on an unknown outcome scan today's orders before any retry.

        Raises `BrokerRejected` (do not retry) or `BrokerUnavailable` (outcome still unknown:
        place the same intent again later; its `OrderConfirmID` keeps it one order).
        """
        cid = intent.client_order_id
        known = self.get_order_by_client_id(cid)
        if known is not None:
            return known
        held = self._held(intent.symbol)
        path, body = build_order_request(intent, self._account, held)
        first = body["Orders"][0] if "Orders" in body else body
        print_ = fingerprint(first)
        try:
            resp = self._send("POST", path, json=body)
        except _Transport as exc:
            return self._after_unknown(cid, print_, str(exc))
        if resp.status_code != 200:
            failure = _failure_of(resp)
            if failure.transient:
                return self._after_unknown(cid, print_, str(failure))
            if _duplicate(failure):
                log.info("tradestation: %s already placed (duplicate OrderConfirmID)", cid)
                return self._after_unknown(cid, print_, str(failure))
            raise BrokerRejected(
                reject_reason(failure), code=failure.error or str(resp.status_code)
            )
        placed, errors = _order_responses(resp)
        if not placed:
            message = "; ".join(str(e.get("Message") or e.get("Error")) for e in errors)
            if "duplicate" in message.lower():
                return self._after_unknown(cid, print_, message)
            raise BrokerRejected(f"refused by TradeStation ({message or 'no order placed'})")
        if errors:
            log.warning(
                "tradestation: %s placed %d order(s) but %d failed: %s",
                cid,
                len(placed),
                len(errors),
                "; ".join(str(e.get("Message")) for e in errors),
            )
        self._remember(cid, placed[0])
        self._unsure.pop(cid, None)
        try:
            found = self.get_order_by_client_id(cid)
        except BrokerUnavailable:
            found = None
        return found or _unread(intent, placed[0])

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        """By the OrderID remembered (or recorded) under our id; after an unknown outcome, by
        the intent's fingerprint among today's orders."""
        order_id = self._ids.get(client_order_id)
        if order_id is None and self._recorded_id is not None:
            try:
                order_id = self._recorded_id(client_order_id)
            except Exception as exc:  # the state table; OrderConfirmID still guards a re-POST
                log.warning("tradestation: recorded order lookup failed (%s)", type(exc).__name__)
                order_id = None
            if order_id:
                self._remember(client_order_id, order_id)
        if order_id is None and client_order_id in self._unsure:
            raw = self._scan(self._unsure[client_order_id])
            if raw is None:
                return None
            order_id = str(raw["OrderID"])
            self._remember(client_order_id, order_id)
            self._unsure.pop(client_order_id, None)
        if order_id is None:
            return None
        found = self._orders_by_id([order_id])
        if not found:
            return None
        return self._with_links(found[0], self._today_by_id())

    def cancel_order(self, broker_order_id: str) -> None:
        """Cancel, and wait (up to `cancel_settle_s`) until TradeStation says it is done.

        DELETE answers "Cancel request sent": the order shows UCN ("Cancel Sent") until the
        exchange confirms, and its shares stay committed until then. A filled or finished
        order is refused here, before any DELETE.
        """
        raw = self._order_raw(broker_order_id)
        if raw is None:
            raise BrokerRejected("order not found at TradeStation", code="404")
        status = str(raw.get("Status") or "")
        if status in _DONE:
            raise BrokerRejected(
                f"order is not cancelable (it is {raw.get('StatusDescription') or status})",
                code=NOT_CANCELABLE,
            )

        def cancel() -> None:
            resp = self._call("DELETE", f"/orderexecution/orders/{broker_order_id}")
            if resp.status_code != 200:
                failure = _failure_of(resp)
                if failure.transient:
                    raise BrokerUnavailable(f"TradeStation unavailable ({failure})")
                raise BrokerRejected(
                    f"order is not cancelable ({failure.message or failure.error})",
                    code=NOT_CANCELABLE,
                )

        self._read(cancel)
        delay, waited = 0.05, 0.0
        while True:
            raw = self._order_raw(broker_order_id)
            if raw is None or str(raw.get("Status") or "") not in CANCEL_PENDING:
                return
            if waited >= self._cancel_settle_s:
                log.warning(
                    "tradestation: cancel of %s still pending after %.1f s", broker_order_id, waited
                )
                return
            self._sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)

    def replace_order(
        self,
        broker_order_id: str,
        *,
        qty: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> Order:
        """Change a working order's quantity or prices (PUT /orderexecution/orders/{id})."""
        body: dict[str, Any] = {}
        if qty is not None:
            body["Quantity"] = _str(Decimal(str(qty)))
        if limit_price is not None:
            body["LimitPrice"] = _str_price(limit_price)
        if stop_price is not None:
            body["StopPrice"] = _str_price(stop_price)
        if not body:
            raise BrokerRejected("a replace needs a quantity or a price")
        try:
            resp = self._send("PUT", f"/orderexecution/orders/{broker_order_id}", json=body)
        except _Transport as exc:
            raise BrokerUnavailable(f"TradeStation did not confirm the replace ({exc})") from exc
        if resp.status_code != 200:
            failure = _failure_of(resp)
            if failure.transient:
                raise BrokerUnavailable(f"TradeStation did not confirm the replace ({failure})")
            raise BrokerRejected(
                reject_reason(failure), code=failure.error or str(resp.status_code)
            )
        new_id = str((resp.json() or {}).get("OrderID") or broker_order_id)
        cid = self._cids.get(broker_order_id)
        if cid is not None:
            self._remember(cid, new_id)
        raw = self._order_raw(new_id)
        if raw is None:
            raise BrokerUnavailable(f"TradeStation replaced {broker_order_id} but cannot show it")
        return self._with_links(raw, self._today_by_id())

    def list_orders(self, status: str = "all", limit: int = 100) -> list[Order]:
        """Today's and open orders flowtrader trades, newest first, linked orders nested under
        their entry (or a group's first order); foreign ones left out."""
        orders = self._grouped()
        if status == "open":
            orders = [o for o in orders if o.status in _OPEN]
        elif status == "closed":
            orders = [o for o in orders if o.status not in _OPEN]
        return orders[: max(limit, 1)]

    def foreign_orders(self, status: str = "all", limit: int = 100) -> list[dict[str, Any]]:
        """Orders in the account of kinds flowtrader does not trade, for display only."""
        views = []
        for raw in self._today():
            reason = foreign_reason(raw)
            if reason is not None:
                views.append(self._note_foreign(raw, reason))
        return views[: max(limit, 1)]

    def working_exits(self, symbol: str) -> list[Order]:
        """The working orders that protect or close `symbol`'s position, flat: the OSO
        children of filled entries, the members of BRK/OCO groups, and plain orders on the
        side that reduces the position."""
        by_id = self._today_by_id()
        held = self._held(symbol)
        reducing = Side.SELL if held > 0 else Side.BUY
        exits: list[Order] = []
        for raw in by_id.values():
            if foreign_reason(raw) is not None:
                continue
            order = parse_order(raw, self._cid(raw))
            if order.symbol != symbol or order.status not in _OPEN:
                continue
            parents = _links(raw, "OSP")
            if parents:
                parent = by_id.get(parents[0])
                filled = parent is not None and _STATUS.get(str(parent.get("Status"))) in (
                    OrderStatus.FILLED,
                    OrderStatus.PARTIALLY_FILLED,
                )
                if filled:
                    exits.append(order)
            elif _links(raw, "BRK", "OCO") or (
                held and order.side is reducing and not _links(raw, "OSO")
            ):
                exits.append(order)
        return exits

    def get_positions(self) -> list[Position]:
        """Stock positions; others the account holds (options, futures) are left out."""
        body = self._get_json(f"/brokerage/accounts/{self._account}/positions")
        positions = []
        for raw in body.get("Positions") or []:
            if (raw.get("AssetType") or "STOCK") != "STOCK":
                self._note_foreign_position(raw)
                continue
            qty = Decimal(str(raw.get("Quantity") or 0))
            if raw.get("LongShort") == "Short" and qty > 0:
                qty = -qty  # the spec says negative for shorts; both spellings read the same
            positions.append(
                Position(
                    symbol=str(raw["Symbol"]),
                    qty=float(qty),
                    avg_entry_price=_dec(raw.get("AveragePrice")) or 0.0,
                    market_price=_dec(raw.get("Last")),
                    unrealized_pl=_dec(raw.get("UnrealizedProfitLoss")),
                )
            )
        return positions

    def get_account(self) -> Account:
        """Real-time balances, with the beginning-of-day equity as `last_equity` (so the
        account's day P/L is equity − BOD equity, realized and unrealized)."""
        balances = self._get_json(f"/brokerage/accounts/{self._account}/balances")
        bod = self._get_json(f"/brokerage/accounts/{self._account}/bodbalances")
        raw = self._mine(balances.get("Balances"), balances)
        start = self._mine(bod.get("BODBalances"), bod)
        detail = raw.get("BalanceDetail") or {}
        return Account(
            equity=_dec(raw.get("Equity")) or 0.0,
            cash=_dec(raw.get("CashBalance")) or 0.0,
            buying_power=_dec(raw.get("BuyingPower")) or 0.0,
            daytrade_count=int(Decimal(str(detail.get("DayTrades") or 0))),
            last_equity=_dec((start.get("BalanceDetail") or {}).get("Equity")),
        )

    def get_portfolio(self) -> tuple[Account, list[Position]]:
        """TradeStation has no single call for both: balances, BOD balances, positions."""
        return self.get_account(), self.get_positions()

    # --- internals ----------------------------------------------------------------------

    def _mine(self, rows: Any, body: dict[str, Any]) -> dict[str, Any]:
        for row in rows or []:
            if str(row.get("AccountID")) == self._account:
                return dict(row)
        errors = "; ".join(str(e.get("Message")) for e in body.get("Errors") or [])
        raise BrokerRejected(
            f"TradeStation has no balances for account {self._account}"
            + (f" ({errors})" if errors else ""),
            code="account",
        )

    def _remember(self, cid: str, order_id: str) -> None:
        self._ids[cid] = order_id
        self._cids[order_id] = cid

    def _cid(self, raw: dict[str, Any]) -> str:
        return self._cids.get(str(raw.get("OrderID")), f"ts-{raw.get('OrderID')}")

    def _after_unknown(self, cid: str, print_: tuple[str, ...], why: str) -> Order:
        """The POST's outcome is unknown (or TradeStation calls it a duplicate): scan."""
        log.warning("tradestation: order %s outcome unknown (%s)", cid, why)
        self._unsure[cid] = print_
        found = self.get_order_by_client_id(cid)
        if found is not None:
            log.info("tradestation: %s was placed despite the error", cid)
            return found
        raise BrokerUnavailable(f"TradeStation did not confirm order {cid}: {why}")

    def _scan(self, print_: tuple[str, ...]) -> dict[str, Any] | None:
        """The newest of today's orders with this fingerprint that no other id claims."""
        for raw in self._today():
            if str(raw.get("OrderID")) in self._cids:
                continue
            if _links(raw, "OSP"):
                continue  # a child of an OSO is never the order a request names first
            if raw_fingerprint(raw) == print_:
                return raw
        return None

    def _held(self, symbol: str) -> Decimal:
        for p in self.get_positions():
            if p.symbol == symbol:
                return Decimal(str(p.qty))
        return Decimal(0)

    def _with_links(self, raw: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> Order:
        """The order with its linked orders as legs: OSO children, or BRK/OCO siblings."""
        cid = self._cid(raw)
        order = parse_order(raw, cid)
        linked = _links(raw, "OSO") or _links(raw, "BRK", "OCO")
        legs = []
        for order_id in linked:
            leg_raw = by_id.get(order_id) or self._order_raw(order_id)
            if leg_raw is not None and foreign_reason(leg_raw) is None:
                legs.append(
                    parse_order(leg_raw, self._cids.get(order_id, f"{cid}-{order_id}")).model_copy(
                        update={"parent_client_order_id": cid}
                    )
                )
        return order.model_copy(update={"legs": tuple(legs)})

    def _grouped(self) -> list[Order]:
        """Top-level orders with their linked ones nested: an OSO entry with its children, a
        BRK/OCO group under its first (lowest) OrderID."""
        by_id = self._today_by_id()
        tops = []
        for order_id, raw in by_id.items():
            reason = foreign_reason(raw)
            if reason is not None:
                self._note_foreign(raw, reason)
                continue
            if _links(raw, "OSP"):
                continue  # an OSO child: listed under its entry
            siblings = _links(raw, "BRK", "OCO")
            if siblings and min([order_id, *siblings], key=_order_key) != order_id:
                continue  # listed under the group's first order
            tops.append(self._with_links(raw, by_id))
        return tops

    def _today(self) -> list[dict[str, Any]]:
        """GET /brokerage/accounts/{id}/orders: "today's orders and open orders", newest first,
        every page."""
        rows: list[dict[str, Any]] = []
        params: dict[str, Any] = {}
        while True:
            body = self._get_json(f"/brokerage/accounts/{self._account}/orders", params)
            rows.extend(body.get("Orders") or [])
            token = body.get("NextToken")
            if not token or token == params.get("nextToken"):
                return rows
            params = {"pageSize": 600, "nextToken": token}

    def _today_by_id(self) -> dict[str, dict[str, Any]]:
        return {str(raw.get("OrderID")): raw for raw in self._today()}

    def _orders_by_id(self, order_ids: list[str]) -> list[dict[str, Any]]:
        ids = ",".join(order_ids[:MAX_ORDER_IDS])
        try:
            body = self._get_json(f"/brokerage/accounts/{self._account}/orders/{ids}")
        except BrokerRejected as exc:
            if exc.code in ("404", "NotFound"):
                return []
            raise
        return list(body.get("Orders") or [])

    def _order_raw(self, order_id: str) -> dict[str, Any] | None:
        found = self._orders_by_id([order_id])
        return found[0] if found else None

    def _note_foreign(self, raw: dict[str, Any], reason: str) -> dict[str, Any]:
        view = foreign_view(raw, reason)
        if view["id"] not in self._foreign_seen:
            self._foreign_seen.add(view["id"])
            log.warning(
                "tradestation: %s %s (%s) is not traded by flowtrader; shown, never acted on",
                view["class"] or "order",
                view["symbol"] or view["id"],
                reason,
            )
        return view

    def _note_foreign_position(self, raw: dict[str, Any]) -> None:
        key = f"position:{raw.get('Symbol')}"
        if key not in self._foreign_seen:
            self._foreign_seen.add(key)
            log.warning(
                "tradestation: %s position %s is not traded by flowtrader; left out",
                raw.get("AssetType"),
                raw.get("Symbol"),
            )

    # --- HTTP -----------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> requests.Response:
        """One request with the bearer token; a 401 refreshes the token and repeats it once
        (an access token can be invalidated before its 20 minutes are up)."""
        import requests

        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self._tokens.access_token()}"}
            try:
                resp = self._session.request(
                    method,
                    f"{self._base}{path}",
                    headers=headers,
                    json=json,
                    params=params,
                    timeout=self._timeout_s,
                )
            except requests.RequestException as exc:
                raise _Transport(type(exc).__name__) from exc
            if resp.status_code == 401 and attempt == 1:
                log.info("tradestation: access token refused; refreshing once")
                self._tokens.invalidate()
                continue
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self._send(method, path, **kwargs)
        except _Transport as exc:
            raise BrokerUnavailable(f"TradeStation unreachable ({exc})") from exc

    def _get_json(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        def get() -> dict[str, Any]:
            resp = self._call("GET", path, params=params)
            if resp.status_code != 200:
                failure = _failure_of(resp)
                if failure.transient:
                    raise BrokerUnavailable(f"TradeStation unavailable ({failure})")
                raise BrokerRejected(
                    reject_reason(failure), code=failure.error or str(resp.status_code)
                )
            body = resp.json()
            return body if isinstance(body, dict) else {}

        result: dict[str, Any] = self._read(get)
        return result

    def _read(self, fn: Callable[[], Any]) -> Any:
        """Run an idempotent call, retrying while TradeStation is unavailable."""
        retrying = Retrying(
            stop=stop_after_attempt(self._read_attempts),
            wait=wait_exponential(multiplier=self._wait_s, max=8 * self._wait_s),
            retry=retry_if_exception_type(BrokerUnavailable),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(fn)


def _order_key(order_id: str) -> tuple[int, str]:
    return (int(order_id), order_id) if order_id.isdigit() else (0, order_id)


def _duplicate(failure: _Failure) -> bool:
    return "duplicate" in f"{failure.error} {failure.message}".lower()


def _order_responses(resp: requests.Response) -> tuple[list[str], list[dict[str, Any]]]:
    """(OrderIDs placed, errors) of an `OrderResponses` answer. The spec types the answer as
    an array of OrderResponses and shows one object as its example; both are read."""
    body = resp.json()
    bodies = body if isinstance(body, list) else [body]
    placed: list[str] = []
    errors: list[dict[str, Any]] = []
    for item in bodies:
        if not isinstance(item, dict):
            continue
        placed += [str(o["OrderID"]) for o in item.get("Orders") or [] if o.get("OrderID")]
        errors += [e for e in item.get("Errors") or [] if isinstance(e, dict)]
    return placed, errors


def _unread(intent: OrderIntent, order_id: str) -> Order:
    """A placed order TradeStation could not show yet: what we sent, status pending."""
    return Order(
        broker_order_id=order_id,
        client_order_id=intent.client_order_id,
        symbol=intent.symbol,
        side=intent.side,
        qty=intent.qty,
        order_type=intent.order_type,
        status=OrderStatus.PENDING,
        limit_price=intent.limit_price,
        stop_price=intent.stop_price,
    )


def reject_reason(failure: _Failure) -> str:
    """A trader's reading of a TradeStation refusal; TradeStation's own words follow."""
    status, text = failure.status, f"{failure.error} {failure.message}".lower()
    if status == 401:
        label = "TradeStation refused the access token (check the API key and SIM vs live)"
    elif status == 403:
        label = "forbidden by TradeStation (the key lacks the Trade scope, or the account)"
    elif status == 404:
        label = "not found at TradeStation"
    elif "buying power" in text:
        label = "insufficient buying power"
    elif "short" in text:
        label = "the asset cannot be sold short"
    elif "symbol" in text:
        label = "asset not found or not tradable"
    else:
        label = "refused by TradeStation"
    words = failure.message or failure.error
    return f"{label} (tradestation: {words})" if words else label
