"""Alpaca (paper or live) behind the `Broker` port, through alpaca-py's `TradingClient`.

Money safety first:
- An order is POSTed with the intent's deterministic `client_order_id`. When the outcome is
  unknown (timeout, connection drop, 5xx, 429) the order is looked up by that id before
  anything else; a lookup that finds nothing raises `BrokerUnavailable`, and the caller may
  place the same intent again. Alpaca refuses a second order with the same id anyway
  (40010001), which is then fetched and returned.
- One retry layer for POSTs: `place_order` POSTs once by default (`submit_attempts=1`); the
  use case's `place` is the layer that calls it again after its own lookup. alpaca-py
  retries 429/504 inside `RESTClient._request` for every method, POST included, and sets no
  timeout: both are switched off on the client built here (`_harden`), and every request
  has `timeout_s`. Reads (idempotent GETs, cancels) are retried here (`read_attempts`).
  With the worker's 2 tries per receive and SQS's 5 receives, one client order id is POSTed
  at most 10 times over an alert's life, and is one order (docs/architecture.md, "Retries").
- Keys come from the settings, else from the Secrets Manager secret, read through the
  composition root's client (`from_settings(..., read_secret=...)`).
- The account may hold orders flowtrader does not trade (options, multi-leg options, IPO,
  crypto): orders are listed raw and parsed one by one; those are kept as *foreign*
  (`foreign_orders()`, logged once), never acted on, never a crash.
- Alpaca's refusals become `BrokerRejected` with a reason a trader understands and the
  Alpaca code (`reject_reason`).

alpaca-py pulls pandas, so it is imported lazily (inside functions), never at import time.
Prices cross the boundary as `Decimal` rounded to a valid tick.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from chalicelib.domain import Account, Order, OrderIntent, OrderStatus, OrderType, Position, Side
from chalicelib.ports import BrokerRejected, BrokerUnavailable
from chalicelib.rules.prices import round_to_tick

if TYPE_CHECKING:
    from chalicelib.settings import Settings

log = logging.getLogger(__name__)

DUPLICATE_CLIENT_ORDER_ID = "40010001"
TRADED_ASSET_CLASSES = frozenset({"us_equity"})
MAX_LIST_LIMIT = 500  # Alpaca's largest page of GET /v2/orders
UNSETTLED = frozenset({"pending_cancel"})  # a cancel Alpaca has not finished yet
_OPEN = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING)

# Alpaca status -> ours; anything not listed is a working state we call PENDING.
_STATUS = {
    "new": OrderStatus.NEW,
    "accepted": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "replaced": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


class _OutcomeUnknown(Exception):
    """The POST may or may not have created the order, and a lookup found none: POST again."""


class _Failure:
    """What an alpaca-py/requests exception means for us."""

    def __init__(self, status: int | None, code: str | None, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        """Timeouts, connection errors, 5xx and 429: the outcome is unknown."""
        return self.status is None or self.status >= 500 or self.status == 429

    @property
    def duplicate(self) -> bool:
        # Alpaca has worded it "client_order_id must be unique" and "client order id ...".
        words = self.message.lower().replace(" ", "_")
        return self.code == DUPLICATE_CLIENT_ORDER_ID and "client_order_id" in words

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else "no response"
        return f"{where}: {self.message}" if self.message else where


def _failure(exc: Exception) -> _Failure:
    """Classify an exception raised by the client (APIError, requests errors, others)."""
    from alpaca.common.exceptions import APIError

    if isinstance(exc, APIError):
        status = exc.status_code
        code: str | None = None
        message = str(exc)
        try:
            body = json.loads(str(exc))
            if isinstance(body, dict):
                code = str(body["code"]) if "code" in body else None
                message = str(body.get("message", message))
        except ValueError:
            message = message[:200]
        return _Failure(status, code, message)
    import requests

    if isinstance(exc, requests.RequestException):
        return _Failure(None, None, type(exc).__name__)
    raise exc


def reject_reason(status: int | None, code: str | None, message: str) -> str:
    """A trader's reading of an Alpaca refusal; Alpaca's own words follow in parentheses.

    The code itself travels on `BrokerRejected.code`, so it is not repeated here.
    """
    text = message.lower()
    if code == "40310000":
        if "wash trade" in text:
            label = "potential wash trade: an opposite-side order is open in this symbol"
        elif "short" in text:
            label = "the asset cannot be sold short"
        elif "qty" in text or "shares" in text:
            label = "not enough shares available to sell"
        else:
            label = "insufficient buying power"
    elif code == "40310100":
        label = "pattern day trader protection"
    elif code == "42210000":
        if "cancel" in text:
            label = "order is not cancelable"
        elif "asset" in text or "symbol" in text:
            label = "asset not found or not tradable"
        else:
            label = "invalid price or order parameters"
    elif code == DUPLICATE_CLIENT_ORDER_ID:
        label = "invalid order"
    elif status == 401:
        label = "Alpaca refused the API keys (check paper vs live keys)"
    elif status == 403:
        label = "forbidden by Alpaca"
    elif status == 404:
        label = "not found at Alpaca"
    else:
        label = "refused by Alpaca"
    if not message or message.lower() in label.lower():
        return label
    return f"{label} (alpaca: {message})"


def _price(value: float | None) -> Decimal | None:
    """A price on a valid tick, as the Decimal alpaca-py is given."""
    if value is None:
        return None
    return Decimal(str(round_to_tick(value)))


def _leg_price(value: float) -> float:
    """A take-profit or stop-loss leg's price on a valid tick; alpaca-py types these as float
    (it converts a Decimal to the same float)."""
    return round_to_tick(value)


def _common_fields(intent: OrderIntent) -> dict[str, Any]:
    """What every order request carries: symbol, quantity, side, time in force, our id."""
    from alpaca.trading.enums import OrderSide, TimeInForce

    return {
        "symbol": intent.symbol,
        "qty": Decimal(str(intent.qty)),
        "side": OrderSide(intent.side.value),
        "time_in_force": TimeInForce(intent.time_in_force),
        "client_order_id": intent.client_order_id,
    }


def build_order_request(intent: OrderIntent) -> Any:
    """The alpaca-py request for `intent`: simple, bracket (both legs) or OTO (one leg); for
    a protective intent an OCO (both prices), a stop or a limit (`_protection_request`)."""
    from alpaca.trading.enums import OrderClass
    from alpaca.trading.requests import (
        LimitOrderRequest,
        MarketOrderRequest,
        StopLimitOrderRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
        TrailingStopOrderRequest,
    )

    if intent.protects_position:
        return _protection_request(intent)
    legs = (intent.take_profit is not None) + (intent.stop_loss is not None)
    if legs and intent.order_type is OrderType.TRAILING_STOP:
        raise BrokerRejected(
            "Alpaca does not allow bracket/OTO legs on a trailing_stop order", code="42210000"
        )
    fields = _common_fields(intent)
    if legs:
        fields["order_class"] = OrderClass.BRACKET if legs == 2 else OrderClass.OTO
    if intent.take_profit is not None:
        fields["take_profit"] = TakeProfitRequest(limit_price=_leg_price(intent.take_profit))
    if intent.stop_loss is not None:
        fields["stop_loss"] = StopLossRequest(stop_price=_leg_price(intent.stop_loss))
    kind = intent.order_type
    if kind is OrderType.MARKET:
        return MarketOrderRequest(**fields)
    if kind is OrderType.LIMIT:
        return LimitOrderRequest(**fields, limit_price=_price(intent.limit_price))
    if kind is OrderType.STOP:
        return StopOrderRequest(**fields, stop_price=_price(intent.stop_price))
    if kind is OrderType.STOP_LIMIT:
        return StopLimitOrderRequest(
            **fields,
            stop_price=_price(intent.stop_price),
            limit_price=_price(intent.limit_price),
        )
    if kind is OrderType.TRAILING_STOP:
        if intent.trail_price is not None:
            return TrailingStopOrderRequest(**fields, trail_price=_price(intent.trail_price))
        return TrailingStopOrderRequest(**fields, trail_percent=Decimal(str(intent.trail_percent)))
    raise BrokerRejected(f"unsupported order type {kind}", code="42210000")


def _protection_request(intent: OrderIntent) -> Any:
    """Exit-only protection of a held position, as Alpaca documents it: an OCO is a limit
    order with `order_class: oco`, `take_profit.limit_price` and `stop_loss.stop_price`
    (the filled leg cancels the other); one price is a plain stop or limit order."""
    from alpaca.trading.enums import OrderClass
    from alpaca.trading.requests import (
        LimitOrderRequest,
        StopLossRequest,
        StopOrderRequest,
        TakeProfitRequest,
    )

    fields = _common_fields(intent)
    if intent.stop_loss is not None and intent.take_profit is not None:
        return LimitOrderRequest(
            **fields,
            order_class=OrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=_leg_price(intent.take_profit)),
            stop_loss=StopLossRequest(stop_price=_leg_price(intent.stop_loss)),
        )
    if intent.stop_loss is not None:
        return StopOrderRequest(**fields, stop_price=_price(intent.stop_loss))
    if intent.take_profit is not None:
        return LimitOrderRequest(**fields, limit_price=_price(intent.take_profit))
    raise BrokerRejected("a protective order needs stop_loss and/or take_profit", code="42210000")


def _dec(value: Any) -> float | None:
    return None if value in (None, "") else float(Decimal(str(value)))


class ForeignOrder(Exception):
    """An order of a kind flowtrader does not trade (or cannot read): shown, never acted on."""


def foreign_reason(raw: dict[str, Any]) -> str | None:
    """Why an order (as Alpaca sends it) is not one flowtrader trades, or None when it is.

    Multi-leg options orders carry no top-level asset class, symbol or side; options, crypto
    and IPO orders name their asset class. Only US equities are traded here.
    """
    if (raw.get("order_class") or "") == "mleg":
        return "multi-leg options order"
    asset_class = raw.get("asset_class") or ""
    if asset_class and asset_class not in TRADED_ASSET_CLASSES:
        return f"{asset_class} order"
    return None


def parse_order(raw: dict[str, Any]) -> Order:
    """One order of a `GET /v2/orders` answer as ours; `ForeignOrder` when it is not ours.

    Parsed one at a time, so one order alpaca-py cannot model (an unknown asset class, a
    multi-leg order's empty side and type) never hides the others.
    """
    from alpaca.trading.models import Order as AlpacaOrder

    reason = foreign_reason(raw)
    if reason is not None:
        raise ForeignOrder(reason)
    try:
        return to_order(AlpacaOrder(**raw))
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # pydantic errors included
        raise ForeignOrder(f"unreadable order ({type(exc).__name__})") from exc


def foreign_view(raw: dict[str, Any], reason: str) -> dict[str, Any]:
    """A foreign order for display: plain values only."""
    legs = raw.get("legs") or []
    symbol = raw.get("symbol") or "/".join(str(leg.get("symbol") or "") for leg in legs)
    return {
        "id": str(raw.get("id", "")),
        "client_order_id": str(raw.get("client_order_id") or ""),
        "symbol": symbol,
        "class": raw.get("asset_class") or raw.get("order_class") or "",
        "order_class": raw.get("order_class") or "",
        "status": str(raw.get("status") or ""),
        "side": raw.get("side") or "",
        "qty": raw.get("qty") or raw.get("notional"),
        "reason": reason,
    }


def to_order(raw: Any) -> Order:
    """alpaca-py's Order (strings for numbers) as ours."""
    kind = raw.type or raw.order_type
    return Order(
        broker_order_id=str(raw.id),
        client_order_id=raw.client_order_id,
        symbol=raw.symbol or "",
        side=Side(raw.side.value),
        qty=_dec(raw.qty) or 0.0,
        order_type=OrderType(kind.value),
        status=_STATUS.get(raw.status.value, OrderStatus.PENDING),
        filled_qty=_dec(raw.filled_qty) or 0.0,
        filled_avg_price=_dec(raw.filled_avg_price),
        limit_price=_dec(raw.limit_price),
        stop_price=_dec(raw.stop_price),
        submitted_at=raw.submitted_at,
        filled_at=raw.filled_at,
        legs=tuple(
            to_order(leg).model_copy(update={"parent_client_order_id": raw.client_order_id})
            for leg in raw.legs or ()
        ),
    )


def _harden(client: Any, timeout_s: float) -> Any:
    """No hidden retries (POSTs are retried here only, after a lookup) and a timeout."""
    import requests

    class _TimeoutSession(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout_s)
            return super().request(*args, **kwargs)

    client._retry = 0  # alpaca-py 0.44 RESTClient: retry count for 429/504, POSTs included
    client._session = _TimeoutSession()
    return client


class AlpacaBroker:
    """An Alpaca account. Build with `connect(...)` or `from_settings(settings)`.

    `submit_attempts`: POSTs per `place_order` call at most (each after a lookup found
    nothing); 1 by default, because the use case is the one layer that places again.
    `read_attempts`: tries for lookups and other reads; `wait_s`: first backoff, doubling;
    `cancel_settle_s`: how long a cancel waits for Alpaca to finish it.
    """

    name = "alpaca"

    def __init__(
        self,
        client: Any,
        *,
        submit_attempts: int = 1,
        read_attempts: int = 3,
        wait_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        cancel_settle_s: float = 2.0,
    ) -> None:
        self._client = client
        self._cancel_settle_s = cancel_settle_s
        self._submit_attempts = max(1, submit_attempts)
        self._read_attempts = max(1, read_attempts)
        self._wait_s = wait_s
        self._sleep = sleep
        self._foreign_seen: set[str] = set()

    @classmethod
    def connect(
        cls,
        api_key: str,
        secret_key: str,
        *,
        paper: bool = True,
        base_url: str = "",
        timeout_s: float = 5.0,
        **kwargs: Any,
    ) -> AlpacaBroker:
        from alpaca.trading.client import TradingClient

        if not (api_key and secret_key):
            raise BrokerUnavailable(
                "Alpaca keys are not configured: set FLOWTRADER_ALPACA_API_KEY and "
                "FLOWTRADER_ALPACA_SECRET_KEY, or FLOWTRADER_SECRETS_ARN"
            )
        if not paper and not base_url:
            log.warning("alpaca: LIVE trading; orders go to the live account")
        client = TradingClient(
            api_key=api_key, secret_key=secret_key, paper=paper, url_override=base_url or None
        )
        return cls(_harden(client, timeout_s), **kwargs)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        read_secret: Callable[[str], dict[str, Any]] | None = None,
    ) -> AlpacaBroker:
        """Keys from the settings, else from the Secrets Manager secret, read (only then) by
        `read_secret` (the composition root's; `adapters.secrets` with a default client
        when None)."""
        key = settings.alpaca_api_key.get_secret_value()
        secret = settings.alpaca_secret_key.get_secret_value()
        if not (key and secret) and settings.secrets_arn:
            key, secret = keys_from_secret(settings.secrets_arn, read_secret)
        return cls.connect(
            key,
            secret,
            paper=settings.alpaca_paper,
            base_url=settings.alpaca_base_url,
            timeout_s=settings.alpaca_timeout_s,
            submit_attempts=settings.alpaca_submit_attempts,
        )

    # --- Broker port -------------------------------------------------------------------

    def place_order(self, intent: OrderIntent) -> Order:
        """Submit once; on an unknown outcome look up by client_order_id before any retry.

        Raises `BrokerRejected` (Alpaca said no; do not retry) or `BrokerUnavailable`
        (outcome still unknown after every attempt: retry later with the same intent).
        """
        try:
            request = build_order_request(intent)
        except ValueError as exc:  # alpaca-py's own request validation (pydantic)
            raise BrokerRejected(f"invalid order for Alpaca: {exc}", code="request") from exc
        retrying = Retrying(
            stop=stop_after_attempt(self._submit_attempts),
            wait=wait_exponential(multiplier=self._wait_s, max=8 * self._wait_s),
            retry=retry_if_exception_type(_OutcomeUnknown),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._submit_once(request, intent.client_order_id)
        except _OutcomeUnknown as exc:
            raise BrokerUnavailable(
                f"Alpaca did not confirm order {intent.client_order_id}: {exc}"
            ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def get_order_by_client_id(self, client_order_id: str) -> Order | None:
        def lookup() -> Order | None:
            try:
                return to_order(self._client.get_order_by_client_id(client_order_id))
            except Exception as exc:
                failure = _failure(exc)
                if failure.status == 404:
                    return None
                raise self._raise_for(failure) from exc

        return self._read(lookup)

    def cancel_order(self, broker_order_id: str) -> None:
        """Cancel, and wait until Alpaca says it is done.

        Alpaca cancels asynchronously: DELETE answers 204 while the order is still
        `pending_cancel`, and until it settles its shares stay held, so a close sent at once
        is refused "insufficient qty available". Alpaca's advice is to "verify the status of
        previous executions before placing new orders that depend on their outcome"
        (https://alpaca.markets/learn/issues-placing-an-order/): poll the order, up to
        `cancel_settle_s`.
        """

        def cancel() -> None:
            try:
                self._client.cancel_order_by_id(broker_order_id)
            except Exception as exc:
                raise self._raise_for(_failure(exc)) from exc

        self._read(cancel)
        delay, waited = 0.05, 0.0
        while True:
            status = self._call(lambda: self._client.get_order_by_id(broker_order_id)).status
            if str(getattr(status, "value", status)) not in UNSETTLED:
                return
            if waited >= self._cancel_settle_s:
                log.warning(
                    "alpaca: cancel of %s still pending after %.1f s", broker_order_id, waited
                )
                return
            self._sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.5)

    def list_orders(self, status: str = "all", limit: int = 100) -> list[Order]:
        """Orders flowtrader trades, newest first, legs nested; foreign ones left out."""
        parsed, _ = self._orders(status, limit)
        return [order for order, _raw in parsed]

    def foreign_orders(self, status: str = "all", limit: int = 100) -> list[dict[str, Any]]:
        """Orders in the account of kinds flowtrader does not trade, for display only."""
        _, foreign = self._orders(status, limit)
        return foreign

    def working_exits(self, symbol: str) -> list[Order]:
        """Working orders that protect or close `symbol`'s position, flat.

        Listed with `status=all`: a filled bracket/OTO entry is no longer "open", yet its
        legs work (the stop-loss leg shows as `held`, our PENDING). So: the open legs of
        filled entries, both orders of an OCO, and plain orders on the side that reduces
        the position held. The newest `MAX_LIST_LIMIT` orders of the symbol are read.
        """
        parsed, _ = self._orders("all", MAX_LIST_LIMIT, symbol=symbol)
        held = self._held(symbol)
        reducing = Side.SELL if held > 0 else Side.BUY
        exits: list[Order] = []
        for order, raw in parsed:
            order_class = raw.get("order_class") or "simple"
            if order_class == "oco":
                exits += [o for o in (order, *order.legs) if o.status in _OPEN]
            elif order.legs:
                if order.status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED):
                    exits += [leg for leg in order.legs if leg.status in _OPEN]
            elif order.status in _OPEN and held and order.side is reducing:
                exits.append(order)
        return [o.model_copy(update={"legs": ()}) for o in exits if o.symbol == symbol]

    def get_positions(self) -> list[Position]:
        """US equity positions; others the account holds (options, crypto) are left out."""
        positions = []
        for raw in self._call(lambda: self._client.get("/positions")) or []:
            if raw.get("asset_class", "us_equity") not in TRADED_ASSET_CLASSES:
                self._note_foreign(raw, f"{raw.get('asset_class')} position")
                continue
            qty = Decimal(str(raw["qty"]))
            if raw.get("side") == "short" and qty > 0:
                qty = -qty
            positions.append(
                Position(
                    symbol=raw["symbol"],
                    qty=float(qty),
                    avg_entry_price=float(Decimal(str(raw["avg_entry_price"]))),
                    market_price=_dec(raw.get("current_price")),
                    unrealized_pl=_dec(raw.get("unrealized_pl")),
                )
            )
        return positions

    def get_portfolio(self) -> tuple[Account, list[Position]]:
        """Alpaca has no single call for both: the account, then the positions."""
        return self.get_account(), self.get_positions()

    def get_account(self) -> Account:
        raw = self._call(self._client.get_account)
        return Account(
            equity=_dec(raw.equity) or 0.0,
            cash=_dec(raw.cash) or 0.0,
            buying_power=_dec(raw.buying_power) or 0.0,
            pattern_day_trader=bool(raw.pattern_day_trader),
            daytrade_count=int(raw.daytrade_count or 0),
            last_equity=_dec(raw.last_equity),
        )

    # --- internals ----------------------------------------------------------------------

    def _orders(
        self, status: str, limit: int, *, symbol: str | None = None
    ) -> tuple[list[tuple[Order, dict[str, Any]]], list[dict[str, Any]]]:
        """`GET /v2/orders` raw (`nested` as the spec's `true`, not alpaca-py's `True`),
        parsed order by order: (ours with their raw form, foreign views)."""
        params: dict[str, Any] = {
            "status": status,
            "limit": min(max(limit, 1), MAX_LIST_LIMIT),
            "nested": "true",
            "direction": "desc",
        }
        if symbol is not None:
            params["symbols"] = symbol
        parsed: list[tuple[Order, dict[str, Any]]] = []
        foreign: list[dict[str, Any]] = []
        for raw in self._call(lambda: self._client.get("/orders", params)) or []:
            try:
                parsed.append((parse_order(raw), raw))
            except ForeignOrder as exc:
                foreign.append(self._note_foreign(raw, str(exc)))
        return parsed, foreign

    def _note_foreign(self, raw: dict[str, Any], reason: str) -> dict[str, Any]:
        view = foreign_view(raw, reason)
        key = view["id"] or view["symbol"]
        if key not in self._foreign_seen:
            self._foreign_seen.add(key)
            log.warning(
                "alpaca: %s %s (%s) is not traded by flowtrader; shown, never acted on",
                view["class"] or "order",
                view["symbol"] or view["id"],
                reason,
            )
        return view

    def _held(self, symbol: str) -> Decimal:
        """The signed quantity held in `symbol` (0 when Alpaca has no such position)."""

        def read() -> Any:
            try:
                return self._client.get(f"/positions/{symbol}")
            except Exception as exc:
                failure = _failure(exc)
                if failure.status == 404:
                    return None
                raise self._raise_for(failure) from exc

        raw = self._read(read)
        if not raw:
            return Decimal(0)
        qty = Decimal(str(raw.get("qty") or 0))
        return -qty if raw.get("side") == "short" and qty > 0 else qty

    def _submit_once(self, request: Any, client_order_id: str) -> Order:
        try:
            return to_order(self._client.submit_order(request))
        except Exception as exc:
            failure = _failure(exc)
            if failure.duplicate:
                # Already placed (an earlier attempt or a redelivery): that order is the answer.
                found = self.get_order_by_client_id(client_order_id)
                if found is None:
                    raise BrokerUnavailable(
                        f"Alpaca holds {client_order_id} but the lookup found nothing"
                    ) from exc
                log.info("alpaca: %s already placed; returning it", client_order_id)
                return found
            if not failure.transient:
                raise BrokerRejected(
                    reject_reason(failure.status, failure.code, failure.message),
                    code=failure.code or str(failure.status),
                ) from exc
            log.warning("alpaca: order %s outcome unknown (%s)", client_order_id, failure)
            found = self.get_order_by_client_id(client_order_id)
            if found is not None:
                log.info("alpaca: %s was placed despite the error", client_order_id)
                return found
            raise _OutcomeUnknown(str(failure)) from exc

    def _raise_for(self, failure: _Failure) -> Exception:
        if failure.transient:
            return BrokerUnavailable(f"Alpaca unavailable ({failure})")
        return BrokerRejected(
            reject_reason(failure.status, failure.code, failure.message),
            code=failure.code or str(failure.status),
        )

    def _read(self, fn: Callable[[], Any]) -> Any:
        """Run an idempotent call, retrying while Alpaca is unavailable."""
        retrying = Retrying(
            stop=stop_after_attempt(self._read_attempts),
            wait=wait_exponential(multiplier=self._wait_s, max=8 * self._wait_s),
            retry=retry_if_exception_type(BrokerUnavailable),
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(fn)

    def _call(self, method: Callable[[], Any]) -> Any:
        def call() -> Any:
            try:
                return method()
            except Exception as exc:
                raise self._raise_for(_failure(exc)) from exc

        return self._read(call)


def keys_from_secret(
    secret_arn: str, read_secret: Callable[[str], dict[str, Any]] | None = None
) -> tuple[str, str]:
    """(key id, secret key) from a JSON secret; names as in the env, prefix optional."""
    from chalicelib.adapters.secrets import SecretsUnavailable, fetch_secret_json

    try:
        value = (read_secret or fetch_secret_json)(secret_arn)
    except SecretsUnavailable as exc:
        raise BrokerUnavailable(f"cannot read Alpaca keys: {exc}") from exc
    found = {str(k).lower().removeprefix("flowtrader_"): v for k, v in value.items()}
    return str(found.get("alpaca_api_key", "")), str(found.get("alpaca_secret_key", ""))
