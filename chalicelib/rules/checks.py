"""The gate's checks: small objects with one signature, `(proposal, state, now) -> Verdict`.

Each check is a frozen dataclass holding its limit; calling it reads the `Proposal` (the
order intent plus the account and positions it would join), the `RiskState` and `now`, and
returns an allowing or a denying `Verdict` with a reason a trader understands. Checks never
write; the one write — claiming a cooldown slot — is `Cooldown.reserve`, which the gate
calls only after every check allowed the order.

Orders that only close a position (`intent.closes_position`) reduce risk: apart from the
kill switch and market hours, checks let them through, so a limit never traps a position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar, Protocol

from chalicelib.domain import (
    NO_DATA,
    Account,
    DayType,
    DecisionContext,
    OrderIntent,
    Position,
    Side,
    Verdict,
)
from chalicelib.rules import market_calendar
from chalicelib.rules.risk_state import RiskState

PDT_MIN_EQUITY_USD = 25_000.0


@dataclass(frozen=True)
class Proposal:
    """One order the gate is asked about, with the account and positions it would join.

    `positions` are the positions as they will be just before this order: for the opening
    half of a reverse, without the position the closing half flattens.
    """

    intent: OrderIntent
    account: Account
    positions: tuple[Position, ...] = ()
    # What the decision saw (market, day type, flow, score); None where not gathered, e.g. a
    # backtest without a market snapshot. Checks that need a slot allow when it is empty.
    context: DecisionContext | None = None

    @property
    def symbol(self) -> str:
        return self.intent.symbol

    @property
    def opens(self) -> bool:
        """True when the order opens or adds exposure (everything but a pure close)."""
        return not self.intent.closes_position

    @property
    def price(self) -> float | None:
        i = self.intent
        return i.limit_price or i.stop_price or i.reference_price

    @property
    def notional_usd(self) -> float:
        """The order's size in USD at its limit/stop or decision price (0 if none is known)."""
        return self.intent.qty * (self.price or 0.0)

    def position(self) -> Position | None:
        return next((p for p in self.positions if p.symbol == self.symbol and p.qty), None)

    @property
    def adds_to_position(self) -> bool:
        held = self.position()
        if held is None:
            return False
        return (held.qty > 0) == (self.intent.side is Side.BUY)


class Check(Protocol):
    """A risk or cooldown rule. `name` is recorded with every verdict."""

    name: ClassVar[str]

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict: ...


class ReservingCheck(Check, Protocol):
    """A check that holds capacity: the gate reserves it after all checks allow the order."""

    def reserve(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict: ...

    def release(self, proposal: Proposal, state: RiskState) -> None: ...


@dataclass(frozen=True)
class KillSwitch:
    """Stops every order, closes included: the switch means "place nothing"."""

    name: ClassVar[str] = "kill_switch"
    engaged_by_setting: bool = False

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        if self.engaged_by_setting:
            return Verdict.deny(
                "kill switch is on (FLOWTRADER_KILL_SWITCH): no orders are placed",
                check=self.name,
            )
        reason = state.kill_switch()
        if reason is not None:
            return Verdict.deny(
                f"kill switch is on: {reason or 'engaged'}; no orders are placed",
                check=self.name,
            )
        return Verdict.allow(self.name)


@dataclass(frozen=True)
class MarketHours:
    """Orders only inside the NYSE regular session (holidays and early closes included)."""

    name: ClassVar[str] = "market_hours"
    enabled: bool = True

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        if not self.enabled or market_calendar.is_market_open(now):
            return Verdict.allow(self.name)
        reopens = market_calendar.next_open(now)
        return Verdict.deny(
            f"market is closed (NYSE regular session only); next open {reopens.isoformat()}",
            check=self.name,
            until=reopens,
        )


@dataclass(frozen=True)
class NoTradeDay:
    """No new positions on a day classified `no_trade`.

    Reads the day type the decision's context carries (`proposal.context.day`, when it is
    today's, or its word that the day is not classified), else the stored one. Every
    verdict names the day type, so the journal shows what kind of day each entry was
    judged on.
    """

    name: ClassVar[str] = "no_trade_day"

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        day = market_calendar.trading_date(now)
        context_day = proposal.context.day if proposal.context is not None else None
        if context_day is not None and context_day.day == day:
            day_type: DayType | None = context_day.day_type
            seen = (
                f"day type {context_day.day_type.value} "
                f"({context_day.confidence:.2f}, from the context)"
            )
        elif proposal.context is not None and proposal.context.gaps.get("day") == NO_DATA:
            day_type, seen = None, "day not classified (from the context)"
        else:  # no context, or its day source failed: read the stored one
            day_type = state.day_type(day)
            seen = f"day type {day_type.value} (stored)" if day_type else "day not classified"
        if proposal.opens and day_type is DayType.NO_TRADE:
            return Verdict.deny(
                f"{day.isoformat()} is classified a no-trade day: no new positions ({seen})",
                check=self.name,
            )
        return Verdict(allowed=True, reason=seen, check=self.name)


@dataclass(frozen=True)
class VolumeConfirmation:
    """Entries need the breakout bar's volume to confirm (rules/volume.py's verdict in the
    context's market snapshot), when `enabled`. No snapshot or no verdict: allowed, and
    the verdict says the volume was not checked."""

    name: ClassVar[str] = "volume_confirmation"
    enabled: bool = False

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        market = proposal.context.market if proposal.context is not None else None
        verdict = market.volume_confirmation if market is not None else None
        if verdict is None:
            return Verdict(
                allowed=True, reason="volume not checked: no market data", check=self.name
            )
        if not self.enabled or not proposal.opens:
            return Verdict(allowed=True, reason=verdict.reason, check=self.name)
        return verdict.model_copy(update={"check": self.name})


@dataclass(frozen=True)
class Cooldown:
    """At most `max_trades` opening orders per rolling `window`, per account (and per symbol
    when `per_symbol` > 0). Reading here; `reserve` claims the slot atomically."""

    name: ClassVar[str] = "cooldown"
    max_trades: int = 3
    per_symbol: int = 0
    window: timedelta = field(default=timedelta(minutes=60))

    def _minutes(self) -> int:
        return int(self.window.total_seconds() // 60)

    def _deny(self, times: list[datetime], limit: int, scope: str) -> Verdict:
        until = times[0] + self.window if times else None
        return Verdict.deny(
            f"cooldown: {len(times)} trades {scope} in the last {self._minutes()} min "
            f"(limit {limit})",
            check=self.name,
            until=until,
        )

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        if not proposal.opens:
            return Verdict.allow(self.name)
        own = proposal.intent.alert_id
        if self.max_trades > 0:
            times = state.trade_times(now, self.window, exclude_claim=own)
            if len(times) >= self.max_trades:
                return self._deny(times, self.max_trades, "on the account")
        if self.per_symbol > 0:
            times = state.trade_times(now, self.window, symbol=proposal.symbol, exclude_claim=own)
            if len(times) >= self.per_symbol:
                return self._deny(times, self.per_symbol, f"in {proposal.symbol}")
        return Verdict.allow(self.name)

    def reserve(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        """Claim the slot(s); a lost race with a concurrent order is a cooldown denial."""
        if not proposal.opens:
            return Verdict.allow(self.name)
        own = proposal.intent.alert_id
        if self.max_trades > 0 and not state.claim_trade_slot(
            own, now, window=self.window, limit=self.max_trades
        ):
            times = state.trade_times(now, self.window, exclude_claim=own)
            return self._deny(times, self.max_trades, "on the account")
        if self.per_symbol > 0 and not state.claim_trade_slot(
            own, now, window=self.window, limit=self.per_symbol, symbol=proposal.symbol
        ):
            if self.max_trades > 0:
                state.release_trade_slot(own)
            times = state.trade_times(now, self.window, symbol=proposal.symbol, exclude_claim=own)
            return self._deny(times, self.per_symbol, f"in {proposal.symbol}")
        return Verdict.allow(self.name)

    def release(self, proposal: Proposal, state: RiskState) -> None:
        if not proposal.opens:
            return
        if self.max_trades > 0:
            state.release_trade_slot(proposal.intent.alert_id)
        if self.per_symbol > 0:
            state.release_trade_slot(proposal.intent.alert_id, symbol=proposal.symbol)


@dataclass(frozen=True)
class DailyLossLimit:
    """No new positions once today's P/L reaches −`max_loss_usd`.

    Today's P/L is the worse of two readings: realized P/L booked by the pipeline plus the
    open positions' unrealized P/L, and the broker's own day P/L (equity − last equity), which
    also counts exits that filled at the broker while nobody was looking (bracket stops).
    """

    name: ClassVar[str] = "daily_loss_limit"
    max_loss_usd: float = 0.0

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        if not proposal.opens or self.max_loss_usd <= 0:
            return Verdict.allow(self.name)
        day = market_calendar.trading_date(now)
        realized = state.realized_pl(day)
        unrealized = sum(p.unrealized_pl or 0.0 for p in proposal.positions)
        pl = realized + unrealized
        broker_day_pl = proposal.account.day_pl
        if broker_day_pl is not None:
            pl = min(pl, broker_day_pl)
        if pl <= -self.max_loss_usd:
            return Verdict.deny(
                f"daily loss limit: today's P/L is {pl:,.2f} USD (limit −{self.max_loss_usd:,.2f});"
                " no new positions until the next trading day",
                check=self.name,
                until=market_calendar.open_after(day),
            )
        return Verdict.allow(self.name)


@dataclass(frozen=True)
class MaxOpenPositions:
    """At most `max_positions` symbols held at once; adding to a held symbol is not a new one."""

    name: ClassVar[str] = "max_open_positions"
    max_positions: int = 0

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        if not proposal.opens or self.max_positions <= 0 or proposal.adds_to_position:
            return Verdict.allow(self.name)
        held = {p.symbol for p in proposal.positions if p.qty and p.symbol != proposal.symbol}
        if len(held) >= self.max_positions:
            return Verdict.deny(
                f"max open positions: {len(held)} held (limit {self.max_positions})",
                check=self.name,
            )
        return Verdict.allow(self.name)


@dataclass(frozen=True)
class MaxPositionNotional:
    """One symbol's position may not exceed `max_notional_usd` after this order."""

    name: ClassVar[str] = "max_position_notional"
    max_notional_usd: float = 0.0

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        if not proposal.opens or self.max_notional_usd <= 0:
            return Verdict.allow(self.name)
        held = proposal.position()
        existing = held.notional_usd if held is not None and proposal.adds_to_position else 0.0
        total = existing + proposal.notional_usd
        if total > self.max_notional_usd + 1e-6:
            return Verdict.deny(
                f"max position notional: {proposal.symbol} would be {total:,.2f} USD "
                f"(limit {self.max_notional_usd:,.2f})",
                check=self.name,
            )
        return Verdict.allow(self.name)


@dataclass(frozen=True)
class MaxGrossExposure:
    """The sum of all positions' notional (long + |short|) may not exceed `max_exposure_usd`."""

    name: ClassVar[str] = "max_gross_exposure"
    max_exposure_usd: float = 0.0

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        if not proposal.opens or self.max_exposure_usd <= 0:
            return Verdict.allow(self.name)
        total = sum(p.notional_usd for p in proposal.positions) + proposal.notional_usd
        if total > self.max_exposure_usd + 1e-6:
            return Verdict.deny(
                f"max gross exposure: would be {total:,.2f} USD "
                f"(limit {self.max_exposure_usd:,.2f})",
                check=self.name,
            )
        return Verdict.allow(self.name)


@dataclass(frozen=True)
class PatternDayTrader:
    """Under $25k equity, no new position once 3 day trades are used in 5 business days
    (FINRA 4210): the 4th would flag the account and the broker would refuse it anyway."""

    name: ClassVar[str] = "pattern_day_trader"
    enabled: bool = True
    max_day_trades: int = 3

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        account = proposal.account
        if not self.enabled or not proposal.opens or account.equity >= PDT_MIN_EQUITY_USD:
            return Verdict.allow(self.name)
        if account.pattern_day_trader or account.daytrade_count >= self.max_day_trades:
            return Verdict.deny(
                f"pattern day trader guard: equity {account.equity:,.2f} USD is under 25,000 "
                f"and {account.daytrade_count} day trades were made in 5 business days",
                check=self.name,
            )
        return Verdict.allow(self.name)


@dataclass(frozen=True)
class FlowAgreement:
    """With `required` (FLOWTRADER_REQUIRE_FLOW_AGREEMENT), no entry against the options
    flow: a buy while flow is bearish, a sell/short while it is bullish (rules/flow.py),
    judged on the order's own side (the opening half of a reverse included).
    Missing or neutral flow allows: a vendor that is down never stops trading."""

    name: ClassVar[str] = "flow_agreement"
    required: bool = False

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        if not self.required or not proposal.opens or proposal.context is None:
            return Verdict.allow(self.name)
        flow = proposal.context.flow
        buying = proposal.intent.side is Side.BUY
        against = "bearish" if buying else "bullish"
        if flow is None or flow.direction != against:
            return Verdict.allow(self.name)
        entry = "long" if buying else "short"
        return Verdict.deny(
            f"options flow disagrees: {flow.direction} in {flow.symbol} over the last "
            f"{flow.window_minutes} min (bullish {flow.bullish_premium:,.0f} vs bearish "
            f"{flow.bearish_premium:,.0f} USD premium) against a {entry} entry",
            check=self.name,
        )


# --- score (issue 12) ----------------------------------------------------------------------


@dataclass(frozen=True)
class MinScore:
    """No new positions when the setup's score (`proposal.context.score`, GPT or the
    deterministic fallback) is below `min_score`, or below `choppy_min_score` on a day the
    context classifies choppy (each 0: off). A close, or a decision with no score, is
    allowed: a missing scorer must never trap a position or stop trading."""

    name: ClassVar[str] = "min_score"
    min_score: float = 0.0
    choppy_min_score: float = 0.0

    def __call__(self, proposal: Proposal, state: RiskState, now: datetime) -> Verdict:
        context = proposal.context
        score = context.score if context is not None else None
        if not proposal.opens or score is None or context is None:
            return Verdict.allow(self.name)
        floor, why = self.min_score, "the minimum"
        if context.day_type is DayType.CHOPPY and self.choppy_min_score > floor:
            floor, why = self.choppy_min_score, "the choppy-day minimum"
        if floor > 0 and score.value < floor:
            who = score.source
            if score.fallback_reason is not None:
                who = f"{score.source}, {score.fallback_reason}"
            return Verdict.deny(
                f"score {score.value:g} ({who}) is below {why} {floor:g}", check=self.name
            )
        return Verdict.allow(self.name)
