"""What the trader is told, and a fan-out that can never break the order path.

Every message is a `Notice`: an email `subject`, an SMS-sized `text` (first line, at most
160 characters) and optional `detail` lines for email. `Notice.message` is what a
`Notifier` receives: `text`, then a blank line and `detail`. Channels that send SMS use the
first line only (`sms_text`).

`FanOutNotifier` is the `Notifier` the composition root hands out: it calls each channel,
logs a failing one and carries on, and never raises (an invariant in docs/architecture.md;
freqtrade's RPCManager.send_msg).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from chalicelib.domain import ClosedTrade, ExitReason, Order, OrderStatus, OrderType
from chalicelib.ports import Notifier

log = logging.getLogger(__name__)

SMS_CHARS = 160
SUBJECT_CHARS = 100  # SNS's limit for an email subject
APP = "flowtrader"

_TYPE = {
    OrderType.MARKET: "MKT",
    OrderType.LIMIT: "LMT",
    OrderType.STOP: "STP",
    OrderType.STOP_LIMIT: "STP LMT",
    OrderType.TRAILING_STOP: "TRAIL",
}


# The routing event of each notice kind (services/alerting.py routes events to channels).
_EVENT_OF_KIND = {"error": "failed"}
STOP_EXITS = (ExitReason.STOP_LOSS, ExitReason.TRAILING_STOP)


@dataclass(frozen=True)
class Notice:
    kind: str  # placed | filled | closed | partially_filled | drift | rejected | error
    subject: str
    text: str
    detail: str = ""
    event_name: str = ""  # when the routing event is not the kind's (a stop-out close)

    @property
    def message(self) -> str:
        return f"{self.text}\n\n{self.detail}" if self.detail else self.text

    @property
    def event(self) -> str:
        """What the alert router routes on: filled, stopped_out, rejected, failed, drift…"""
        return self.event_name or _EVENT_OF_KIND.get(self.kind, self.kind)


def sms_text(message: str, limit: int = SMS_CHARS) -> str:
    """The first line of `message` (whitespace collapsed), cut to `limit` with an ellipsis."""
    lines = message.strip().splitlines()
    first = " ".join(lines[0].split()) if lines else ""
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def _qty(qty: float) -> str:
    return f"{qty:g}"


def _px(price: float | None) -> str:
    return "" if price is None else f"{price:,.2f}" if price >= 1 else f"{price:.4f}"


def describe(order: Order) -> str:
    """`BUY 10 AAPL LMT 190.00 TP 200.00 SL 185.00`: the order as a trader writes it."""
    parts = [order.side.value.upper(), _qty(order.qty), order.symbol, _TYPE[order.order_type]]
    if order.stop_price is not None:
        parts.append(_px(order.stop_price))
    if order.limit_price is not None:
        parts.append(_px(order.limit_price))
    for leg in order.legs:
        if leg.order_type is OrderType.LIMIT and leg.limit_price is not None:
            parts.append(f"TP {_px(leg.limit_price)}")
        elif leg.stop_price is not None:
            parts.append(f"SL {_px(leg.stop_price)}")
    return " ".join(parts)


def _subject(text: str) -> str:
    return sms_text(f"{APP}: {text}", SUBJECT_CHARS)


def _detail(alert_id: str | None, order: Order | None = None) -> str:
    lines = []
    if alert_id:
        lines.append(f"alert {alert_id}")
    if order is not None:
        lines.append(f"client order id {order.client_order_id}")
        lines.append(f"broker order id {order.broker_order_id}")
    return "\n".join(lines)


def order_placed(order: Order, alert_id: str | None = None) -> Notice:
    text = f"Placed {describe(order)} ({order.status.value})"
    return Notice(
        "placed",
        _subject(f"placed {order.side.value} {order.symbol}"),
        sms_text(text),
        _detail(alert_id, order),
    )


def order_filled(order: Order, alert_id: str | None = None) -> Notice:
    price = _px(order.filled_avg_price)
    qty = _qty(order.filled_qty or order.qty)
    text = f"Filled {order.side.value.upper()} {qty} {order.symbol} @ {price}"
    return Notice(
        "filled",
        _subject(f"filled {order.side.value} {order.symbol} @ {price}"),
        sms_text(text),
        _detail(alert_id, order),
    )


def order_update(order: Order, alert_id: str | None = None) -> Notice:
    """Placed or filled, whichever the order's status says."""
    if order.status is OrderStatus.FILLED:
        return order_filled(order, alert_id)
    return order_placed(order, alert_id)


_EXIT_NAMES = {
    ExitReason.STOP_LOSS: "Stop-loss hit",
    ExitReason.TAKE_PROFIT: "Target hit",
    ExitReason.TRAILING_STOP: "Trailing stop hit",
    ExitReason.SIGNAL: "Closed",
    ExitReason.OUTSIDE: "Closed outside flowtrader",
}


def _usd(amount: float) -> str:
    sign = "−" if amount < 0 else "+"
    return f"{sign}${abs(amount):,.2f}"


def _pct(percent: float) -> str:
    sign = "−" if percent < 0 else "+"
    return f"{sign}{abs(percent):.1f} %"


def trade_result(trade: ClosedTrade) -> str:
    """`Stop-loss hit AAPL: −$31.20 (−1.6 %)`: the exit named, with what it realized."""
    name = _EXIT_NAMES[trade.exit_reason]
    return f"{name} {trade.symbol}: {_usd(trade.pnl_usd)} ({_pct(trade.pnl_pct)})"


def position_closed(
    trade: ClosedTrade, order: Order | None = None, *, remaining: float = 0.0
) -> Notice:
    """A close or an exit leg filled: name the exit, its P/L, and what is left."""
    what = "long" if trade.side.value == "long" else "short"
    text = f"{trade_result(trade)} · {what} {_qty(trade.qty)} @ {_px(trade.exit_price)}"
    if remaining:
        text += f", {_qty(remaining)} left"
    detail = [
        f"entry {_px(trade.entry_price)} → exit {_px(trade.exit_price)}, {_qty(trade.qty)} shares",
        _detail(trade.alert_id, order),
    ]
    return Notice(
        "closed",
        _subject(trade_result(trade)),
        sms_text(text),
        "\n".join(x for x in detail if x),
        event_name="stopped_out" if trade.exit_reason in STOP_EXITS else "",
    )


def reversal_not_opened(
    trade: ClosedTrade | None, close: Order, opened_side: str, reason: str, alert_id: str
) -> Notice:
    """The close of a reverse filled but its open was denied: say the account is flat."""
    held = "long" if close.side.value == "sell" else "short"
    price = _px(close.filled_avg_price) if close.filled_avg_price is not None else "market"
    text = f"Closed {held} {_qty(close.filled_qty or close.qty)} {close.symbol} @ {price}"
    if trade is not None:
        text += f" ({_usd(trade.pnl_usd)})"
    text += f", {opened_side} not opened: {reason}"
    return Notice(
        "partially_filled",
        _subject(f"{close.symbol} closed, {opened_side} not opened"),
        sms_text(text),
        "\n".join(x for x in (text, _detail(alert_id, close)) if x),
    )


def position_drift(symbol: str, expected: float, actual: float) -> Notice:
    """The broker's position differs from what flowtrader's own fills explain."""
    text = (
        f"Drift {symbol}: broker holds {_qty(actual)}, flowtrader expected {_qty(expected)} "
        "(changed outside flowtrader; nothing was done)"
    )
    return Notice("drift", _subject(f"drift {symbol}"), sms_text(text), text)


def order_rejected(symbol: str, reason: str, alert_id: str | None = None) -> Notice:
    return Notice(
        "rejected",
        _subject(f"rejected {symbol}"),
        sms_text(f"Rejected {symbol}: {reason}"),
        "\n".join(x for x in (f"reason: {reason}", _detail(alert_id)) if x),
    )


def order_error(reason: str, alert_id: str | None = None, symbol: str | None = None) -> Notice:
    what = f"{symbol} " if symbol else ""
    return Notice(
        "error",
        _subject(f"ERROR {what}{alert_id or ''}".strip()),
        sms_text(f"ERROR {what}{reason}"),
        "\n".join(x for x in (f"error: {reason}", _detail(alert_id)) if x),
    )


@lru_cache(maxsize=64)
def _takes_event(kind: type) -> bool:
    try:
        params = inspect.signature(getattr(kind, "notify")).parameters.values()  # noqa: B009
    except (TypeError, ValueError):
        return False
    return any(p.name == "event" or p.kind is p.VAR_KEYWORD for p in params)


def deliver(channel: Notifier, subject: str, message: str, event: str = "info") -> None:
    """`channel.notify` with the event, or without it for a channel written before events
    (the port's old two-argument form keeps working). Raises what the channel raises."""
    if _takes_event(type(channel)):
        channel.notify(subject, message, event=event)
    else:
        channel.notify(subject, message)


def send(notifier: Notifier | None, notice: Notice) -> bool:
    """Deliver `notice`; False (logged) when it failed. Never raises."""
    if notifier is None:
        return False
    try:
        deliver(notifier, notice.subject, notice.message, notice.event)
        return True
    except Exception:
        log.warning("notification %r failed", notice.subject, exc_info=True)
        return False


class LogNotifier:
    """Writes every notification to the log (CloudWatch in AWS, the console locally)."""

    def notify(self, subject: str, message: str, *, event: str = "info") -> None:
        log.info("notify [%s]: %s | %s", event, subject, sms_text(message, 500))


class FanOutNotifier:
    """Every channel gets every message; a failing channel is logged and skipped."""

    def __init__(self, channels: Sequence[Notifier] | Iterable[Notifier]) -> None:
        self.channels = list(channels)

    def notify(self, subject: str, message: str, *, event: str = "info") -> None:
        for channel in self.channels:
            try:
                deliver(channel, subject, message, event)
            except Exception:
                log.warning(
                    "notifier %s failed for %r", type(channel).__name__, subject, exc_info=True
                )
