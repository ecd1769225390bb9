"""`python -m backtest daytype`: validate the day-type classifier, and backtest a strategy
with and without the day-type gate.

    python -m backtest daytype --data FILE [--data FILE ...] [--symbol SYM] [--at 10:00] \\
        --out DIR [--synthetic SESSIONS [--seed N]] [--config FILE.toml]

Each `--data` file is classified on its own (a session's prior sessions come from the same
file); `--synthetic N` adds N seeded synthetic sessions (backtest/synthetic.py, regime-
switching; its `regime` column goes into the CSV). Rows from every source are pooled into
`DIR/daytype.csv` and scored together, and per source. With `--config`, the config's
strategy runs over each source twice, `[daytype] gate` off and on, and
`DIR/gate_comparison.{csv,svg}` show P/L per trade and drawdown side by side.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from backtest.daytype import (
    Evaluation,
    Source,
    evaluate,
    format_evaluation,
    score,
    sessions_of,
    synthetic_source,
    write_rows,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("daytype", help="validate the day-type classifier against hindsight")
    p.add_argument("--data", type=Path, action="append", default=[], help="CSV or Parquet bars")
    p.add_argument("--symbol", default="", help="symbol to select (files with several)")
    p.add_argument("--at", default="10:00", help="New York time to classify at (HH:MM)")
    p.add_argument("--out", required=True, type=Path, help="directory for daytype.csv")
    p.add_argument("--synthetic", type=int, default=0, metavar="SESSIONS")
    p.add_argument("--seed", type=int, default=7, help="seed of the synthetic sessions")
    p.add_argument("--config", type=Path, help="also backtest this strategy with/without the gate")


def _sources(args: argparse.Namespace) -> list[Source]:
    from backtest.data import load_bars

    out = [Source(str(p), load_bars(p, symbol=args.symbol)) for p in args.data]
    if args.synthetic:
        out.append(synthetic_source(args.synthetic, args.seed))
    return out


def run(args: argparse.Namespace) -> int:
    from backtest.data import DataError
    from chalicelib.services.classify_day import parse_new_york_time

    try:
        at = parse_new_york_time(args.at)
        if not args.data and not args.synthetic:
            raise DataError("give --data FILE and/or --synthetic SESSIONS")
        sources = _sources(args)
    except (DataError, ValueError) as exc:
        print(f"backtest daytype: {exc}")
        return 2
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {"at": args.at, "sources": {}}
    for source in sources:
        symbol = source.bars.symbol or args.symbol or "?"
        ev = evaluate(sessions_of(source.bars), symbol, at, regimes=source.regimes)
        for row in ev.rows:
            row["source"] = source.name
        rows += ev.rows
        print(format_evaluation(ev, source.name))
        print()
        report["sources"][source.name] = _summary(ev)
        if source.regimes is not None:
            print(_regime_table(ev))
            print()
    if len(sources) > 1:
        pooled = score(rows)
        print(format_evaluation(pooled, "all sources"))
        report["all"] = _summary(pooled)
    args.out.mkdir(parents=True, exist_ok=True)
    write_rows(rows, args.out / "daytype.csv")
    if args.config is not None:
        report["gate"] = _gate_comparison(args, sources)
    (args.out / "daytype_summary.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"  wrote {args.out / 'daytype.csv'} ({len(rows)} sessions)")
    return 0


def _summary(ev: Evaluation) -> dict[str, Any]:
    return {
        "sessions": ev.n,
        "accuracy": ev.accuracy,
        "balanced_accuracy": ev.balanced_accuracy,
        "baseline_label": ev.baseline_label,
        "baseline_accuracy": ev.baseline_accuracy,
        "baseline_balanced_accuracy": ev.baseline_balanced_accuracy,
        "momentum_balanced_accuracy": ev.extra.get("momentum_balanced_accuracy"),
        "confusion": {f"{t}->{p}": n for (t, p), n in sorted(ev.confusion.items())},
    }


def _regime_table(ev: Evaluation) -> str:
    """Predicted day type by the generator's regime (synthetic data only)."""
    regimes = sorted({r["regime"] for r in ev.rows})
    labels = list(ev.labels)
    lines = ["generator regime \\ predicted".ljust(30) + "".join(lab.rjust(12) for lab in labels)]
    for regime in regimes:
        counts = [
            sum(1 for r in ev.rows if r["regime"] == regime and r["predicted"] == lab)
            for lab in labels
        ]
        lines.append(regime.ljust(30) + "".join(str(c).rjust(12) for c in counts))
    return "\n".join(lines)


def _gate_comparison(args: argparse.Namespace, sources: list[Source]) -> dict[str, Any]:
    from backtest.config import load_config
    from backtest.engine import run_backtest
    from backtest.metrics import drawdown
    from backtest.report_daytype import comparison_svg

    results: dict[str, Any] = {}
    curves: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    lines = ["source,gate,trades,net_pnl,avg_pnl_per_trade,win_rate,max_drawdown_usd,denied"]
    for source in sources:
        per: dict[str, Any] = {}
        pnl: dict[bool, np.ndarray] = {}
        dd: dict[bool, np.ndarray] = {}
        for gate in (False, True):
            config = load_config(
                args.config,
                [f"daytype.gate={'true' if gate else 'false'}", f'daytype.at="{args.at}"'],
            )
            result = run_backtest(source.bars, config, progress=False)
            net = result.trades["net_pnl"].to_numpy() if len(result.trades) else np.zeros(0)
            usd, _ = drawdown(result.equity)
            pnl[gate], dd[gate] = net, usd
            stats = {
                "trades": int(net.size),
                "net_pnl": float(net.sum()),
                "avg_pnl_per_trade": float(net.mean()) if net.size else 0.0,
                "win_rate": float((net > 0).mean()) if net.size else 0.0,
                "max_drawdown_usd": float(usd.max()) if usd.size else 0.0,
                "denied": dict(result.denials),
            }
            per["with_gate" if gate else "without_gate"] = stats
            denied = ";".join(f"{k}={v}" for k, v in sorted(result.denials.items()))
            lines.append(
                f"{source.name},{'on' if gate else 'off'},{stats['trades']},"
                f"{stats['net_pnl']:.2f},{stats['avg_pnl_per_trade']:.2f},"
                f"{stats['win_rate']:.3f},{stats['max_drawdown_usd']:.2f},{denied}"
            )
            print(
                f"{source.name}: gate {'on ' if gate else 'off'}  trades {stats['trades']:>4}  "
                f"net {stats['net_pnl']:>11,.2f}  avg/trade {stats['avg_pnl_per_trade']:>9,.2f}  "
                f"max drawdown {stats['max_drawdown_usd']:>10,.2f}"
            )
        results[source.name] = per
        curves.append((source.name, pnl[False], pnl[True], dd[False], dd[True]))
    (args.out / "gate_comparison.csv").write_text("\n".join(lines) + "\n")
    (args.out / "gate_comparison.svg").write_text(comparison_svg(curves))
    print(f"  wrote {args.out / 'gate_comparison.csv'} and gate_comparison.svg")
    return results
