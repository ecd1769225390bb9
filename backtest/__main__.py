"""`python -m backtest run --data FILE [--symbol SYM] --config FILE.toml --out DIR [--set k=v]`.

Also `python -m backtest daytype --data FILE --out DIR` (backtest/daytype_cli.py).
`python -m backtest rank-train --data FILE [--data FILE ...] --config CFG --out DIR`: does a
model over the scorer's features rank the trades, walk-forward (backtest/rank.py)?

Exit codes: 0 done, 2 bad data or configuration (the message names the first bad row or
key; nothing is written).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from backtest.config import ConfigError, load_config
from backtest.costs import CostModelError
from backtest.data import DataError, load_bars

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m backtest", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="backtest one symbol and write the reports")
    run.add_argument("--data", required=True, type=Path, help="CSV or Parquet bars")
    run.add_argument("--symbol", default="", help="symbol to select (files with several)")
    run.add_argument("--config", type=Path, help="TOML configuration (defaults if omitted)")
    run.add_argument("--out", required=True, type=Path, help="directory for the reports")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config key (repeatable), e.g. --set exits.stop_loss_pct=2 (2 %%)",
    )
    run.add_argument("--no-html", action="store_true", help="skip report.html")
    run.add_argument("--quiet", action="store_true", help="do not print the summary")
    synth = sub.add_parser("synth", help="write seeded synthetic one-minute bars (CSV/Parquet)")
    synth.add_argument("--bars", type=int, default=390 * 20, help="number of bars")
    synth.add_argument("--seed", type=int, default=7)
    synth.add_argument("--out", required=True, type=Path, help=".csv or .parquet file")
    fetch = sub.add_parser("fetch", help="download bars through a live data source")
    fetch.add_argument("--source", required=True, choices=("alpaca", "ibkr"))
    fetch.add_argument("--symbol", required=True, help="e.g. AAPL")
    fetch.add_argument("--start", required=True, help="YYYY-MM-DD or ISO 8601 (UTC)")
    fetch.add_argument("--end", default="", help="YYYY-MM-DD (inclusive) or ISO; default now")
    fetch.add_argument("--timeframe", default="1Min", help="1Min, 5Min, 1Hour, 1Day …")
    fetch.add_argument("--out", required=True, type=Path, help=".parquet or .csv (resumed)")
    from backtest.daytype_cli import add_parser

    add_parser(sub)
    rank = sub.add_parser(
        "rank-train", help="walk-forward ranking of the trades by the scorer's features"
    )
    rank.add_argument("--data", required=True, type=Path, action="append", help="bars (repeatable)")
    rank.add_argument("--config", type=Path, help="TOML configuration (defaults if omitted)")
    rank.add_argument("--out", required=True, type=Path, help="directory for the outputs")
    rank.add_argument("--folds", type=int, default=5, help="walk-forward folds (default 5)")
    rank.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE"
    )
    return parser


def fetch_bars(args: argparse.Namespace) -> int:
    """Keys and endpoints come from the FLOWTRADER_* settings, as for the live source."""
    from datetime import UTC, datetime

    from backtest.fetch import FetchError, fetch, parse_time
    from chalicelib.bootstrap import Container
    from chalicelib.ports import MarketDataUnavailable

    try:
        start = parse_time(args.start)
        end = parse_time(args.end, end=True) if args.end else datetime.now(UTC)
        market = Container().market_data(args.source)
        report = fetch(market, args.symbol.upper(), args.timeframe, start, end, args.out)
    except (FetchError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MarketDataUnavailable as exc:
        print(f"error: {exc} (run the same command again to resume)", file=sys.stderr)
        return 1
    how = "resumed after the file's last bar, " if report.resumed else ""
    print(
        f"{report.symbol}: {report.fetched:,} {args.timeframe} bars fetched from {args.source} "
        f"({how}{report.requests} request(s)); {report.total:,} in {report.out}"
    )
    return 0


def rank_train(args: argparse.Namespace) -> int:
    from backtest.engine import run_backtest
    from backtest.rank import format_ranking
    from backtest.rank import rank_train as train

    if args.folds < 1:
        print("backtest: --folds must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        config = load_config(args.config, args.overrides)
        datasets = []
        for path in args.data:
            bars = load_bars(path, symbol=config.data.symbol, tz=config.data.tz)
            if len(bars) < 2:
                raise DataError(f"{path}: need at least 2 bars, have {len(bars)}")
            datasets.append((bars, run_backtest(bars, config).trades))
        summary = train(datasets, config, args.out, folds=args.folds)
    except (ConfigError, CostModelError, DataError, TypeError, ValueError) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(format_ranking(summary))
    print(f"  outputs         {args.out}/ranked_trades.csv, ranking.json, model.json")
    return 0


def synth(args: argparse.Namespace) -> int:
    from backtest.synthetic import intraday_bars

    frame = intraday_bars(args.bars, seed=args.seed).drop(columns="regime")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(args.out, index=False)
    else:
        frame.to_csv(args.out, index=False)
    print(f"wrote {len(frame):,} bars to {args.out}")
    return 0


def format_summary(stats: dict) -> str:
    pf = stats["profit_factor"]
    lines = [
        f"{stats['symbol']}: {stats['bars']:,} bars {stats['start']} → {stats['end']}",
        f"  trades          {stats['n_trades']:>12,}  (long {stats['n_long']:,}, "
        f"short {stats['n_short']:,})",
        f"  win rate        {stats['win_rate'] * 100:>11.2f}%",
        f"  net P/L         {stats['total_net_pnl']:>12,.2f}  "
        f"(avg {stats['avg_net_pnl_per_trade']:,.2f}/trade)",
        f"  avg win / loss  {stats['avg_win']:>12,.2f} / {stats['avg_loss']:,.2f}",
        f"  profit factor   {pf:>12.3f}" if pf is not None else "  profit factor            n/a",
        f"  max drawdown    {stats['max_drawdown_usd']:>12,.2f}  "
        f"({stats['max_drawdown_pct']:.2f}%)",
        f"  sharpe          {stats['sharpe']:>12.3f}",
        f"  exposure        {stats['exposure_pct']:>11.2f}%",
        f"  equity          {stats['start_equity']:>12,.2f} → {stats['final_equity']:,.2f}",
        f"  costs           {stats['commissions_total']:>12,.2f} commission, "
        f"{stats['slippage_total']:,.2f} slippage",
    ]
    if stats["entries_denied"]:
        denied = ", ".join(f"{k} {v:,}" for k, v in stats["entries_denied"].items())
        lines.append(f"  entries denied  {denied} (of {stats['entries_proposed']:,} proposed)")
    if stats["open_position_at_end"]:
        p = stats["open_position_at_end"]
        state = "closed at the last close" if p["closed_at_end"] else "still open"
        lines.append(f"  at end          {p['side']} {p['qty']:g} from {p['entry_time']} ({state})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from backtest import kernel
    from backtest.engine import run_backtest
    from backtest.report import write_outputs

    warming = threading.Thread(target=kernel.warm_up, name="warm-kernel", daemon=True)
    warming.start()
    try:
        config = load_config(args.config, args.overrides)
        symbol = args.symbol or config.data.symbol
        bars = load_bars(args.data, symbol=symbol, tz=config.data.tz)
        warming.join()
        if len(bars) < 2:
            raise DataError(f"{args.data}: need at least 2 bars, have {len(bars)}")
        result = run_backtest(bars, config)
    except (ConfigError, CostModelError, DataError) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (TypeError, ValueError) as exc:  # strategy parameters, alerts
        print(f"backtest: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    html_report = config.report.html and not args.no_html
    stats = write_outputs(result, args.out, html_report=html_report, config=config.as_dict())
    if not args.quiet:
        print(format_summary(stats))
        print(f"  reports         {args.out}/")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "synth":
        return synth(args)
    if args.command == "fetch":
        return fetch_bars(args)
    if args.command == "daytype":
        from backtest.daytype_cli import run as daytype

        return daytype(args)
    if args.command == "rank-train":
        return rank_train(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
