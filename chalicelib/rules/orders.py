"""Alert → the orders a disciplined trader would place: open, close or reverse, sized, protected.

`decide_orders(alert, alert_id, account=, positions=, rules=)` is pure: it reads the alert,
the current position in the symbol and the account, and returns a `Decision` whose intents
are placed in order (the close of a reverse first). It never talks to a broker.

What the alert means:

| alert | held | decision |
|---|---|---|
| `market_position` long (buy→long) | flat / short | open long / reverse |
| `market_position` short (sell→short) | flat / long | open short / reverse |
| `market_position` flat | long or short | close it all |
| `market_position` same side as held, opposite action | held | partial close of `quantity` |
| `buy` / `short` (no market_position) | flat / opposite | open / reverse |
| `sell` / `cover` / `exit` (no market_position) | long / short / any | close it |
| open on the side already held | held | nothing (no pyramiding) |

Protection: the alert's `stop_loss`/`take_profit`, else its `*_pct`, else the default — an
ATR multiple when an ATR is given and configured, otherwise a percent of the entry.
Prices are rounded to valid ticks; stops away from the entry (never tighter than asked).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from chalicelib.domain import (
    Account,
    Action,
    Alert,
    MarketPosition,
    OrderIntent,
    OrderType,
    Position,
    Side,
)
from chalicelib.rules.prices import round_to_tick
from chalicelib.rules.sizing import SizingError, SizingMode, position_size

CLIENT_ORDER_ID_MAX = 48


class DecisionKind(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    REVERSE = "reverse"  # close, then open the other side
    NOTHING = "nothing"  # the alert asks for nothing this account can do; reason says why


@dataclass(frozen=True)
class OrderRules:
    """Sizing and default protection. Percents are percents (2.0 = 2 %)."""

    sizing_mode: SizingMode = SizingMode.FIXED_QTY
    default_qty: float = 1.0
    default_notional_usd: float = 1_000.0
    risk_per_trade_pct: float = 1.0
    use_alert_quantity: bool = True
    default_stop_pct: float = 2.0  # 0: no default stop
    default_target_pct: float = 4.0  # 0: no default target
    stop_atr_multiple: float = 0.0  # > 0 and an ATR given: stop this many ATRs away
    target_atr_multiple: float = 0.0
    max_position_notional_usd: float = 0.0  # 0: no cap
    time_in_force: str = "day"


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    intents: tuple[OrderIntent, ...]
    reason: str

    @property
    def open_intent(self) -> OrderIntent | None:
        return next((i for i in self.intents if not i.closes_position), None)

    @property
    def close_intent(self) -> OrderIntent | None:
        return next((i for i in self.intents if i.closes_position), None)

    def as_record(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "reason": self.reason,
            "intents": [i.model_dump(mode="json", exclude_none=True) for i in self.intents],
        }


def client_order_id(alert_id: str, leg: str) -> str:
    """`ft-<alert_id>-<leg>`, ≤ 48 characters; a long alert id is replaced by its hash.

    Deterministic, so a retry or redelivery of the same alert can only name the same order.
    """
    candidate = f"ft-{alert_id}-{leg}"
    if len(candidate) <= CLIENT_ORDER_ID_MAX:
        return candidate
    digest = hashlib.sha256(alert_id.encode()).hexdigest()
    return f"ft-{digest[: CLIENT_ORDER_ID_MAX - len(leg) - 4]}-{leg}"


def _held_qty(symbol: str, positions: Iterable[Position]) -> float:
    return sum(p.qty for p in positions if p.symbol == symbol)


def _target(alert: Alert, held: float) -> tuple[MarketPosition | None, bool]:
    """(side the alert wants to hold, whether it is a partial close of the held side)."""
    if alert.market_position is not None:
        wanted = alert.market_position
        held_side = (
            MarketPosition.LONG
            if held > 0
            else MarketPosition.SHORT
            if held < 0
            else MarketPosition.FLAT
        )
        reducing = (wanted is MarketPosition.LONG and alert.action is Action.SELL) or (
            wanted is MarketPosition.SHORT and alert.action is Action.BUY
        )
        return wanted, wanted is held_side and wanted is not MarketPosition.FLAT and reducing
    opening = {Action.BUY: MarketPosition.LONG, Action.SHORT: MarketPosition.SHORT}
    if alert.action in opening:
        return opening[alert.action], False
    return MarketPosition.FLAT, False  # sell / cover / exit: close what they name


def _closes_held(alert: Alert, held: float) -> bool:
    """Whether a plain close action names the held side (sell closes longs, cover shorts)."""
    if alert.action is Action.SELL:
        return held > 0
    if alert.action is Action.COVER:
        return held < 0
    return held != 0


def _protective(
    alert: Alert, side: Side, entry: float, rules: OrderRules, atr: float | None
) -> tuple[float | None, float | None]:
    """(stop_loss, take_profit) for an entry at `entry` on `side`, tick-rounded."""
    sign = 1.0 if side is Side.BUY else -1.0
    stop = alert.stop_loss
    if stop is None and alert.stop_loss_pct is not None:
        stop = entry * (1 - sign * alert.stop_loss_pct / 100)
    if stop is None and atr and rules.stop_atr_multiple > 0:
        stop = entry - sign * rules.stop_atr_multiple * atr
    if stop is None and rules.default_stop_pct > 0:
        stop = entry * (1 - sign * rules.default_stop_pct / 100)
    target = alert.take_profit
    if target is None and alert.take_profit_pct is not None:
        target = entry * (1 + sign * alert.take_profit_pct / 100)
    if target is None and atr and rules.target_atr_multiple > 0:
        target = entry + sign * rules.target_atr_multiple * atr
    if target is None and rules.default_target_pct > 0:
        target = entry * (1 + sign * rules.default_target_pct / 100)
    if stop is not None:
        stop = round_to_tick(stop, "down" if side is Side.BUY else "up") if stop > 0 else None
    if target is not None:
        target = round_to_tick(target, "up" if side is Side.BUY else "down")
    return stop, target


def _size(
    alert: Alert,
    entry: float,
    stop: float | None,
    account: Account,
    rules: OrderRules,
    freed_buying_power: float,
) -> int:
    cap = rules.max_position_notional_usd or None
    buying_power = account.buying_power + freed_buying_power
    if rules.use_alert_quantity and alert.quantity is not None:
        return position_size(
            SizingMode.FIXED_QTY,
            entry_price=entry,
            qty=alert.quantity,
            max_position_notional_usd=cap,
            buying_power=buying_power,
        )
    return position_size(
        rules.sizing_mode,
        entry_price=entry,
        equity=account.equity,
        qty=rules.default_qty,
        notional_usd=rules.default_notional_usd,
        risk_pct=rules.risk_per_trade_pct / 100,
        stop_price=stop,
        max_position_notional_usd=cap,
        buying_power=buying_power,
    )


def _entry_prices(alert: Alert) -> dict[str, float | None]:
    limit = alert.limit_price
    stop = alert.stop_price
    return {
        "limit_price": round_to_tick(limit, "nearest") if limit is not None else None,
        "stop_price": round_to_tick(stop, "nearest") if stop is not None else None,
        "trail_price": round_to_tick(alert.trail_price, "nearest") if alert.trail_price else None,
        "trail_percent": alert.trail_percent,
    }


def decide_orders(
    alert: Alert,
    alert_id: str,
    *,
    account: Account,
    positions: Iterable[Position],
    rules: OrderRules,
    atr: float | None = None,
) -> Decision:
    """What to place for `alert`, given the account and its current positions.

    `atr` (USD per share) enables ATR-multiple default stops/targets when configured.
    """
    symbol = alert.symbol
    held = _held_qty(symbol, positions)
    wanted, partial = _target(alert, held)

    close: OrderIntent | None = None
    if held and (
        partial
        or (wanted is MarketPosition.FLAT and _closes_held(alert, held))
        or (wanted is MarketPosition.LONG and held < 0)
        or (wanted is MarketPosition.SHORT and held > 0)
    ):
        close_qty = abs(held)
        if partial:
            if alert.quantity is None:
                return Decision(
                    DecisionKind.NOTHING,
                    (),
                    f"partial exit of {symbol} without a quantity; send quantity",
                )
            close_qty = min(alert.quantity, abs(held))
        close = OrderIntent(
            client_order_id=client_order_id(alert_id, "close"),
            alert_id=alert_id,
            symbol=symbol,
            side=Side.SELL if held > 0 else Side.BUY,
            qty=close_qty,
            order_type=OrderType.MARKET,
            time_in_force=rules.time_in_force,
            reference_price=alert.price,
            closes_position=True,
        )
    if partial or wanted is MarketPosition.FLAT:
        if close is None:
            named = {Action.SELL: "long ", Action.COVER: "short "}.get(alert.action, "")
            hint = "; send action=short to open a short" if alert.action is Action.SELL else ""
            return Decision(
                DecisionKind.NOTHING,
                (),
                f"{alert.action.value} {symbol}: no {named}position to close{hint}",
            )
        what = "partial close" if partial else "close"
        return Decision(DecisionKind.CLOSE, (close,), f"{what} {close.qty:g} {symbol}")

    side = Side.BUY if wanted is MarketPosition.LONG else Side.SELL
    if close is None and held and (held > 0) == (side is Side.BUY):
        return Decision(
            DecisionKind.NOTHING,
            (),
            f"already {wanted.value} {abs(held):g} {symbol}; adding to a position is off",
        )
    entry = alert.limit_price or alert.stop_price or alert.price
    if entry is None:
        return Decision(
            DecisionKind.NOTHING,
            (),
            f'cannot size {symbol}: the alert has no price; add "price": {{{{close}}}}',
        )
    stop_loss, take_profit = _protective(alert, side, entry, rules, atr)
    freed = abs(held) * entry if close is not None else 0.0
    try:
        qty = _size(alert, entry, stop_loss, account, rules, freed)
    except SizingError as exc:
        return Decision(DecisionKind.NOTHING, (), f"cannot size {symbol}: {exc}")
    if qty <= 0:
        return Decision(
            DecisionKind.NOTHING,
            (),
            f"size for {symbol} is 0 shares at {entry:g} "
            f"(equity {account.equity:,.2f}, buying power {account.buying_power:,.2f})",
        )
    opening = OrderIntent(
        client_order_id=client_order_id(alert_id, "open"),
        alert_id=alert_id,
        symbol=symbol,
        side=side,
        qty=qty,
        order_type=alert.order_type,
        time_in_force=rules.time_in_force,
        stop_loss=stop_loss,
        take_profit=take_profit,
        reference_price=alert.price or entry,  # the market when decided; a limit rests below it
        **_entry_prices(alert),
    )
    direction = "long" if side is Side.BUY else "short"
    if close is not None:
        return Decision(
            DecisionKind.REVERSE,
            (close, opening),
            f"reverse {symbol}: close {close.qty:g}, open {direction} {qty}",
        )
    return Decision(DecisionKind.OPEN, (opening,), f"open {direction} {qty} {symbol}")
