"""Summary statistics and the daily P/L table, from a `BacktestResult`.

Definitions (all money in USD):
- win rate: share of closed trades with net P/L > 0.
- profit factor: sum of winning net P/L / |sum of losing net P/L| (null with no losers).
- max drawdown: the largest fall of the per-bar equity curve (marked to each close) from
  its running peak, in USD and as a percent of that peak.
- sharpe: mean / standard deviation of daily equity returns (session to session), × √252.
- exposure: percent of bars that closed with a position open.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from backtest.engine import BacktestResult, stamps
from chalicelib.rules.report_rows import DAILY_COLUMNS


def daily_pnl(result: BacktestResult) -> pd.DataFrame:
    """One row per session in the data: trades closed that day and the day-end equity."""
    bars = result.bars
    days = bars.arrays.session_id
    last = np.flatnonzero(bars.session_last)
    dates = bars.time[last].strftime("%Y-%m-%d")
    trades = result.trades
    exit_day = days[trades["exit_bar"].to_numpy()] if len(trades) else np.array([], dtype=np.int64)
    session_days = days[last]
    pos = np.searchsorted(session_days, exit_day)
    n_days = len(last)
    counts = np.bincount(pos, minlength=n_days)[:n_days]

    def total(column: str) -> np.ndarray:
        weights = trades[column].to_numpy() if len(trades) else np.array([])
        return np.bincount(pos, weights=weights, minlength=n_days)[:n_days]

    net = total("net_pnl")
    frame = pd.DataFrame(
        {
            "date": dates,
            "trades": counts,
            "gross_pnl": total("gross_pnl"),
            "commission": total("commission"),
            "net_pnl": net,
            "cum_net_pnl": np.cumsum(net),
            "equity": result.equity[last],
        }
    )
    return frame[list(DAILY_COLUMNS)]  # daily_pnl.csv, shared with the live report


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def drawdown(equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(drawdown in USD ≥ 0, drawdown as a fraction of the running peak) per bar."""
    peak = np.maximum.accumulate(equity)
    dd = peak - equity
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(peak > 0, dd / peak, 0.0)
    return dd, frac


def summary(result: BacktestResult, daily: pd.DataFrame | None = None) -> dict[str, Any]:
    trades = result.trades
    net = trades["net_pnl"].to_numpy()
    wins = net[net > 0]
    losses = net[net <= 0]
    n = int(net.size)
    daily = daily if daily is not None else daily_pnl(result)
    eq_days = np.concatenate([[result.start_equity], daily["equity"].to_numpy()])
    with np.errstate(invalid="ignore", divide="ignore"):
        rets = np.diff(eq_days) / eq_days[:-1]
    rets = rets[np.isfinite(rets)]
    sd = float(rets.std(ddof=1)) if rets.size > 1 else 0.0
    sharpe = float(rets.mean() / sd * math.sqrt(252)) if sd > 0 else 0.0
    dd, frac = drawdown(result.equity) if result.equity.size else (np.zeros(1), np.zeros(1))
    loss_sum = float(-losses.sum())
    bars = result.bars
    return {
        "symbol": result.symbol,
        "bars": len(bars),
        "start": str(stamps(bars, np.array([0]))[0]) if len(bars) else None,
        "end": str(stamps(bars, np.array([len(bars) - 1]))[0]) if len(bars) else None,
        "n_trades": n,
        "n_long": int((trades["side"] == "long").sum()),
        "n_short": int((trades["side"] == "short").sum()),
        "win_rate": float(wins.size / n) if n else 0.0,
        "total_net_pnl": float(net.sum()),
        "avg_net_pnl_per_trade": float(net.mean()) if n else 0.0,
        "avg_win": float(wins.mean()) if wins.size else 0.0,
        "avg_loss": float(losses.mean()) if losses.size else 0.0,
        "profit_factor": _finite(float(wins.sum()) / loss_sum) if loss_sum > 0 else None,
        "max_drawdown_usd": float(dd.max()),
        "max_drawdown_pct": float(frac.max() * 100.0),
        "sharpe": sharpe,
        "exposure_pct": float(np.count_nonzero(result.position) / max(len(bars), 1) * 100.0),
        "start_equity": result.start_equity,
        "final_equity": result.final_equity,
        "commissions_total": float(trades["commission"].sum()),
        "slippage_total": float(trades["slippage_cost"].sum()),
        "open_position_at_end": result.open_position_at_end,
        "entries_proposed": result.entries_proposed,
        "entries_denied": dict(sorted(result.denials.items())),
    }
