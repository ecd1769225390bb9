"""Alert → the orders a disciplined trader would place: open, close or reverse, sized, protected.

`decide_orders(alert, alert_id, account=, positions=, rules=)` is pure: it reads the alert,
the current position in the symbol and the account, and returns a `Decision` whose intents
are placed in order (the close of a reverse first). It never talks to a broker.

**Strategy alerts are target positions.** An alert with `market_position` says where the
TradingView strategy now is (`strategy_target`): the orders placed are *target − the
broker's position*, split into a close and an open. So a flip sent as `sell`, short,
`{{strategy.order.contracts}}` 20 after long 10 ends short 10, not 20, and a redelivered
alert finds its target reached and does nothing.

| alert | held | decision |
|---|---|---|
| strategy: long/short N | flat | open N |
| strategy: long/short N | opposite side | reverse: close all, open N |
| strategy: same side, N < held | held | partial close of held − N; the rest stays protected |
| strategy: same side, N = held | held | ignore (already there) |
| strategy: same side, N > held | held | nothing (no pyramiding) |
| strategy: flat | any / flat | close it all / ignore (already flat) |
| `buy` / `short` (indicator) | flat / opposite | open / reverse |
| `sell` / `cover` / `exit` (indicator) | long / short / any | close it; ignore when flat |
| `buy` / `short` on the side already held | held | nothing (no pyramiding) |

With `use_alert_quantity` off, opens are sized by our rules and a strategy's partial exit
closes the same share of our position.

Protection: the alert's `stop_loss`/`take_profit`, else its `*_pct`, else the default — an
ATR multiple when an ATR is given and configured, otherwise a percent of the entry.
Prices are rounded to valid ticks; stops away from the entry (never tighter than asked).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from chalicelib.domain import (
    Account,
    Action,
    Alert,
    DayType,
    MarketPosition,
    Order,
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
    NOTHING = "nothing"  # the alert asks for something this account will not do; reason says why
    IGNORE = "ignore"  # the account is already where the alert wants it (e.g. already flat)


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
    choppy_size_scale: float = 1.0  # a choppy day's entries at this share of their size


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


def _sign(side: MarketPosition) -> float:
    return {MarketPosition.LONG: 1.0, MarketPosition.SHORT: -1.0}.get(side, 0.0)


def _side_of(qty: float) -> MarketPosition:
    return (
        MarketPosition.LONG if qty > 0 else MarketPosition.SHORT if qty < 0 else MarketPosition.FLAT
    )


def strategy_target(alert: Alert, held: float) -> float | None:
    """The signed position a TradingView *strategy* alert says the strategy now holds.

    None for indicator alerts (no `market_position`), and for a strategy alert that sends
    no size at all (then only its side is known). TradingView's placeholders
    (https://www.tradingview.com/support/solutions/43000531021):

    - `{{strategy.position_size}}`: the current position, signed (negative when short);
    - `{{strategy.market_position_size}}`: the same as an absolute value;
    - `{{strategy.order.contracts}}`: the size of the order that fired, which on a flip is
      the whole reversal (close the old side *and* open the new one), so the new side is
      contracts minus `{{strategy.prev_market_position_size}}` — or, when that is not sent,
      minus the position held (`held`, signed, from the broker).
    """
    wanted = alert.market_position
    if wanted is None:
        return None
    if wanted is MarketPosition.FLAT:
        return 0.0
    sign = _sign(wanted)
    if alert.position_size is not None:
        return alert.position_size
    if alert.market_position_size is not None:
        return sign * alert.market_position_size
    contracts = alert.quantity
    if contracts is None:
        return None
    prev = alert.prev_market_position
    if prev is None:
        prev = _side_of(held)
    prev_size = alert.prev_market_position_size
    if prev is MarketPosition.FLAT:
        return sign * contracts
    if prev is not wanted:  # a flip: contracts = old side closed + new side opened
        if prev_size is None:
            if _side_of(held) is wanted and abs(held) < contracts:
                # We already hold the new side: this flip was executed (a resend or a
                # redelivery), so the old side was contracts − held and the target is held.
                return held
            prev_size = abs(held) if _side_of(held) is prev else 0.0
        return sign * max(contracts - prev_size, 0.0)
    if prev_size is None:
        prev_size = abs(held) if _side_of(held) is prev else 0.0
    adds = (alert.action is Action.BUY) == (wanted is MarketPosition.LONG)
    return sign * (prev_size + contracts if adds else max(prev_size - contracts, 0.0))


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
    qty: float | None = None,
) -> int:
    """Shares to open: `qty` when given (a strategy's target), else the alert's quantity
    (when used), else by the sizing rules; always capped by notional and buying power."""
    cap = rules.max_position_notional_usd or None
    buying_power = account.buying_power + freed_buying_power
    if qty is None and rules.use_alert_quantity and alert.quantity is not None:
        qty = alert.quantity
    if qty is not None:
        return position_size(
            SizingMode.FIXED_QTY,
            entry_price=entry,
            qty=qty,
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


class _EntryPrices(TypedDict):
    limit_price: float | None
    stop_price: float | None
    trail_price: float | None
    trail_percent: float | None


def _entry_prices(alert: Alert) -> _EntryPrices:
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
    protection: Protection | None = None,
    day_type: DayType | None = None,
) -> Decision:
    """What to place for `alert`, given the account and its current positions.

    Strategy alerts (with `market_position`) state where the strategy now is: the orders
    move the broker's position to that target. Indicator alerts name an action.
    `atr` (USD per share) enables ATR-multiple default stops/targets when configured;
    `protection` is the stop/target working on the held position, re-placed for whatever a
    partial close leaves. `day_type` (the context's): on a choppy day an entry flowtrader
    sizes (or an indicator alert's quantity) is scaled by `rules.choppy_size_scale`; a
    strategy's target position is kept, so the strategy and the account stay in step.
    """
    plan = _Plan(alert, alert_id, _held_qty(alert.symbol, positions), account, rules, atr, day_type)
    if alert.market_position is not None:
        return plan.toward_target(protection)
    return plan.by_action()


@dataclass(frozen=True)
class Protection:
    """The protective exits working on a held position (USD prices); None where absent."""

    stop_loss: float | None = None
    take_profit: float | None = None

    def __bool__(self) -> bool:
        return self.stop_loss is not None or self.take_profit is not None


def protection_of(exits: Iterable[Order]) -> Protection:
    """The stop and target that the working exit orders of one position give it.

    A trailing stop counts with its current stop price. With several stops the one nearest
    the market is the one that fires first; that is the one a remainder keeps.
    """
    stops = [
        o.stop_price
        for o in exits
        if o.order_type in (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)
        and o.stop_price is not None
    ]
    targets = [o.limit_price for o in exits if o.order_type is OrderType.LIMIT and o.limit_price]
    exits = list(exits)
    selling = bool(exits) and exits[0].side is Side.SELL  # exits of a long sell
    stop = (max(stops) if selling else min(stops)) if stops else None
    target = (min(targets) if selling else max(targets)) if targets else None
    return Protection(stop_loss=stop, take_profit=target)


def protective_exit(
    alert_id: str,
    symbol: str,
    held: float,
    protection: Protection,
    *,
    rules: OrderRules,
    reference_price: float | None = None,
    leg: str = "protect",
) -> OrderIntent:
    """The exit-only order that gives `held` shares (signed) the stop/target they had:
    an OCO with both, else a plain stop or limit (brokers map `protects_position`)."""
    return OrderIntent(
        client_order_id=client_order_id(alert_id, leg),
        alert_id=alert_id,
        symbol=symbol,
        side=Side.SELL if held > 0 else Side.BUY,
        qty=abs(held),
        order_type=OrderType.LIMIT if protection.take_profit else OrderType.STOP,
        time_in_force=rules.time_in_force,
        limit_price=protection.take_profit,
        stop_price=protection.stop_loss,
        stop_loss=protection.stop_loss,
        take_profit=protection.take_profit,
        reference_price=reference_price,
        protects_position=True,
    )


@dataclass(frozen=True)
class _Plan:
    """One alert against one held quantity (signed): the decision table, spelled out."""

    alert: Alert
    alert_id: str
    held: float
    account: Account
    rules: OrderRules
    atr: float | None
    day_type: DayType | None = None

    @property
    def symbol(self) -> str:
        return self.alert.symbol

    def _nothing(self, reason: str) -> Decision:
        return Decision(DecisionKind.NOTHING, (), reason)

    def _ignore(self, reason: str) -> Decision:
        return Decision(DecisionKind.IGNORE, (), reason)

    def _holding(self) -> str:
        return f"{_side_of(self.held).value} {abs(self.held):g} {self.symbol}"

    # --- strategy alerts: a target position ----------------------------------------------

    def toward_target(self, protection: Protection | None) -> Decision:
        alert, held = self.alert, self.held
        wanted = alert.market_position
        assert wanted is not None
        target = strategy_target(alert, held)
        if wanted is MarketPosition.FLAT:
            if not held:
                return self._ignore(f"already flat in {self.symbol}")
            return self._close(abs(held), "close", protection=None)
        if _side_of(held) is wanted:
            return self._same_side(target, protection)
        if target is not None and target == 0:  # e.g. a flip of exactly the old size
            if not held:
                return self._ignore(f"already flat in {self.symbol}")
            return self._close(abs(held), "close", protection=None)
        qty = abs(target) if target is not None and self.rules.use_alert_quantity else None
        return self._open(Side.BUY if wanted is MarketPosition.LONG else Side.SELL, qty)

    def _same_side(self, target: float | None, protection: Protection | None) -> Decision:
        held = self.held
        if target is None:
            return self._ignore(f"already {self._holding()}; the alert sends no size")
        keep = abs(target)
        if not self.rules.use_alert_quantity:
            keep = self._kept_share(keep) * abs(held)
        if keep > abs(held):
            return self._nothing(
                f"already {self._holding()}; adding to a position is off "
                f"(the strategy holds {keep:g})"
            )
        if keep == abs(held):
            return self._ignore(f"already {self._holding()} (the strategy's position)")
        return self._close(abs(held) - keep, "partial close", protection=protection)

    def _kept_share(self, now_size: float) -> float:
        """The share of the strategy's position it kept, for accounts sized by our rules."""
        alert = self.alert
        before = alert.prev_market_position_size
        if before is None and alert.quantity is not None:
            before = now_size + alert.quantity
        if not before:
            return 1.0
        return min(now_size / before, 1.0)

    # --- indicator alerts: an action ------------------------------------------------------

    def by_action(self) -> Decision:
        action, held = self.alert.action, self.held
        if action in (Action.BUY, Action.SHORT):
            side = Side.BUY if action is Action.BUY else Side.SELL
            if held and (held > 0) == (side is Side.BUY):
                return self._nothing(f"already {self._holding()}; adding to a position is off")
            return self._open(side, None)
        names = {Action.SELL: MarketPosition.LONG, Action.COVER: MarketPosition.SHORT}
        named = names.get(action)
        if not held:
            hint = "; to open a short send action=short" if action is Action.SELL else ""
            return self._ignore(f"already flat in {self.symbol}{hint}")
        if named is not None and _side_of(held) is not named:
            return self._ignore(
                f"{action.value} {self.symbol}: no {named.value} position to close "
                f"(holding {self._holding()})"
            )
        return self._close(abs(held), "close", protection=None)

    # --- the orders -----------------------------------------------------------------------

    def _close_intent(self, qty: float) -> OrderIntent:
        return OrderIntent(
            client_order_id=client_order_id(self.alert_id, "close"),
            alert_id=self.alert_id,
            symbol=self.symbol,
            side=Side.SELL if self.held > 0 else Side.BUY,
            qty=qty,
            order_type=OrderType.MARKET,
            time_in_force=self.rules.time_in_force,
            reference_price=self.alert.price,
            closes_position=True,
        )

    def _close(self, qty: float, what: str, protection: Protection | None) -> Decision:
        close = self._close_intent(qty)
        intents: tuple[OrderIntent, ...] = (close,)
        remainder = abs(self.held) - qty
        reason = f"{what} {qty:g} {self.symbol}"
        if remainder > 0 and protection:
            intents += (
                protective_exit(
                    self.alert_id,
                    self.symbol,
                    self.held - (qty if self.held > 0 else -qty),
                    protection,
                    rules=self.rules,
                    reference_price=self.alert.price,
                ),
            )
            reason += f", {remainder:g} left protected"
        return Decision(DecisionKind.CLOSE, intents, reason)

    def _open(self, side: Side, qty: float | None) -> Decision:
        """Open `side` (after closing the held opposite side): `qty` shares, or sized."""
        alert, held, rules = self.alert, self.held, self.rules
        symbol = self.symbol
        entry = alert.limit_price or alert.stop_price or alert.price
        if entry is None:
            return self._nothing(
                f'cannot size {symbol}: the alert has no price; add "price": {{{{close}}}}'
            )
        stop_loss, take_profit = _protective(alert, side, entry, rules, self.atr)
        freed = abs(held) * entry if held else 0.0
        try:
            size = _size(alert, entry, stop_loss, self.account, rules, freed, qty)
        except SizingError as exc:
            return self._nothing(f"cannot size {symbol}: {exc}")
        scaled = ""
        scale = rules.choppy_size_scale
        if qty is None and self.day_type is DayType.CHOPPY and 0 <= scale < 1 and size > 0:
            full, size = size, math.floor(size * scale + 1e-9)
            scaled = f" (choppy day: {full} × {scale:g})"
            if size <= 0:
                return self._nothing(
                    f"size for {symbol} is 0 shares on a choppy day ({full} × {scale:g})"
                )
        if size <= 0:
            return self._nothing(
                f"size for {symbol} is 0 shares at {entry:g} "
                f"(equity {self.account.equity:,.2f}, "
                f"buying power {self.account.buying_power:,.2f})"
            )
        opening = OrderIntent(
            client_order_id=client_order_id(self.alert_id, "open"),
            alert_id=self.alert_id,
            symbol=symbol,
            side=side,
            qty=size,
            order_type=alert.order_type,
            time_in_force=rules.time_in_force,
            stop_loss=stop_loss,
            take_profit=take_profit,
            reference_price=alert.price or entry,  # the market when decided; a limit rests below
            **_entry_prices(alert),
        )
        direction = "long" if side is Side.BUY else "short"
        if held:
            close = self._close_intent(abs(held))
            return Decision(
                DecisionKind.REVERSE,
                (close, opening),
                f"reverse {symbol}: close {close.qty:g}, open {direction} {size}{scaled}",
            )
        return Decision(DecisionKind.OPEN, (opening,), f"open {direction} {size} {symbol}{scaled}")
