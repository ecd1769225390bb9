"""IBKR order tickets from our intents, IBKR's order records as ours, and the reply policy.

Tickets (`POST /iserver/account/{accountId}/orders`, spec `singleOrderSubmissionRequest`):
`conid`, `side` BUY|SELL, `quantity`, `tif` DAY|GTC|IOC|OPG|PAX, `orderType` MKT | LMT |
STP | STOP_LIMIT | TRAIL, `price` (the limit, or a stop order's stop), `auxPrice` (a stop
limit's stop), `trailingAmt` + `trailingType` "amt"|"%", and our client order id as `cOID`.

Groups, named by our id so a lookup can find every member:
- bracket / OTO: the parent's `cOID` is ours; each child is attached with `parentId` = the
  parent's cOID ("If the order ticket is a child order in a bracket, the parentId field must
  be set equal to the cOID provided for the parent order", spec) and `cOID` = ours + "-tp" /
  "-sl". IBKR works attached children as one-cancels-the-other once the parent fills.
- a protected remainder (OCO): the take-profit limit (ours) and the stop (ours + "-oco")
  in one request with `isSingleGroup: true` ("all orders in the containing array are to be
  treated as an OCA group", spec).

IBKR has no lookup by client id: an order is found by scanning the session's live orders
(`GET /iserver/account/orders`, open *and* filled/cancelled ones of the current brokerage
session) for `order_ref` (where IBKR echoes `cOID`), then the executions of the last 7 days
(`GET /iserver/account/trades?days=7`, whose `order_ref` is "the client-provided customer
order identifier. Specified via cOID", spec) for an order filled in an earlier session.

The reply policy: IBKR may answer a submission with questions (`id`, `message`,
`messageIds`) that must be confirmed at `POST /iserver/reply/{replyId}` before the order
exists. `ReplyPolicy` confirms only the message ids on its whitelist — warnings about order
types flowtrader chose on purpose (see `DEFAULT_CONFIRM`); every other question (price or
size limits the user set at IBKR, missing market data, cross-side orders, unknown ones) is
answered `confirmed: false` and becomes `BrokerRejected` with IBKR's text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain import Order, OrderIntent, OrderStatus, OrderType, Side
from chalicelib.ports import BrokerRejected
from chalicelib.rules.prices import round_to_tick

TAKE_PROFIT_SUFFIX = "-tp"
STOP_LOSS_SUFFIX = "-sl"
OCO_SUFFIX = "-oco"
SUFFIXES = (TAKE_PROFIT_SUFFIX, STOP_LOSS_SUFFIX, OCO_SUFFIX)
TRADED_SEC_TYPES = frozenset({"STK"})
INVALID = "42210000"  # the port's "invalid / not cancelable" code (as the paper broker's)

# IBKR message ids flowtrader confirms (ibind's `_MESSAGE_ID_TO_QUESTION_TYPE` and IBKR's
# suppressible-id list, https://www.interactivebrokers.com/campus/ibkr-api-page/cpapi-v1/#suppressible-id):
DEFAULT_CONFIRM: dict[str, str] = {
    "o10151": "market order risk disclosure (a market order was decided on purpose)",
    "o10152": "stop order risk disclosure once it becomes active",
    "o10153": "IBKR may cap the price of a marketable order (mandatory cap price)",
    "o10331": "stop order risk disclosure",
    "o403": "the order will most likely trigger and fill immediately",
}
# Named so their refusal reads plainly; refused like every id not confirmed.
KNOWN_REFUSED: dict[str, str] = {
    "o163": "the limit price exceeds IBKR's price percentage constraint",
    "o354": "no market data subscription for this symbol",
    "o382": "the price exceeds IBKR's tick size limit",
    "o383": "the size exceeds the order size limit set at IBKR",
    "o451": "the order value exceeds the total value limit set at IBKR",
    "o2137": "an opposite-side order is open in this symbol (cross side)",
    "p6": "the order would be allocated over several accounts",
    "p12": "IBKR offers its price management algo for a possibly disruptive order",
}

_TYPES = {
    OrderType.MARKET: "MKT",
    OrderType.LIMIT: "LMT",
    OrderType.STOP: "STP",
    OrderType.STOP_LIMIT: "STOP_LIMIT",
    OrderType.TRAILING_STOP: "TRAIL",
}
# What IBKR writes in `orderType` / `origOrderType` of a live order, normalised (upper, no
# spaces or underscores) -> ours.
_READ_TYPES = {
    "MKT": OrderType.MARKET,
    "MARKET": OrderType.MARKET,
    "LMT": OrderType.LIMIT,
    "LIMIT": OrderType.LIMIT,
    "STP": OrderType.STOP,
    "STOP": OrderType.STOP,
    "STOPLIMIT": OrderType.STOP_LIMIT,
    "STPLMT": OrderType.STOP_LIMIT,
    "TRAIL": OrderType.TRAILING_STOP,
    "TRAILINGSTOP": OrderType.TRAILING_STOP,
}
# Live order `status` enum (spec) -> ours.
_STATUS = {
    "inactive": OrderStatus.PENDING,
    "pendingsubmit": OrderStatus.PENDING,
    "presubmitted": OrderStatus.ACCEPTED,
    "submitted": OrderStatus.NEW,
    "filled": OrderStatus.FILLED,
    "pendingcancel": OrderStatus.PENDING,
    "cancelled": OrderStatus.CANCELED,
    "warnstate": OrderStatus.PENDING,
}
OPEN = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING)


@dataclass(frozen=True)
class ReplyPolicy:
    """Which IBKR order questions are confirmed: only the whitelisted message ids."""

    confirm: frozenset[str] = frozenset(DEFAULT_CONFIRM)

    @classmethod
    def from_setting(cls, value: str) -> ReplyPolicy:
        ids = {part.strip() for part in value.split(",") if part.strip()}
        return cls(frozenset(ids))

    def answer(self, message_ids: Iterable[str]) -> bool:
        """True only when every message id of the question is whitelisted."""
        ids = [str(i) for i in message_ids]
        return bool(ids) and all(i in self.confirm for i in ids)

    def refusal(self, message_ids: list[str], messages: list[str]) -> BrokerRejected:
        ids = ", ".join(message_ids) or "no id"
        known = "; ".join(KNOWN_REFUSED[i] for i in message_ids if i in KNOWN_REFUSED)
        text = " / ".join(" ".join(m.split()) for m in messages)[:400]
        label = known or "IBKR asked a question flowtrader does not confirm"
        return BrokerRejected(
            f"{label} (ibkr {ids}: {text}); not confirmed by the reply policy",
            code=message_ids[0] if message_ids else "reply",
        )


def _price(value: float | None) -> float | None:
    return None if value is None else round_to_tick(value)


def _ticket(
    intent: OrderIntent, conid: int, account_id: str, cid: str, side: Side, kind: OrderType
) -> dict[str, Any]:
    return {
        "acctId": account_id,
        "conid": conid,
        "cOID": cid,
        "orderType": _TYPES[kind],
        "side": side.value.upper(),
        "quantity": float(Decimal(str(intent.qty))),
        "tif": intent.time_in_force.upper(),
    }


def build_tickets(intent: OrderIntent, conid: int, account_id: str) -> dict[str, Any]:
    """The request body for `intent`: one ticket, a bracket/OTO (parent + attached
    children) or an OCA pair for a protective intent."""
    exit_side = Side.SELL if intent.side is Side.BUY else Side.BUY
    cid = intent.client_order_id
    if intent.protects_position:
        return {"orders": _protection(intent, conid, account_id)}
    kind = intent.order_type
    parent = _ticket(intent, conid, account_id, cid, intent.side, kind)
    if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        if intent.limit_price is None:
            raise BrokerRejected(f"a {kind.value} order needs limit_price", code=INVALID)
        parent["price"] = _price(intent.limit_price)
    if kind is OrderType.STOP:
        if intent.stop_price is None:
            raise BrokerRejected("a stop order needs stop_price", code=INVALID)
        parent["price"] = _price(intent.stop_price)
    if kind is OrderType.STOP_LIMIT:
        if intent.stop_price is None:
            raise BrokerRejected("a stop_limit order needs stop_price", code=INVALID)
        parent["auxPrice"] = _price(intent.stop_price)
    if kind is OrderType.TRAILING_STOP:
        if intent.trail_price is not None:
            parent |= {"trailingAmt": _price(intent.trail_price), "trailingType": "amt"}
        elif intent.trail_percent is not None:
            parent |= {"trailingAmt": intent.trail_percent, "trailingType": "%"}
        else:
            raise BrokerRejected("a trailing_stop order needs trail_price or trail_percent")
    tickets = [parent]
    if intent.take_profit is not None:
        child = _ticket(
            intent, conid, account_id, cid + TAKE_PROFIT_SUFFIX, exit_side, OrderType.LIMIT
        )
        tickets.append(child | {"price": _price(intent.take_profit), "parentId": cid})
    if intent.stop_loss is not None:
        child = _ticket(
            intent, conid, account_id, cid + STOP_LOSS_SUFFIX, exit_side, OrderType.STOP
        )
        tickets.append(child | {"price": _price(intent.stop_loss), "parentId": cid})
    return {"orders": tickets}


def _protection(intent: OrderIntent, conid: int, account_id: str) -> list[dict[str, Any]]:
    cid = intent.client_order_id
    if intent.take_profit is not None and intent.stop_loss is not None:
        limit = _ticket(intent, conid, account_id, cid, intent.side, OrderType.LIMIT)
        stop = _ticket(intent, conid, account_id, cid + OCO_SUFFIX, intent.side, OrderType.STOP)
        return [
            limit | {"price": _price(intent.take_profit), "isSingleGroup": True},
            stop | {"price": _price(intent.stop_loss), "isSingleGroup": True},
        ]
    if intent.stop_loss is not None:
        stop = _ticket(intent, conid, account_id, cid, intent.side, OrderType.STOP)
        return [stop | {"price": _price(intent.stop_loss)}]
    if intent.take_profit is not None:
        limit = _ticket(intent, conid, account_id, cid, intent.side, OrderType.LIMIT)
        return [limit | {"price": _price(intent.take_profit)}]
    raise BrokerRejected("a protective order needs stop_loss and/or take_profit", code=INVALID)


# --- reading IBKR's records ------------------------------------------------------------


def _num(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(Decimal(str(value).replace(",", "")))
    except ArithmeticError:
        return None


def _millis(value: Any) -> datetime | None:
    ms = _num(value)
    return None if not ms else datetime.fromtimestamp(ms / 1000, UTC)


def base_id(client_order_id: str) -> tuple[str, str]:
    """(the group's client order id, the member's suffix or "")."""
    for suffix in SUFFIXES:
        if client_order_id.endswith(suffix):
            return client_order_id[: -len(suffix)], suffix
    return client_order_id, ""


def foreign_reason(raw: dict[str, Any]) -> str | None:
    """Why a live order is not one flowtrader trades (options, FX, ...), or None."""
    sec_type = str(raw.get("secType") or "STK")
    if sec_type not in TRADED_SEC_TYPES:
        return f"{sec_type} order"
    return None


def parse_live_order(raw: dict[str, Any]) -> Order:
    """One `GET /iserver/account/orders` record as ours (flat; `group_orders` nests)."""
    kind_text = str(raw.get("origOrderType") or raw.get("orderType") or "")
    kind = _READ_TYPES.get(kind_text.upper().replace(" ", "").replace("_", ""))
    if kind is None:
        raise ValueError(f"unknown IBKR order type {kind_text!r}")
    total = _num(raw.get("totalSize"))
    filled = _num(raw.get("filledQuantity")) or 0.0
    remaining = _num(raw.get("remainingQuantity"))
    qty = total if total is not None else filled + (remaining or 0.0)
    status = _STATUS.get(str(raw.get("status") or "").lower(), OrderStatus.PENDING)
    if status in (OrderStatus.NEW, OrderStatus.ACCEPTED) and filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    price = _num(raw.get("price"))
    aux = _num(raw.get("auxPrice"))
    limit_price = price if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    stop_price = price if kind is OrderType.STOP else aux if kind is OrderType.STOP_LIMIT else None
    return Order(
        broker_order_id=str(raw["orderId"]),
        client_order_id=str(raw.get("order_ref") or f"ibkr-{raw['orderId']}"),
        symbol=str(raw.get("ticker") or ""),
        side=Side.BUY if str(raw.get("side", "")).upper().startswith("B") else Side.SELL,
        qty=qty,
        order_type=kind,
        status=status,
        filled_qty=filled,
        filled_avg_price=_num(raw.get("avgPrice")) if filled else None,
        limit_price=limit_price,
        stop_price=stop_price,
        filled_at=_millis(raw.get("lastExecutionTime_r")) if status is OrderStatus.FILLED else None,
    )


def group_orders(orders: list[Order]) -> list[Order]:
    """Flat orders → ours: bracket children and OCO siblings nested under the order that
    carries the group's client order id (ids as `build_tickets` names them). A member
    whose group head is not listed stays top-level."""
    heads = {o.client_order_id: o for o in orders if not base_id(o.client_order_id)[1]}
    legs: dict[str, list[Order]] = {}
    top: list[Order] = []
    for order in orders:
        group, suffix = base_id(order.client_order_id)
        if suffix and group in heads:
            legs.setdefault(group, []).append(
                order.model_copy(update={"parent_client_order_id": group})
            )
        else:
            top.append(order)
    return [o.model_copy(update={"legs": tuple(legs.get(o.client_order_id, ()))}) for o in top]


def is_oco(order: Order) -> bool:
    return any(base_id(leg.client_order_id)[1] == OCO_SUFFIX for leg in order.legs)


def order_from_trades(client_order_id: str, trades: list[dict[str, Any]]) -> Order | None:
    """An order filled in an earlier brokerage session, rebuilt from its executions
    (`GET /iserver/account/trades`): the live orders only list the current session's."""
    fills = [t for t in trades if str(t.get("order_ref") or "") == client_order_id]
    if not fills:
        return None
    qty = sum(_num(t.get("size")) or 0.0 for t in fills)
    notional = sum((_num(t.get("size")) or 0.0) * (_num(t.get("price")) or 0.0) for t in fills)
    first = fills[0]
    times = [t for t in (_millis(f.get("trade_time_r")) for f in fills) if t]
    return Order(
        broker_order_id=str(int(_num(first.get("order_id")) or 0)),
        client_order_id=client_order_id,
        symbol=str(first.get("symbol") or ""),
        side=Side.BUY if str(first.get("side", "")).upper().startswith("B") else Side.SELL,
        qty=qty,
        order_type=OrderType.MARKET,  # executions do not say; the fill is what matters
        status=OrderStatus.FILLED,
        filled_qty=qty,
        filled_avg_price=notional / qty if qty else None,
        filled_at=max(times) if times else None,
    )


def orders_from_answer(tickets: list[dict[str, Any]], answer: list[dict[str, Any]]) -> list[Order]:
    """The acknowledged orders, flat, from our tickets and IBKR's answer ("Indicies of the
    ... objects in this array correspond to the indicies of the order tickets in the
    submission request's array", spec): no read of the live orders, which IBKR paces to one
    every 5 seconds. Fill prices come from the order status (`apply_status`)."""
    if len(answer) != len(tickets):
        raise ValueError("IBKR's answer does not match the tickets")
    orders = []
    for ticket, ack in zip(tickets, answer, strict=True):
        kind = _READ_TYPES[str(ticket["orderType"]).replace("_", "")]
        price, aux = ticket.get("price"), ticket.get("auxPrice")
        orders.append(
            Order(
                broker_order_id=str(ack["order_id"]),
                client_order_id=str(ticket["cOID"]),
                symbol="",
                side=Side.BUY if ticket["side"] == "BUY" else Side.SELL,
                qty=float(ticket["quantity"]),
                order_type=kind,
                status=_STATUS.get(str(ack.get("order_status") or "").lower(), OrderStatus.PENDING),
                limit_price=price if kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
                stop_price=(
                    price
                    if kind is OrderType.STOP
                    else aux
                    if kind is OrderType.STOP_LIMIT
                    else None
                ),
            )
        )
    return orders


def apply_status(order: Order, raw: dict[str, Any]) -> Order:
    """An acknowledged order updated from `GET /iserver/account/order/status/{orderId}`
    (`order_status`, `cum_fill`, `average_price`)."""
    filled = _num(raw.get("cum_fill")) or 0.0
    status = _STATUS.get(str(raw.get("order_status") or "").lower().replace(" ", ""), order.status)
    if status in (OrderStatus.NEW, OrderStatus.ACCEPTED) and filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    return order.model_copy(
        update={
            "status": status,
            "filled_qty": filled,
            "filled_avg_price": _num(raw.get("average_price")) if filled else None,
            "filled_at": datetime.now(UTC) if status is OrderStatus.FILLED else None,
        }
    )
