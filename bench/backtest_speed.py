"""Backtest speed: our engine vs backtesting.py on the same strategy and data, plus the CLI.

Builds a seeded 1,000,000-bar one-minute series (backtest.synthetic, seed 7) and prints:
- our engine's bars/s with the full feature set on: long and short `sma_cross`, stop-loss,
  take-profit, trailing stop, bps slippage, per-share commission and a cooldown (max 4
  entries per hour) through the live gate, sizing through the live sizing code;
- backtesting.py's bars/s on the same strategy (same signals, stops, targets, trailing stop
  updated on each close, cooldown, commission) on the first BT_BARS bars (it is too slow for
  the whole series in a benchmark), and the ratio;
- wall time (best of 3) and peak RSS of the whole CLI (`python -m backtest run`, load + run
  + reports) on that series as CSV and as Parquet, with the numba cache warm.

Usage: `.venv/bin/python bench/backtest_speed.py [--bars N] [--bt-bars N]`. Prints only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backtest.config import load_config  # noqa: E402
from backtest.data import load_bars  # noqa: E402
from backtest.engine import run_backtest  # noqa: E402
from backtest.synthetic import intraday_bars  # noqa: E402
from chalicelib.rules.indicators import sma  # noqa: E402

FAST, SLOW = 20, 100
QTY = 100
SL, TP, TRAIL = 0.4, 0.8, 0.3  # percents (0.4 = 0.4 %), as in the config
SL_F, TP_F, TRAIL_F = SL / 100, TP / 100, TRAIL / 100  # fractions, for backtesting.py
SLIP_BPS = 1.0
MAX_PER_HOUR = 4

CONFIG = f"""
units = "percent"
[account]
cash = 1000000
[strategy]
name = "sma_cross"
params = {{ fast = {FAST}, slow = {SLOW} }}
allow_short = true
[sizing]
mode = "fixed_qty"
qty = {QTY}
[exits]
stop_loss_pct = {SL}
take_profit_pct = {TP}
trail_pct = {TRAIL}
stop_ref = "signal_close"
[costs]
commission = {{ model = "per_share", rate = 0.005, min = 1.0, max = 0.01 }}
slippage = {{ model = "bps", bps = {SLIP_BPS} }}
[fill]
entry = "next_open"
[risk]
max_trades_per_hour = {MAX_PER_HOUR}
[report]
progress = "off"
"""


def bt_bars_per_second(frame, n: int, *, full: bool = True) -> tuple[float, int]:
    """backtesting.py on the first `n` bars of the same series and strategy.

    `full=False` drops the trailing stop and the cooldown (stops, targets, commission and
    spread stay): backtesting.py's speed on a plain crossover, for reference.
    """
    import backtesting.backtesting as bt_module
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    bt_module._tqdm = lambda seq, **_: seq  # no progress bar in the measurement

    data = frame.iloc[:n].copy()
    data.index = data.index.tz_localize(None)
    data = data.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]
    hour = np.timedelta64(60, "m")

    class SmaCrossFull(Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)
            self.entries: list[np.datetime64] = []

        def _enter(self, long: bool) -> None:
            now = self.data.index[-1]
            self.entries = [t for t in self.entries if now - t < hour]
            size = self.position.size
            for trade in self.trades:
                trade.sl = None
                trade.tp = None
            if full and len(self.entries) >= MAX_PER_HOUR:
                if size:
                    self.position.close()
                return
            self.entries.append(now)
            close = self.data.Close[-1]
            if long:
                self.buy(size=QTY + abs(size), sl=close * (1 - SL_F), tp=close * (1 + TP_F))
            else:
                self.sell(size=QTY + abs(size), sl=close * (1 + SL_F), tp=close * (1 - TP_F))

        def next(self):
            close = self.data.Close[-1]
            for trade in self.trades if full else ():  # trailing stop, ratcheted on closes
                if trade.is_long:
                    trade.sl = max(trade.sl or 0, close * (1 - TRAIL_F))
                else:
                    trade.sl = min(trade.sl or np.inf, close * (1 + TRAIL_F))
            size = self.position.size
            if crossover(self.fast, self.slow) and size <= 0:
                self._enter(True)
            elif crossover(self.slow, self.fast) and size >= 0:
                self._enter(False)

    commission = lambda size, price: max(1.0, abs(size) * 0.005)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(
            data, SmaCrossFull, cash=1_000_000, commission=commission, spread=SLIP_BPS * 1e-4
        )
        start = time.perf_counter()
        stats = bt.run()
        elapsed = time.perf_counter() - start
    return n / elapsed, int(stats["# Trades"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--bt-bars", type=int, default=100_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        frame = intraday_bars(args.bars, seed=7).set_index("timestamp")
        csv = tmpdir / "bars_1m.csv"
        frame.drop(columns="regime").to_csv(csv)
        config_path = tmpdir / "bench.toml"
        config_path.write_text(CONFIG)
        size_mb = csv.stat().st_size / 1e6
        print(f"series: {args.bars:,} one-minute bars, seed 7 ({size_mb:.0f} MB CSV)")

        config = load_config(config_path)
        bars = load_bars(csv, symbol="SYN")
        run_backtest(bars, config, progress=False)  # warm: numba cache load / compile
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            result = run_backtest(bars, config, progress=False)
            runs.append(time.perf_counter() - start)
        ours = args.bars / min(runs)
        denied = dict(result.denials)
        print(
            f"ours:           {ours / 1e6:8.2f} M bars/s  ({min(runs) * 1e3:.0f} ms best of 3; "
            f"{len(result.trades):,} trades, {result.entries_proposed:,} entries proposed, "
            f"denied {denied})"
        )
        bt_n = min(args.bt_bars, args.bars)
        theirs, bt_trades = bt_bars_per_second(frame, bt_n)
        print(
            f"backtesting.py: {theirs / 1e6:8.3f} M bars/s  (on the first {bt_n:,} bars; "
            f"{bt_trades:,} trades)"
        )
        print(f"ratio:          {ours / theirs:8.1f}x")
        plain, _ = bt_bars_per_second(frame, bt_n, full=False)
        print(
            f"  (backtesting.py without the trailing stop and cooldown: {plain / 1e6:.3f} M bars/s;"
            f" ours with everything on is {ours / plain:.1f}x that)"
        )

        parquet = tmpdir / "bars_1m.parquet"
        frame.drop(columns="regime").to_parquet(parquet)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        for data in (csv, parquet):
            wall, peak_mb = cli_run(data, config_path, tmpdir / "out", env)
            label = f"CLI ({data.suffix[1:]}):"
            print(
                f"{label:<16}{wall:8.2f} s wall, peak RSS {peak_mb:.0f} MB "
                "(load + signals + simulation + all four reports; best of 3)"
            )


def cli_run(data: Path, config: Path, out: Path, env: dict) -> tuple[float, float]:
    """Wall time and peak RSS of one `python -m backtest run`, after a warm-up run."""
    cmd = [
        sys.executable, "-m", "backtest", "run", "--data", str(data), "--symbol", "SYN",
        "--config", str(config), "--out", str(out), "--quiet",
    ]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=REPO, env=env)  # warm the numba cache
    walls, peaks = [], []
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        peaks.append(usage.ru_maxrss / 1024)
        if status != 0:
            raise SystemExit(f"CLI failed with status {status}")
    return min(walls), max(peaks)


if __name__ == "__main__":
    main()
