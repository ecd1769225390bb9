"""The paper fill model: whether a working order fills on a price move, and at what price.

Pure and deliberately simple, so the paper broker and the backtest fill the same way:

- Market orders, and stops once triggered, take liquidity: they fill `slippage_bps` worse
  than the price (buyers pay up, sellers get less), rounded to a valid tick against the
  trader. Stops that gap through their price fill at the (worse) gap price.
- Limit orders rest: they fill at their limit, or at the price when it is already better;
  no slippage.
- A move is a last price and, when known, the range (high/low) since the previous move.
  With a range, the model assumes the adverse order of events: a trailing stop's
  high-water mark takes the high before the low is tested, and when a bracket's stop-loss
  and take-profit are both touched, the stop-loss wins (`resolve_exit`).

Prices are in USD per share, `slippage_bps` in basis points (1 bps = 0.01 %).
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain import OrderType, Side
from chalicelib.rules.prices import round_to_tick

BPS = 10_000.0


@dataclass(frozen=True)
class PriceMove:
    """What the market did: the last price and, when known, the high/low since last time."""

    price: float
    high: float | None = None
    low: float | None = None

    @property
    def hi(self) -> float:
        return max(self.price, self.high) if self.high is not None else self.price

    @property
    def lo(self) -> float:
        return min(self.price, self.low) if self.low is not None else self.price


@dataclass(frozen=True)
class WorkingOrder:
    """The parts of an order the fill model needs; `hwm` is a trailing stop's watermark."""

    side: Side
    order_type: OrderType
    limit_price: float | None = None
    stop_price: float | None = None
    trail_percent: float | None = None
    trail_price: float | None = None
    hwm: float | None = None
    triggered: bool = False  # a stop_limit whose stop was hit now rests as a limit


@dataclass(frozen=True)
class Evaluation:
    """The model's answer: a fill price (None: still working) and the order's new state."""

    fill_price: float | None
    hwm: float | None = None
    triggered: bool = False
    stop_price: float | None = None  # a trailing stop's current stop level


def slipped(side: Side, price: float, slippage_bps: float) -> float:
    """`price` made `slippage_bps` worse for `side`, on a valid tick (rounded against us)."""
    if side is Side.BUY:
        return round_to_tick(price * (1 + slippage_bps / BPS), "up")
    return round_to_tick(price * (1 - slippage_bps / BPS), "down")


def market_fill(side: Side, move: PriceMove, slippage_bps: float) -> float:
    return slipped(side, move.price, slippage_bps)


def limit_fill(side: Side, limit_price: float, move: PriceMove) -> float | None:
    """A resting limit fills when the range reaches it, at the limit or the better price."""
    if side is Side.BUY:
        return min(limit_price, move.price) if move.lo <= limit_price else None
    return max(limit_price, move.price) if move.hi >= limit_price else None


def stop_triggered(side: Side, stop_price: float, move: PriceMove) -> bool:
    """A buy stop triggers at or above its price, a sell stop at or below."""
    return move.hi >= stop_price if side is Side.BUY else move.lo <= stop_price


def stop_fill(side: Side, stop_price: float, move: PriceMove, slippage_bps: float) -> float | None:
    """A triggered stop becomes a market order: the stop, or the gap price when worse."""
    if not stop_triggered(side, stop_price, move):
        return None
    base = max(stop_price, move.price) if side is Side.BUY else min(stop_price, move.price)
    return slipped(side, base, slippage_bps)


def trailing_stop_level(
    side: Side, hwm: float, trail_percent: float | None, trail_price: float | None
) -> float:
    """Where a trailing stop sits: below the high-water mark for a sell, above the low for a buy."""
    if trail_price is not None:
        level = hwm - trail_price if side is Side.SELL else hwm + trail_price
    elif trail_percent is not None:
        factor = 1 - trail_percent / 100 if side is Side.SELL else 1 + trail_percent / 100
        level = hwm * factor
    else:
        raise ValueError("a trailing stop needs trail_percent or trail_price")
    return round_to_tick(level, "down" if side is Side.SELL else "up")


def evaluate(order: WorkingOrder, move: PriceMove, slippage_bps: float) -> Evaluation:
    """Apply one price move to one working order."""
    side = order.side
    kind = order.order_type
    if kind is OrderType.MARKET:
        return Evaluation(market_fill(side, move, slippage_bps))
    if kind is OrderType.LIMIT:
        assert order.limit_price is not None
        return Evaluation(limit_fill(side, order.limit_price, move))
    if kind is OrderType.STOP:
        assert order.stop_price is not None
        return Evaluation(stop_fill(side, order.stop_price, move, slippage_bps))
    if kind is OrderType.STOP_LIMIT:
        assert order.stop_price is not None
        assert order.limit_price is not None
        triggered = order.triggered or stop_triggered(side, order.stop_price, move)
        if not triggered:
            return Evaluation(None)
        if order.triggered:
            return Evaluation(limit_fill(side, order.limit_price, move), triggered=True)
        # Just triggered: it trades at the stop (or the gap price) if the limit allows.
        base = (
            max(order.stop_price, move.price)
            if side is Side.BUY
            else min(order.stop_price, move.price)
        )
        marketable = base <= order.limit_price if side is Side.BUY else base >= order.limit_price
        return Evaluation(base if marketable else None, triggered=True)
    if kind is OrderType.TRAILING_STOP:
        if side is Side.SELL:
            hwm = max(order.hwm, move.hi) if order.hwm is not None else move.hi
        else:
            hwm = min(order.hwm, move.lo) if order.hwm is not None else move.lo
        level = trailing_stop_level(side, hwm, order.trail_percent, order.trail_price)
        fill = stop_fill(side, level, move, slippage_bps)
        return Evaluation(fill, hwm=hwm, stop_price=level)
    raise ValueError(f"unknown order type {kind!r}")


def resolve_exit(
    side: Side,
    move: PriceMove,
    stop_loss: float | None,
    take_profit: float | None,
    slippage_bps: float,
) -> tuple[str, float] | None:
    """Which protective leg of a position fills on `move`: ("stop_loss" | "take_profit", price).

    `side` is the exit side (sell for a long). When the range touches both, the stop-loss
    wins: the model cannot know which came first and assumes the worse.
    """
    if stop_loss is not None:
        price = stop_fill(side, stop_loss, move, slippage_bps)
        if price is not None:
            return "stop_loss", price
    if take_profit is not None:
        price = limit_fill(side, take_profit, move)
        if price is not None:
            return "take_profit", price
    return None
