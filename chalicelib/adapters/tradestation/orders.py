"""TradeStation's order shapes, both ways, as pure functions: the `OrderRequest` /
`GroupOrderRequest` bodies an intent becomes, the `TradeAction` a position calls for, the
`OrderConfirmID` an intent carries, and TradeStation's orders read back as ours.

Shapes from TradeStation's API v3 reference (the OpenAPI document's `OrderRequest`,
`OrderRequestOSO`, `GroupOrderRequest`, `Order`, `OrderLeg`, `OrderRelationship`, `Status`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain import Order, OrderIntent, OrderStatus, OrderType, Side
from chalicelib.ports import BrokerRejected
from chalicelib.rules.prices import round_to_tick

# Status -> ours, by the spec's categories (components.schemas.Status): Open, Canceled,
# Rejected, Filled. Open statuses not listed are working states we call PENDING.
STATUS = {
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
DONE = frozenset({"FLL", "FLP", "CAN", "OUT", "SCN", "TSC", "UCH", "EXP", "REJ", "BRO", "DOA"})
CANCEL_PENDING = frozenset({"UCN", "LAT", "RPD", "RSN", "CSN"})  # a cancel/replace in flight
OPEN_STATUSES = (
    OrderStatus.NEW,
    OrderStatus.ACCEPTED,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.PENDING,
)
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


def price_string(value: float | None) -> str | None:
    """A price on a valid tick, as the API's string."""
    if value is None:
        return None
    return as_string(Decimal(str(round_to_tick(value))))


def as_string(value: Decimal | float) -> str:
    """A number as the API's string, without exponent or trailing zeros ("10", "2.5")."""
    return format(Decimal(str(value)).normalize(), "f")


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
        "Quantity": as_string(Decimal(str(intent.qty))),
        "OrderType": _TS_TYPE[OrderType.STOP if kind is OrderType.TRAILING_STOP else kind],
        "TradeAction": action,
        "TimeInForce": _duration(intent),
        "Route": "Intelligent",
        "OrderConfirmID": confirm_id(intent.client_order_id, part),
    }
    if limit is not None:
        body["LimitPrice"] = price_string(limit)
    if stop is not None:
        body["StopPrice"] = price_string(stop)
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
            {"Amount": price_string(intent.trail_price)}
            if intent.trail_price is not None
            else {"Percent": as_string(Decimal(str(intent.trail_percent)))}
        )
        body["AdvancedOptions"] = {"TrailingStop": trail}
    if legs:
        exit_action = "SELL" if intent.side is Side.BUY else "BUYTOCOVER"
        exits = [
            _one(account_id, intent, exit_action, kind, part=part, **price)
            for kind, part, price in (
                (OrderType.LIMIT, "tp", {"limit": intent.take_profit}),
                (OrderType.STOP, "sl", {"stop": intent.stop_loss}),
            )
            if next(iter(price.values())) is not None
        ]
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
        as_string(Decimal(str(body["Quantity"]))),
        str(body["OrderType"]),
        as_string(Decimal(body["LimitPrice"])) if body.get("LimitPrice") else "",
        as_string(Decimal(body["StopPrice"])) if body.get("StopPrice") else "",
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
        as_string(Decimal(str(leg["QuantityOrdered"]))),
        str(raw.get("OrderType", "")),
        as_string(Decimal(raw["LimitPrice"])) if raw.get("LimitPrice") else "",
        as_string(Decimal(raw["StopPrice"])) if raw.get("StopPrice") else "",
    )


def decimal_or_none(value: Any) -> float | None:
    return None if value in (None, "") else float(Decimal(str(value)))


def parse_time(value: Any) -> datetime | None:
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
    filled = STATUS.get(status) is OrderStatus.FILLED
    executed = decimal_or_none(leg.get("ExecQuantity")) or 0.0
    return Order(
        broker_order_id=str(raw["OrderID"]),
        client_order_id=client_order_id,
        symbol=str(leg.get("Symbol") or ""),
        side=Side.BUY if str(leg.get("BuyOrSell", "")).lower() in _BUYS else Side.SELL,
        qty=decimal_or_none(leg.get("QuantityOrdered")) or 0.0,
        order_type=kind,
        status=STATUS.get(status, OrderStatus.PENDING),
        filled_qty=executed,
        filled_avg_price=decimal_or_none(raw.get("FilledPrice")) if executed else None,
        limit_price=decimal_or_none(raw.get("LimitPrice")),
        stop_price=decimal_or_none(raw.get("StopPrice")),
        submitted_at=parse_time(raw.get("OpenedDateTime")),
        filled_at=parse_time(raw.get("ClosedDateTime")) if filled else None,
    )


def links(raw: dict[str, Any], *relationships: str) -> list[str]:
    return [
        str(c["OrderID"])
        for c in raw.get("ConditionalOrders") or []
        if str(c.get("Relationship", "")).upper() in relationships
    ]
