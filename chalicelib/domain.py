"""The trading vocabulary every layer speaks: alerts, orders, fills, positions, verdicts.

Models are frozen pydantic models; timestamps are timezone-aware UTC; prices are in
the instrument's quote currency (USD) as floats inside the rules and `Decimal` only at
the broker boundary.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)


class Action(StrEnum):
    """What the alert asks for. Strategy alerts only send buy/sell plus a market position."""

    BUY = "buy"
    SELL = "sell"
    SHORT = "short"
    COVER = "cover"
    EXIT = "exit"


class MarketPosition(StrEnum):
    LONG = "long"
    SHORT = "short"
    FLAT = "flat"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class AlertStatus(StrEnum):
    """Where an alert is in its life. Terminal ones carry a reason."""

    STORED = "stored"  # written, but the enqueue failed: the sweeper queues it
    QUEUED = "queued"  # written and on the queue, waiting for the worker
    RECEIVED = "received"  # the worker has it
    ACCEPTED = "accepted"  # an order was placed
    REJECTED = "rejected"  # a rule or check said no; reason says which
    FAILED = "failed"  # something broke; reason says what
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"  # a reversal closed, but its open was denied
    IGNORED = "ignored"  # nothing to do (e.g. an exit that finds the account already flat)


class DayType(StrEnum):
    """What kind of session it is (rules/day_type.py classifies it; the gate acts on it)."""

    TREND_UP = "trend_up"
    TREND_DOWN = "trend_down"
    CHOPPY = "choppy"
    NO_TRADE = "no_trade"

    @classmethod
    def _missing_(cls, value: object) -> DayType | None:
        # Records written before the trend got a direction read as an upward trend.
        return cls.TREND_UP if value == "trend" else None

    @property
    def is_trend(self) -> bool:
        return self in (DayType.TREND_UP, DayType.TREND_DOWN)


def _finite_positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number")
    return value


# Sane magnitudes for what an alert may carry. Prices (USD) are tick-able: the smallest tick is
# $0.0001 (under $1); the dearest US share trades well under $10M. Quantities are shares:
# Alpaca's fractional shares go to 1e-9.
MIN_PRICE_USD = 0.0001
MAX_PRICE_USD = 10_000_000.0
MIN_QTY = 1e-9
MAX_QTY = 10_000_000.0
MAX_VOLUME = 1e18
# An alert's times must be representable in UTC and plausible; freshness is the webhook's
# check (rules/alert_age.py), which needs the clock.
EARLIEST_ALERT_TIME = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_ALERT_TIME = datetime(2200, 1, 1, tzinfo=UTC)
# A `{{...}}` TradingView did not replace: a variable that does not exist for this alert (e.g.
# `{{strategy.order.action}}` on an indicator alert) is sent as typed.
PLACEHOLDER = re.compile(r"\{\{[^{}]{0,80}\}\}")
# What a TradingView ticker can look like at all (tradeability is rules/instruments.py's call).
_TICKER_SHAPE = re.compile(r"(?:[A-Z0-9][A-Z0-9_]{0,23}:)?[A-Z0-9][A-Z0-9._!-]{0,23}")
_PRICE_FIELDS = ("price", "limit_price", "stop_price", "trail_price", "stop_loss", "take_profit")
_PERCENT_FIELDS = ("trail_percent", "stop_loss_pct", "take_profit_pct")
_NUMBER_FIELDS = (*_PRICE_FIELDS, *_PERCENT_FIELDS, "quantity", "volume")


def unfilled_placeholder(value: Any) -> str | None:
    """The first unfilled `{{placeholder}}` in a string, else None."""
    if isinstance(value, str):
        match = PLACEHOLDER.search(value)
        return match.group(0) if match else None
    return None


def placeholder_message(placeholder: str) -> str:
    return (
        f"holds the unfilled TradingView placeholder {placeholder}: TradingView sends a "
        "variable it cannot fill for this alert as typed; fix the alert's message"
    )


def _placeholder_fields(value: Any, path: str) -> list[tuple[str, str]]:
    """(field path, placeholder) for every unfilled placeholder in value, nested included."""
    found = []
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((f"{where}.{i}", v) for i, v in enumerate(item))
        elif (placeholder := unfilled_placeholder(item)) is not None:
            found.append((where, placeholder))
    return sorted(found)


class Alert(BaseModel):
    """A validated TradingView alert.

    `ticker` arrives as `EXCHANGE:SYMBOL` or `SYMBOL`; the symbol and exchange are split
    here. Unknown fields are kept (``extra="allow"``) so nothing the user sent is lost.
    The passphrase is never part of the model.
    """

    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=True)

    ticker: str = Field(min_length=1, max_length=64)
    action: Action
    market_position: MarketPosition | None = None
    prev_market_position: MarketPosition | None = None
    # Strategy sizes ({{strategy.market_position_size}}, {{strategy.position_size}},
    # {{strategy.prev_market_position_size}}): where the strategy is, not what it trades.
    market_position_size: float | None = None
    position_size: float | None = None  # signed: negative when short
    prev_market_position_size: float | None = None
    price: float | None = None
    quantity: float | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    trail_percent: float | None = None
    trail_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    time: datetime | None = None  # {{time}}: the bar's open time
    timenow: datetime | None = None  # {{timenow}}: when the alert fired
    interval: str | None = Field(default=None, max_length=16)
    strategy: str | None = Field(default=None, max_length=128)
    order_id: str | None = Field(default=None, max_length=128)
    alert_id: str | None = Field(default=None, max_length=128)
    comment: str | None = Field(default=None, max_length=512)
    volume: float | None = None

    @field_validator("action", mode="before")
    @classmethod
    def _lower_action(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("market_position", "prev_market_position", "order_type", mode="before")
    @classmethod
    def _lower_enum(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return value or None
        return value

    @model_validator(mode="before")
    @classmethod
    def _no_unfilled_placeholders(cls, data: Any) -> Any:
        """Any field, unknown and nested ones included: an unfilled `{{placeholder}}` means the
        alert's message does not fit the alert, so nothing in it can be trusted."""
        if isinstance(data, dict):
            found = _placeholder_fields(data, "")
            if found:
                field, placeholder = found[0]
                raise ValueError(f"{field} {placeholder_message(placeholder)}")
        return data

    @field_validator("ticker")
    @classmethod
    def _ticker_shape(cls, value: str) -> str:
        # ASCII first: str.upper() maps some non-ASCII letters onto ASCII ones ("ı" -> "I").
        if not value.isascii() or not _TICKER_SHAPE.fullmatch(value.upper()):
            raise ValueError(
                "ticker must look like SYMBOL or EXCHANGE:SYMBOL "
                "(ASCII letters, digits and . _ ! - only; e.g. NASDAQ:AAPL)"
            )
        return value.upper()

    @field_validator(*_NUMBER_FIELDS, mode="before")
    @classmethod
    def _a_number_not_a_bool(cls, value: Any, info: Any) -> Any:
        if isinstance(value, bool):  # pydantic would read true as 1.0
            raise ValueError(f"{info.field_name} must be a number, not {str(value).lower()}")
        return value

    @field_validator(*_PRICE_FIELDS)
    @classmethod
    def _price_bounds(cls, value: float | None, info: Any) -> float | None:
        value = _finite_positive(info.field_name, value)
        if value is not None and not MIN_PRICE_USD <= value <= MAX_PRICE_USD:
            raise ValueError(
                f"{info.field_name} must be between {MIN_PRICE_USD} and {MAX_PRICE_USD:,.0f} USD"
            )
        return value

    @field_validator("quantity")
    @classmethod
    def _quantity_bounds(cls, value: float | None) -> float | None:
        value = _finite_positive("quantity", value)
        if value is not None and not MIN_QTY <= value <= MAX_QTY:
            raise ValueError(f"quantity must be between {MIN_QTY:g} and {MAX_QTY:,.0f} shares")
        return value

    @field_validator("volume")
    @classmethod
    def _volume_bounds(cls, value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and 0 <= value <= MAX_VOLUME):
            raise ValueError(f"volume must be a number from 0 to {MAX_VOLUME:g}")
        return value

    @field_validator("market_position_size", "prev_market_position_size", "position_size")
    @classmethod
    def _strategy_size(cls, value: float | None, info: Any) -> float | None:
        if value is None:
            return None
        if not math.isfinite(value) or abs(value) > MAX_QTY:
            raise ValueError(f"{info.field_name} must be a number of shares up to {MAX_QTY:,.0f}")
        if info.field_name != "position_size" and value < 0:
            raise ValueError(f"{info.field_name} must be 0 or more (the side is market_position)")
        return value

    @field_validator("trail_percent", "stop_loss_pct", "take_profit_pct")
    @classmethod
    def _percent(cls, value: float | None, info: Any) -> float | None:
        if value is not None and not (math.isfinite(value) and 0 < value < 100):
            raise ValueError(f"{info.field_name} must be between 0 and 100 (exclusive)")
        return value

    @field_validator("time", "timenow")
    @classmethod
    def _utc(cls, value: datetime | None, info: Any) -> datetime | None:
        if value is None:
            return None
        try:
            utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
            utc = None
        if utc is None or not EARLIEST_ALERT_TIME <= utc < LATEST_ALERT_TIME:
            raise ValueError(
                f"{info.field_name} must be a time between {EARLIEST_ALERT_TIME.year} and "
                f"{LATEST_ALERT_TIME.year} (ISO 8601, as TradingView's {{{{{info.field_name}}}}})"
            )
        return utc

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit and self.limit_price is None:
            raise ValueError(f"a {self.order_type.value} order needs limit_price")
        if needs_stop and self.stop_price is None:
            raise ValueError(f"a {self.order_type.value} order needs stop_price")
        if self.order_type is OrderType.TRAILING_STOP and (
            (self.trail_percent is None) == (self.trail_price is None)
        ):
            raise ValueError(
                "a trailing_stop order needs exactly one of trail_percent, trail_price"
            )
        if self.position_size is not None and self.market_position is not None:
            sign = {MarketPosition.LONG: 1, MarketPosition.SHORT: -1}.get(self.market_position, 0)
            if (self.position_size > 0) - (self.position_size < 0) != sign:
                raise ValueError(
                    f"position_size {self.position_size:g} disagrees with "
                    f"market_position {self.market_position.value}"
                )
        reference = self.limit_price or self.price
        side = self.entry_side
        if reference is not None and side is not None:
            if self.stop_loss is not None:
                if side is Side.BUY and self.stop_loss >= reference:
                    raise ValueError("stop_loss must be below the entry price for a long")
                if side is Side.SELL and self.stop_loss <= reference:
                    raise ValueError("stop_loss must be above the entry price for a short")
            if self.take_profit is not None:
                if side is Side.BUY and self.take_profit <= reference:
                    raise ValueError("take_profit must be above the entry price for a long")
                if side is Side.SELL and self.take_profit >= reference:
                    raise ValueError("take_profit must be below the entry price for a short")
        return self

    @property
    def symbol(self) -> str:
        return self.ticker.rsplit(":", 1)[-1]

    @property
    def exchange(self) -> str | None:
        return self.ticker.rsplit(":", 1)[0] if ":" in self.ticker else None

    @property
    def entry_side(self) -> Side | None:
        """The side of the position this alert opens, or None when it only closes one.

        Strategy alerts (with `market_position`) open a long on buy→long, a short on
        sell→short; buy→flat and sell→flat are closes.
        """
        if self.market_position is not None:
            if self.market_position is MarketPosition.LONG:
                return Side.BUY
            if self.market_position is MarketPosition.SHORT:
                return Side.SELL
            return None
        return {Action.BUY: Side.BUY, Action.SHORT: Side.SELL}.get(self.action)

    @property
    def extra_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Verdict(BaseModel):
    """One check's answer: allowed, or denied with a reason and, where known, until when."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    reason: str = ""
    until: datetime | None = None
    check: str = ""

    @classmethod
    def allow(cls, check: str = "") -> Verdict:
        return cls(allowed=True, check=check)

    @classmethod
    def deny(cls, reason: str, *, check: str = "", until: datetime | None = None) -> Verdict:
        return cls(allowed=False, reason=reason, until=until, check=check)


class Bar(BaseModel):
    """One OHLCV bar; `time` is the bar's start (UTC), as Alpaca and TradingView stamp it."""

    model_config = ConfigDict(frozen=True)

    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0
    trade_count: int | None = None
    vwap: float | None = None  # the vendor's own per-bar VWAP, where it sends one


# --- market data (issue 11): what a MarketData source answers -------------------------


class Quote(BaseModel):
    """The best bid and offer at `time`."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    time: datetime
    bid: float
    ask: float
    bid_size: float = 0.0
    ask_size: float = 0.0


class MarketTrade(BaseModel):
    """One print on the tape (a trade in the market, not ours)."""

    model_config = ConfigDict(frozen=True)

    time: datetime
    price: float
    size: float


class MarketSnapshot(BaseModel):
    """The market for one symbol as the decision sees it, with the indicators derived
    from its bars (rules/volume.py, rules/indicators.py). `None` where not computable."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    source: str  # the MarketData source it came from: alpaca | ibkr | tradingview | files | replay
    as_of: datetime
    last_price: float | None = None
    bars: tuple[Bar, ...] = ()  # the session's one-minute bars, oldest first
    atr: float | None = None  # USD per share
    vwap: float | None = None
    vwap_upper: float | None = None  # VWAP + 1 standard deviation band
    vwap_lower: float | None = None
    vwap_upper_2: float | None = None  # VWAP ± 2 standard deviations
    vwap_lower_2: float | None = None
    relative_volume: float | None = None  # today's cumulative volume / usual by this time
    delta: float | None = None  # estimated buy − sell volume over the session
    delta_method: str | None = None  # trades (tick rule on the tape) | bvc (from bars)
    volume_confirmation: Verdict | None = None  # the breakout-volume rule's verdict


class DayClassification(BaseModel):
    """A session's day type with the confidence and the features behind it."""

    model_config = ConfigDict(frozen=True)

    day: date
    symbol: str
    day_type: DayType
    confidence: float  # 0..1
    features: dict[str, float] = Field(default_factory=dict)
    classified_at: datetime | None = None
    reason: str = ""


# --- flow (issue 12): options and dark-pool flow around the alert ------------------------


class FlowPrint(BaseModel):
    """One Unusual Whales flow alert: trades on one option contract aggregated by a rule
    (RepeatedHits, sweeps, ...). Premiums in USD; `size` in contracts."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    option_symbol: str  # OCC symbol, e.g. MSFT231222C00375000
    option_type: str  # call | put
    created_at: datetime
    premium_usd: float
    ask_side_premium_usd: float = 0.0
    bid_side_premium_usd: float = 0.0
    size: int = 0
    trade_count: int = 0
    is_sweep: bool = False
    alert_rule: str = ""
    strike: float | None = None
    expiry: date | None = None
    price: float | None = None  # the option's price per share
    underlying_price: float | None = None
    volume: int | None = None
    open_interest: int | None = None
    alert_id: str | None = None

    @property
    def bullish_premium_usd(self) -> float:
        """Premium that bets on a rise: calls bought at the ask, puts sold at the bid."""
        call = self.option_type == "call"
        return self.ask_side_premium_usd if call else self.bid_side_premium_usd

    @property
    def bearish_premium_usd(self) -> float:
        """Premium that bets on a fall: calls sold at the bid, puts bought at the ask."""
        call = self.option_type == "call"
        return self.bid_side_premium_usd if call else self.ask_side_premium_usd

    @property
    def key(self) -> str:
        """A stable identity for the alert: UW's id when it sends one."""
        return self.alert_id or f"{self.option_symbol}@{self.created_at.isoformat()}"


class DarkPoolPrint(BaseModel):
    """One off-exchange (dark-pool) stock trade; `premium_usd` = price × size."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    executed_at: datetime
    price: float
    size: int
    premium_usd: float
    nbbo_bid: float | None = None
    nbbo_ask: float | None = None
    day_volume: int | None = None  # the stock's volume for the day when the print was reported
    tracking_id: str | None = None
    market_center: str | None = None
    canceled: bool = False


class NetPremTick(BaseModel):
    """One minute of a ticker's options tape: net premium = ask-side − bid-side (USD)."""

    model_config = ConfigDict(frozen=True)

    time: datetime
    net_call_premium: float
    net_put_premium: float
    net_call_volume: int = 0
    net_put_volume: int = 0
    call_volume: int = 0
    put_volume: int = 0
    net_delta: float | None = None


class MarketTide(BaseModel):
    """One tick of Unusual Whales' market-wide tide: net call and put premium (USD)."""

    model_config = ConfigDict(frozen=True)

    time: datetime
    net_call_premium: float
    net_put_premium: float
    net_volume: int = 0


class FlowHighlight(BaseModel):
    """A "smart money" print the scanner recorded: a large sweep, repeated hits on one
    contract, or a dark-pool print large against the day's usual size."""

    model_config = ConfigDict(frozen=True)

    key: str  # idempotency: the same print is recorded once
    symbol: str
    kind: str  # sweep | repeated_hits | darkpool
    at: datetime  # when the vendor saw it
    premium_usd: float
    headline: str
    direction: str = "neutral"  # bullish | bearish | neutral
    option_symbol: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class FlowSummary(BaseModel):
    """Options and dark-pool flow for one ticker over a window, and whether it agrees with
    the alert's side. USD amounts; `agrees` is None when the flow is balanced or empty."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    window_minutes: int
    call_premium: float = 0.0
    put_premium: float = 0.0
    bullish_premium: float = 0.0  # ask-side calls + bid-side puts
    bearish_premium: float = 0.0  # bid-side calls + ask-side puts
    sweep_count: int = 0
    largest_premium: float = 0.0
    darkpool_notional: float = 0.0
    darkpool_avg_notional: float | None = None
    direction: str = "neutral"  # bullish | bearish | neutral
    agrees: bool | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    side: Side | None = None  # the alert's entry side it was judged against
    as_of: datetime | None = None
    source: str = ""  # the FlowSource it came from: unusual_whales
    print_count: int = 0  # flow alerts inside the window
    largest_prints: tuple[FlowPrint, ...] = ()  # by premium, largest first
    darkpool_ratio: float | None = None  # darkpool_notional / darkpool_avg_notional
    net_tick_premium: float | None = None  # Σ (net call − net put) premium over the window


# --- score (issue 12): how good the setup looks, 0..100 ----------------------------------


class Score(BaseModel):
    """A setup's score. `source` says who scored it: the model, or the deterministic
    formula (rules/score.py) with `fallback_reason` saying why the model was not used."""

    model_config = ConfigDict(frozen=True)

    value: float = Field(ge=0, le=100)
    source: str  # gpt | deterministic
    agrees: bool | None = None
    reasons: tuple[str, ...] = ()
    risk_flags: tuple[str, ...] = ()
    model: str | None = None
    fallback_reason: str | None = None
    cost_usd: float = 0.0
    latency_ms: float | None = None


class ModelAnswer(BaseModel):
    """What the model scorer answered, after its JSON passed the schema: the score's fields,
    the raw text (journaled), the tokens it used and their cost (USD)."""

    model_config = ConfigDict(frozen=True)

    value: float = Field(ge=0, le=100)
    agrees: bool
    reasons: tuple[str, ...] = ()
    risk_flags: tuple[str, ...] = ()
    model: str
    raw: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class MarketNote(BaseModel):
    """The pre-market note (services/premarket_note.py): written by the model when a key is
    set, else by the deterministic template (`source` says which)."""

    model_config = ConfigDict(frozen=True)

    day: date
    written_at: datetime
    source: str  # gpt | deterministic
    text: str
    facts: dict[str, Any] = Field(default_factory=dict)  # what the note was written from
    model: str | None = None
    fallback_reason: str | None = None
    cost_usd: float = 0.0


def utc_now() -> datetime:
    """The one clock outside the rules; services pass its reading into them. It is the
    wall clock unless a market replay installed its own (chalicelib/clock.py)."""
    from chalicelib import clock

    return clock.now()


class OrderIntent(BaseModel):
    """The order the rules decided on, before any broker sees it.

    `client_order_id` is derived from the alert id, so a retry or a redelivery can only ever
    name the same order. `stop_loss`/`take_profit` are the protective legs (a bracket when
    both are given, OTO when one is).
    """

    model_config = ConfigDict(frozen=True)

    client_order_id: str = Field(max_length=48)
    alert_id: str
    symbol: str
    side: Side
    qty: float = Field(gt=0)
    order_type: OrderType = OrderType.MARKET
    time_in_force: str = "day"
    limit_price: float | None = None
    stop_price: float | None = None
    trail_percent: float | None = None
    trail_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    reference_price: float | None = None  # the price the decision was made at
    closes_position: bool = False
    # An exit-only order that protects a held position (e.g. the remainder after a partial
    # exit): OCO when both stop_loss and take_profit are given, else a plain stop or limit.
    protects_position: bool = False


class OrderStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    PENDING = "pending"  # any other broker-side working state


class Order(BaseModel):
    """An order as the broker knows it."""

    model_config = ConfigDict(frozen=True)

    broker_order_id: str
    client_order_id: str
    symbol: str
    side: Side
    qty: float
    order_type: OrderType
    status: OrderStatus
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    limit_price: float | None = None
    stop_price: float | None = None
    submitted_at: datetime | None = None
    filled_at: datetime | None = None
    legs: tuple[Order, ...] = ()
    parent_client_order_id: str | None = None  # set on a bracket/OTO/OCO leg


class Fill(BaseModel):
    model_config = ConfigDict(frozen=True)

    client_order_id: str
    symbol: str
    side: Side
    qty: float
    price: float
    time: datetime
    commission: float = 0.0


class Position(BaseModel):
    """An open position; `qty` is signed (negative for a short)."""

    model_config = ConfigDict(frozen=True)

    symbol: str
    qty: float
    avg_entry_price: float
    market_price: float | None = None
    unrealized_pl: float | None = None

    @property
    def notional_usd(self) -> float:
        return abs(self.qty) * (self.market_price or self.avg_entry_price)


class Account(BaseModel):
    model_config = ConfigDict(frozen=True)

    equity: float
    cash: float
    buying_power: float
    pattern_day_trader: bool = False
    daytrade_count: int = 0
    last_equity: float | None = None  # the broker's equity at the previous session's close

    @property
    def day_pl(self) -> float | None:
        """Today's P/L as the broker sees it (fills we never saw included), when it says."""
        return None if self.last_equity is None else self.equity - self.last_equity


class ExitReason(StrEnum):
    """Why a position (or part of it) was closed."""

    SIGNAL = "signal"  # an alert closed it
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    OUTSIDE = "outside"  # an order flowtrader did not place (manual, another app)


class ClosedTrade(BaseModel):
    """A closing fill and what it realized, against the position's average entry (USD).

    `side` is the side of the position that was closed; `qty` the shares closed by this
    fill (a partial exit is a trade of its own). `key` identifies the fill, so it is booked
    once whoever sees it first (the worker or `sync_portfolio`).
    """

    model_config = ConfigDict(frozen=True)

    key: str
    symbol: str
    side: MarketPosition
    qty: float
    entry_price: float
    exit_price: float
    pnl_usd: float
    exit_reason: ExitReason
    exit_time: datetime
    client_order_id: str = ""
    alert_id: str | None = None

    @property
    def pnl_pct(self) -> float:
        """P/L as a percent of the entry notional (2.0 = 2 %)."""
        basis = self.entry_price * self.qty
        return 100.0 * self.pnl_usd / basis if basis else 0.0


# --- the decision's whole view (issue 11): built once by services/context.py ------------


NO_DATA = "no data"  # a context gap: the source answered, and had nothing (not a failure)


class DecisionContext(BaseModel):
    """Everything the pure rules see for one alert, gathered once with a deadline.

    A slot a source could not fill in time is None and `gaps` says why (journaled); the
    decision goes on without it. Live and the backtest build the same type.
    """

    model_config = ConfigDict(frozen=True)

    now: datetime
    account: Account
    positions: tuple[Position, ...] = ()
    working_orders: tuple[Order, ...] = ()
    market: MarketSnapshot | None = None
    day: DayClassification | None = None
    flow: FlowSummary | None = None
    score: Score | None = None
    gaps: dict[str, str] = Field(default_factory=dict)  # slot → why it is empty
    timings_ms: dict[str, float] = Field(default_factory=dict)  # source → how long it took

    @property
    def atr(self) -> float | None:
        return self.market.atr if self.market else None

    @property
    def day_type(self) -> DayType | None:
        return self.day.day_type if self.day else None
