"""The backtest engine: signals → the compiled trade simulator, with the live sizing and gate.

`run_backtest(bars, config)` computes the strategy's signals over the whole series (the
built-in strategies in `chalicelib.rules.strategies`, or replayed alerts), then drives
`backtest.kernel.simulate`. Each time the simulator wants to open a position it hands the
proposal back here, and the *live* code decides: `chalicelib.rules.sizing.position_size`
(or `chalicelib.rules.orders.decide_orders` for replayed alerts) sizes it and
`chalicelib.rules.gate.Gate.admit` runs every risk and cooldown check against an
`InMemoryRiskState`. Denied entries are counted by the check that denied them.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from backtest import kernel as k
from backtest.config import Config
from backtest.costs import commission_params, slippage_params
from backtest.data import Bars
from backtest.daytype import DayTypeFilter
from chalicelib.domain import (
    Account,
    DayType,
    DecisionContext,
    MarketPosition,
    OrderIntent,
    Position,
    Side,
)
from chalicelib.rules import market_calendar, report_rows
from chalicelib.rules.checks import (
    Check,
    Cooldown,
    DailyLossLimit,
    KillSwitch,
    MarketHours,
    MaxGrossExposure,
    MaxOpenPositions,
    MaxPositionNotional,
    NoTradeDay,
    PatternDayTrader,
    VolumeConfirmation,
)
from chalicelib.rules.gate import Gate, Proposal, RiskLimits, default_checks
from chalicelib.rules.indicators import atr
from chalicelib.rules.orders import decide_orders
from chalicelib.rules.prices import round_to_tick
from chalicelib.rules.risk_state import InMemoryRiskState
from chalicelib.rules.sizing import SizingError, position_size
from chalicelib.rules.strategies import compute_signals
from chalicelib.services.classify_day import parse_new_york_time

LONG, SHORT = MarketPosition.LONG, MarketPosition.SHORT

CHUNK_BARS = 250_000


@dataclass
class BacktestResult:
    """Everything the reports need. `trades` columns are trades.csv's (times local)."""

    symbol: str
    bars: Bars
    trades: pd.DataFrame
    equity: np.ndarray  # per bar, marked to the close (after an end_of_data exit)
    position: np.ndarray  # per bar: +1 long, −1 short, 0 flat at the close
    start_equity: float
    final_equity: float
    open_position_at_end: dict[str, Any] | None
    denials: Counter = field(default_factory=Counter)
    entries_proposed: int = 0


def enabled_checks(limits: RiskLimits, *, day_gate: bool = False) -> tuple[Check, ...]:
    """The live gate's default checks for `limits` (`[risk]`), minus those switched off.

    A check whose limit is 0 always allows, so leaving it out changes no decision and saves
    a call per entry. The no-trade-day check runs only with `[daytype] gate = true` (the
    day types come from backtest/daytype.py), the volume check with `volume_confirm`.
    """
    on = {
        KillSwitch: limits.kill_switch,
        MarketHours: limits.market_hours_only,
        NoTradeDay: day_gate,
        VolumeConfirmation: limits.require_volume_confirmation,
        DailyLossLimit: limits.max_daily_loss_usd > 0,
        MaxOpenPositions: limits.max_open_positions > 0,
        MaxPositionNotional: limits.max_position_notional_usd > 0,
        MaxGrossExposure: limits.max_gross_exposure_usd > 0,
        PatternDayTrader: limits.pdt_guard,
        Cooldown: limits.max_trades_per_hour > 0 or limits.cooldown_per_symbol > 0,
    }
    return tuple(check for check in default_checks(limits) if on.get(type(check), True))


class EntryDecider:
    """Sizes and gates one proposed entry with the live rules; returns shares (0 = no trade).

    Built-in strategies: `position_size` with the config's `OrderRules` (`[sizing]`), then
    the gate. Replayed alerts: `decide_orders` with the same `OrderRules` (sizing, the
    alert's or default stops/targets, tick rounding), then the gate. Both are the live
    path's types (`config.order_rules()`, `config.risk_limits()`). The gate's state is an
    `InMemoryRiskState` that lives for the whole run.
    """

    def __init__(self, config: Config, bars: Bars, alerts: dict[int, Any] | None = None) -> None:
        self.order_rules = config.order_rules()
        limits = config.risk_limits()
        self.leverage = config.account.leverage
        self.gate = Gate(enabled_checks(limits, day_gate=config.daytype.gate))
        day = config.daytype
        self.day_gate = day.gate
        self.volume_confirm = day.volume_confirm
        self.day_filter: DayTypeFilter | None = None
        if day.gate or day.volume_confirm:
            self.day_filter = DayTypeFilter(
                bars, parse_new_york_time(day.at), volume_k=day.volume_k
            )
        self.books_pl = limits.max_daily_loss_usd > 0
        self.state = InMemoryRiskState()
        self.symbol = bars.symbol
        self.time_ns = bars.time_ns_utc
        self.close_fill = config.fill.entry == "close"
        spacing = np.diff(self.time_ns[: min(len(self.time_ns), 1000)])
        self.bar_ns = int(np.median(spacing)) if spacing.size else 0
        self.alerts = alerts or {}
        self.denials: Counter = Counter()
        self.proposed = 0
        self._last_entry: tuple[str, float] = ("", 0.0)  # symbol, signed qty last opened
        self.booked = 0
        rules = self.order_rules
        self.cap = rules.max_position_notional_usd or None
        # position_size's risk_pct is a fraction of equity, as orders._size passes it
        self._size_args = {
            "qty": rules.default_qty,
            "notional_usd": rules.default_notional_usd or None,
            "risk_pct": rules.risk_per_trade_pct / 100 or None,
            "max_position_notional_usd": self.cap,
        }
        self.round_levels = config.exits.round_to_tick
        self.kernel_params = kernel_params(config)
        self._intents = {
            flag: OrderIntent(
                client_order_id="bt-0",
                alert_id="bt-0",
                symbol=self.symbol,
                side=Side.BUY if flag else Side.SELL,
                qty=1.0,
            )
            for flag in (True, False)
        }
        self._account = Account(equity=1.0, cash=1.0, buying_power=1.0)

    def _moment(self, bar: int) -> datetime:
        ns = int(self.time_ns[bar])
        if self.close_fill:
            ns += max(self.bar_ns - 1_000_000_000, 0)
        return datetime.fromtimestamp(ns / 1e9, UTC)

    def book_closed(self, trades: np.ndarray, n_trades: int) -> None:
        """Book realized P/L of trades closed since the last call (daily loss limit)."""
        if not self.books_pl:
            self.booked = n_trades
            return
        for row in range(self.booked, n_trades):
            t = trades[row]
            net = t[k.T_GROSS] - t[k.T_COMMISSION] - t[k.T_SLIPPAGE]
            day = market_calendar.trading_date(self._moment(int(t[k.T_EXIT_BAR])))
            self.state.add_realized_pl(day, float(net), key=f"trade-{row}")
        self.booked = n_trades

    def size(self, price: float, stop: float, equity: float) -> int:
        try:
            return position_size(
                self.order_rules.sizing_mode,
                entry_price=price,
                equity=equity,
                stop_price=None if np.isnan(stop) else stop,
                buying_power=equity * self.leverage,
                **self._size_args,
            )
        except SizingError:
            return 0

    def _round_levels(
        self, side: int, bar: int, signal_bar: int, price: float, qty: int, px: np.ndarray
    ) -> None:
        """Put this entry's stop and target on valid ticks, away from the market (live rule)."""
        fp, ip = self.kernel_params
        if ip[k.P_STOP_REF] == 0:
            ref = float(px[k.CLOSE, signal_bar])
        else:
            ref = k.slipped_price(
                ip[k.P_SLIP_MODEL], fp[k.F_S1], price, qty, px[k.VOLUME, bar], side
            )
        stop, target, _trail = k._levels(px, fp, side, signal_bar, ref)
        px[k.SIG_STOP, signal_bar], px[k.SIG_TARGET, signal_bar] = round_levels(side, stop, target)

    def _reversed_from(self, alert: Any, price: float) -> tuple[Position, ...]:
        """The position a strategy alert's flip reverses, as the live path would hold it.

        The kernel reverses whatever it holds and asks only for the new side's size; for a
        flip (`prev_market_position` opposite), TradingView's `{{strategy.order.contracts}}`
        is old side + new side, so the decision must see the old side: the strategy's
        `prev_market_position_size` when sent, else the size this replay last opened.
        """
        wanted, before = alert.market_position, alert.prev_market_position
        if wanted is None or before is None or {wanted, before} != {LONG, SHORT}:
            return ()
        sign = 1.0 if before is LONG else -1.0
        size = alert.prev_market_position_size
        if size is None:
            symbol, last = self._last_entry
            size = abs(last) if symbol == alert.symbol and last * sign > 0 else 0.0
        if not size:
            return ()
        return (Position(symbol=alert.symbol, qty=sign * size, avg_entry_price=price),)

    def _from_alert(
        self,
        alert: Any,
        signal_bar: int,
        equity: float,
        px: np.ndarray,
        day_type: DayType | None = None,
    ) -> OrderIntent | None:
        """The live decision for a replayed alert's entry; its stops go into `px`."""
        claim = f"bt-{self.proposed}"
        if alert.price is None:
            alert = alert.model_copy(update={"price": float(px[k.CLOSE, signal_bar])})
        account = Account(equity=equity, cash=equity, buying_power=equity * self.leverage)
        atr_value = px[k.ATR, signal_bar]
        decision = decide_orders(
            alert,
            claim,
            account=account,
            positions=self._reversed_from(alert, float(px[k.CLOSE, signal_bar])),
            rules=self.order_rules,
            atr=None if np.isnan(atr_value) else float(atr_value),
            day_type=day_type,
        )
        intent = decision.open_intent
        if intent is None:
            return None
        self._last_entry = (alert.symbol, intent.qty if intent.side is Side.BUY else -intent.qty)
        stop = intent.stop_loss if intent.stop_loss is not None else np.nan
        target = intent.take_profit if intent.take_profit is not None else np.nan
        px[k.SIG_STOP, signal_bar] = stop
        px[k.SIG_TARGET, signal_bar] = target
        return intent

    def __call__(
        self,
        side: int,
        bar: int,
        signal_bar: int,
        price: float,
        stop: float,
        equity: float,
        px: np.ndarray | None = None,
    ) -> int:
        self.proposed += 1
        day, market = None, None
        if self.day_filter is not None:
            moment = self._moment(bar)
            day = self.day_filter.day(signal_bar, moment) if self.day_gate else None
            market = self.day_filter.market(signal_bar, moment) if self.volume_confirm else None
        day_type = day.day_type if day is not None else None
        alert = self.alerts.get(signal_bar)
        if alert is not None and px is not None:
            intent = self._from_alert(alert, signal_bar, equity, px, day_type)
            if intent is None:
                self.denials["decision"] += 1
                return 0
            qty = int(intent.qty)
        else:
            qty = self.size(price, stop, equity)
            if qty > 0 and day_type is DayType.CHOPPY:  # as decide_orders scales live
                qty = math.floor(qty * self.order_rules.choppy_size_scale + 1e-9)
            if qty <= 0:
                self.denials["size_zero"] += 1
                return 0
            if self.round_levels and px is not None:
                self._round_levels(side, bar, signal_bar, price, qty, px)
            if not self.gate.checks:
                return qty
            claim = f"bt-{self.proposed}"
            # model_copy: the values are built right here; validating them again costs time
            intent = self._intents[side > 0].model_copy(
                update={
                    "client_order_id": claim,
                    "alert_id": claim,
                    "qty": float(qty),
                    "reference_price": price,
                }
            )
        if not self.gate.checks:
            return qty
        account = self._account.model_copy(
            update={"equity": equity, "cash": equity, "buying_power": equity * self.leverage}
        )
        now = self._moment(bar)
        context = None
        if day is not None or market is not None:
            context = DecisionContext(now=now, account=account, day=day, market=market)
        result = self.gate.admit(Proposal(intent, account, (), context=context), self.state, now)
        if not result.allowed:
            for verdict in result.denials:
                self.denials[verdict.check or "gate"] += 1
            return 0
        return qty


def round_levels(side: int, stop: float, target: float) -> tuple[float, float]:
    """Stop and target on valid ticks, away from the market (the live `_protective` rule:
    a long's stop down and target up, a short's the reverse); NaN or <= 0 stays as is."""
    if stop > 0:
        stop = round_to_tick(stop, "down" if side > 0 else "up")
    if target > 0:
        target = round_to_tick(target, "up" if side > 0 else "down")
    return stop, target


def kernel_params(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's (float, int) parameter vectors for `config`.

    Stop and target come from the same `OrderRules` the live decision uses; their percents
    are handed to the kernel divided by 100 (see `backtest.kernel`'s float parameters).
    """
    exits = config.exits
    rules = config.order_rules()
    comm_model, c1, c2, c3 = commission_params(config.costs.commission)
    slip_model, s1 = slippage_params(config.costs.slippage)
    ip = np.zeros(k.IP_SIZE, dtype=np.int64)
    ip[k.P_ENTRY_MODE] = k.ENTRY_CLOSE if config.fill.entry == "close" else k.ENTRY_NEXT_OPEN
    ip[k.P_STOP_REF] = 1 if exits.stop_ref == "fill" else 0
    ip[k.P_SESSION_EXIT] = int(exits.exit_at_session_close)
    ip[k.P_CLOSE_AT_END] = int(exits.close_at_end)
    ip[k.P_COMM_MODEL] = comm_model
    ip[k.P_SLIP_MODEL] = slip_model
    fp = np.zeros(k.FP_SIZE, dtype=np.float64)
    fp[k.F_SL_FRAC] = rules.default_stop_pct / 100
    fp[k.F_TP_FRAC] = rules.default_target_pct / 100
    fp[k.F_TRAIL_FRAC] = exits.trail_pct / 100
    fp[k.F_ATR_STOP] = rules.stop_atr_multiple
    fp[k.F_ATR_TARGET] = rules.target_atr_multiple
    fp[k.F_ATR_TRAIL] = exits.trail_atr_mult
    fp[k.F_C1], fp[k.F_C2], fp[k.F_C3] = c1, c2, c3
    fp[k.F_S1] = s1
    return fp, ip


def build_signals(config: Config, bars: Bars) -> tuple[np.ndarray, dict[int, Any], np.ndarray]:
    """(signal codes, alerts by signal bar, per-bar [stop, target] overrides)."""
    strategy = config.strategy
    n = len(bars)
    overrides = np.full((2, n), np.nan)
    if strategy.alerts:
        from backtest.alerts import alert_signals

        path = config.base_dir / strategy.alerts
        codes, by_bar = alert_signals(path, bars, config.data.tz)
        return codes, by_bar, overrides
    params = dict(strategy.params)
    params.setdefault("allow_short", strategy.allow_short)
    codes = compute_signals(strategy.name, bars.arrays, params)
    return np.ascontiguousarray(codes, dtype=np.int8), {}, overrides


def run_backtest(
    bars: Bars,
    config: Config,
    *,
    progress: bool | None = None,
    signals: np.ndarray | None = None,
) -> BacktestResult:
    """Simulate `config`'s strategy over `bars`. `signals` overrides the strategy (tests)."""
    n = len(bars)
    arrays = bars.arrays
    if signals is None:
        codes, alerts, overrides = build_signals(config, bars)
    else:
        codes, alerts, overrides = (
            np.ascontiguousarray(signals, dtype=np.int8),
            {},
            np.full((2, n), np.nan),
        )
    exits = config.exits
    px = np.empty((k.PX_ROWS, n), dtype=np.float64)
    px[k.OPEN], px[k.HIGH], px[k.LOW] = arrays.open, arrays.high, arrays.low
    px[k.CLOSE], px[k.VOLUME] = arrays.close, arrays.volume
    atr_used = exits.atr_stop_mult or exits.atr_target_mult or exits.trail_atr_mult
    if atr_used or alerts:
        px[k.ATR] = atr(arrays.high, arrays.low, arrays.close, exits.atr_period)
    else:
        px[k.ATR] = np.nan
    px[k.SIG_STOP], px[k.SIG_TARGET] = overrides[0], overrides[1]

    cash = float(config.account.cash)
    fp, ip = kernel_params(config)
    st = np.zeros(k.ST_SIZE, dtype=np.float64)
    st[k.X_CASH] = cash
    st[k.X_STOP] = st[k.X_TARGET] = st[k.X_TRAIL] = np.nan
    ist = np.zeros(k.IST_SIZE, dtype=np.int64)
    capacity = int(np.count_nonzero(codes)) + 1
    trades = np.zeros((capacity, k.T_COLS), dtype=np.float64)
    equity = np.empty(n, dtype=np.float64)
    held = np.zeros(n, dtype=np.int8)
    decider = EntryDecider(config, bars, alerts)
    last = np.ascontiguousarray(bars.session_last, dtype=np.bool_)

    if progress is None:
        setting = config.report.progress
        progress = setting == "on" or (setting == "auto" and sys.stderr.isatty() and n >= 200_000)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="bar", unit_scale=True, desc="backtest", file=sys.stderr)
    ist[k.I_CHUNK_END] = CHUNK_BARS if bar is not None else n + 1
    done = 0
    while True:
        event = k.simulate(px, codes, last, fp, ip, st, ist, trades, equity, held)
        if event == k.EV_DONE:
            break
        if event == k.EV_CHUNK:
            ist[k.I_CHUNK_END] += CHUNK_BARS
            if bar is not None:
                bar.update(int(ist[k.I_BAR]) - done)
                done = int(ist[k.I_BAR])
            continue
        decider.book_closed(trades, int(ist[k.I_N_TRADES]))
        st[k.X_DECISION_QTY] = decider(
            int(ist[k.I_EVENT_SIDE]),
            int(ist[k.I_BAR]),
            int(ist[k.I_EVENT_SIGNAL_BAR]),
            float(st[k.X_EVENT_PRICE]),
            float(st[k.X_EVENT_STOP]),
            float(st[k.X_EVENT_EQUITY]),
            px,
        )
    if bar is not None:
        bar.update(n - done)
        bar.close()

    n_trades = int(ist[k.I_N_TRADES])
    frame = trades_frame(bars, trades[:n_trades])
    open_at_end = None
    if n_trades and int(trades[n_trades - 1, k.T_REASON]) == k.R_END:
        t = trades[n_trades - 1]
        open_at_end = _position_record(bars, t, closed=True)
    elif int(ist[k.I_SIDE]) != 0:
        open_at_end = {
            "side": "long" if ist[k.I_SIDE] > 0 else "short",
            "qty": int(st[k.X_QTY]),
            "entry_time": _iso(bars, int(ist[k.I_ENTRY_BAR])),
            "entry_price": float(st[k.X_ENTRY_FILL]),
            "marked_at": float(arrays.close[-1]),
            "closed_at_end": False,
        }
    final = float(equity[-1]) if n else cash
    return BacktestResult(
        symbol=bars.symbol,
        bars=bars,
        trades=frame,
        equity=equity,
        position=held,
        start_equity=cash,
        final_equity=final,
        open_position_at_end=open_at_end,
        denials=decider.denials,
        entries_proposed=decider.proposed,
    )


def _iso(bars: Bars, bar: int) -> str:
    return str(stamps(bars, np.array([bar]))[0])


def _position_record(bars: Bars, t: np.ndarray, *, closed: bool) -> dict[str, Any]:
    return {
        "side": "long" if t[k.T_SIDE] > 0 else "short",
        "qty": int(t[k.T_QTY]),
        "entry_time": _iso(bars, int(t[k.T_ENTRY_BAR])),
        "entry_price": float(t[k.T_ENTRY_PRICE]),
        "marked_at": float(t[k.T_EXIT_PRICE]),
        "closed_at_end": closed,
    }


TRADE_COLUMNS = list(report_rows.TRADE_COLUMNS)  # trades.csv, shared with the live report


def stamps(bars: Bars, index: np.ndarray) -> np.ndarray:
    """ISO-8601 local times with their UTC offset (dates only for daily bars), vectorised."""
    if len(index) == 0:
        return np.array([], dtype=object)
    times = bars.time[index]
    local = times.tz_localize(None).asi8
    if bars.daily:
        return np.datetime_as_string(local.astype("datetime64[ns]"), unit="D")
    text = np.datetime_as_string(local.astype("datetime64[ns]"), unit="s")
    offset_min = (local - times.asi8) // 60_000_000_000
    sign = np.where(offset_min < 0, "-", "+")
    hours, minutes = np.divmod(np.abs(offset_min), 60)
    suffix = np.char.add(
        np.char.add(sign, np.char.zfill(hours.astype(str), 2)),
        np.char.add(":", np.char.zfill(minutes.astype(str), 2)),
    )
    return np.char.add(text, suffix).astype(object)


def trades_frame(bars: Bars, t: np.ndarray) -> pd.DataFrame:
    """The closed trades as trades.csv rows, plus entry_bar/exit_bar for tests and plots."""
    entry_bar = t[:, k.T_ENTRY_BAR].astype(np.int64)
    exit_bar = t[:, k.T_EXIT_BAR].astype(np.int64)
    qty = t[:, k.T_QTY]
    gross = t[:, k.T_GROSS]
    commission = t[:, k.T_COMMISSION]
    slippage = t[:, k.T_SLIPPAGE]
    net = gross - commission - slippage
    entry_price = t[:, k.T_ENTRY_PRICE]
    entry_time = stamps(bars, entry_bar)
    exit_time = stamps(bars, exit_bar)
    reasons = np.array([k.EXIT_REASONS.get(r, "?") for r in range(7)], dtype=object)
    frame = pd.DataFrame(
        {
            "symbol": bars.symbol,
            "side": np.where(t[:, k.T_SIDE] > 0, "long", "short"),
            "qty": qty.astype(np.int64),
            "entry_time": entry_time,
            "entry_price": entry_price,
            "exit_time": exit_time,
            "exit_price": t[:, k.T_EXIT_PRICE],
            "exit_reason": reasons[t[:, k.T_REASON].astype(np.int64)],
            "gross_pnl": gross,
            "commission": commission,
            "slippage_cost": slippage,
            "net_pnl": net,
            "return_pct": net / (qty * entry_price) * 100.0 if len(t) else net,
            "bars_held": exit_bar - entry_bar,
            "entry_bar": entry_bar,
            "exit_bar": exit_bar,
            "signal_bar": t[:, k.T_SIGNAL_BAR].astype(np.int64),
            "stop_price": t[:, k.T_STOP],
            "target_price": t[:, k.T_TARGET],
        }
    )
    return frame
