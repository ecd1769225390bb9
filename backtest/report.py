"""Writing the outputs: trades.csv, daily_pnl.csv, summary.json and a self-contained report.html.

Everything is written into a temporary directory next to `out` and moved into place at the
end, so a failed run never leaves half a report. The HTML page is inline SVG and CSS only
(no script, no CDN): it opens offline and from an email attachment.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.engine import TRADE_COLUMNS, BacktestResult
from backtest.metrics import daily_pnl, drawdown, summary
from chalicelib.rules.report_rows import csv_text

MAX_POINTS = 1500  # x-resolution of the charts
MAX_MARKERS = 1500  # most recent trades drawn on the price chart
MAX_TABLE_ROWS = 200


def write_outputs(
    result: BacktestResult, out: Path, *, html_report: bool = True, config: dict | None = None
) -> dict[str, Any]:
    """Write every output into `out` (replacing what a previous run left); return the summary."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    daily = daily_pnl(result)
    stats = summary(result, daily)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the reports are not
    try:
        write_csv(result.trades[TRADE_COLUMNS], tmp / "trades.csv")
        write_csv(daily, tmp / "daily_pnl.csv")
        payload = dict(stats)
        if config is not None:
            payload["config"] = config
        (tmp / "summary.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
        if html_report:
            (tmp / "report.html").write_text(render_html(result, stats), encoding="utf-8")
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            if old.exists():
                shutil.rmtree(old)
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stats


def write_csv(frame: pd.DataFrame, path: Path, decimals: int = 6) -> None:
    """The frame as CSV through the writer the live daily report uses
    (`chalicelib.rules.report_rows.csv_text`: floats to `decimals` places without trailing
    zeros, text quoted only when it has to be)."""
    data = {c: frame[c].to_numpy() for c in frame.columns}
    Path(path).write_bytes(csv_text(list(frame.columns), data, decimals).encode())


# ----------------------------------------------------------------------------- charts


def _buckets(n: int) -> np.ndarray:
    """Start index of each x bucket (at most MAX_POINTS of them)."""
    return np.unique(np.linspace(0, n, min(n, MAX_POINTS) + 1, dtype=np.int64)[:-1])


def _scale(values: np.ndarray, lo: float, hi: float, top: float, height: float) -> np.ndarray:
    span = hi - lo if hi > lo else 1.0
    return top + height - (values - lo) / span * height


def _path(xs: np.ndarray, ys: np.ndarray) -> str:
    pts = " L".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    return f"M{pts}"


def _axis_labels(lo: float, hi: float, top: float, height: float, left: float) -> str:
    parts = []
    for frac in (0.0, 0.5, 1.0):
        value = lo + (hi - lo) * frac
        y = top + height - frac * height
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,.2f}</text>'
            f'<line x1="{left}" x2="100%" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
    return "".join(parts)


def _time_labels(result: BacktestResult, xmap, top: float) -> str:
    times = result.bars.time
    n = len(times)
    parts = []
    for k, frac in enumerate(np.linspace(0, 1, 6)):
        i = min(int(frac * (n - 1)), n - 1)
        anchor = "start" if k == 0 else "end" if k == 5 else "middle"  # edge labels stay inside
        parts.append(
            f'<text x="{xmap(i):.1f}" y="{top}" text-anchor="{anchor}">'
            f"{times[i].strftime('%Y-%m-%d')}</text>"
        )
    return "".join(parts)


def _chart(title: str, body: str, height: int) -> str:
    return (
        f"<h2>{html.escape(title)}</h2>"
        f'<svg viewBox="0 0 1000 {height}" preserveAspectRatio="none" role="img" '
        f'aria-label="{html.escape(title)}">{body}</svg>'
    )


def _line_chart(result: BacktestResult, values: np.ndarray, title: str, css: str) -> str:
    n = values.size
    left, top, width, height = 80.0, 10.0, 900.0, 200.0
    starts = _buckets(n)
    ys_raw = values[np.minimum(np.append(starts[1:], n) - 1, n - 1)]
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))

    def xmap(i):
        return left + (np.asarray(i, dtype=float) / max(n - 1, 1)) * width

    body = _axis_labels(lo, hi, top, height, left)
    body += f'<path d="{_path(xmap(starts), _scale(ys_raw, lo, hi, top, height))}" class="{css}"/>'
    body += _time_labels(result, xmap, top + height + 18)
    return _chart(title, body, int(top + height + 26))


def _price_chart(result: BacktestResult) -> str:
    arrays = result.bars.arrays
    close = arrays.close
    n = close.size
    left, top, width, height = 80.0, 10.0, 900.0, 260.0
    starts = _buckets(n)
    hi_b = np.maximum.reduceat(arrays.high, starts)
    lo_b = np.minimum.reduceat(arrays.low, starts)
    last = close[np.append(starts[1:], n) - 1]
    lo, hi = float(lo_b.min()), float(hi_b.max())

    def xmap(i):
        return left + (np.asarray(i, dtype=float) / max(n - 1, 1)) * width

    xs = xmap(starts)
    band = np.concatenate(
        [_scale(hi_b, lo, hi, top, height), _scale(lo_b, lo, hi, top, height)[::-1]]
    )
    band_x = np.concatenate([xs, xs[::-1]])
    body = _axis_labels(lo, hi, top, height, left)
    body += f'<path d="{_path(band_x, band)} Z" class="band"/>'
    body += f'<path d="{_path(xs, _scale(last, lo, hi, top, height))}" class="price"/>'
    trades = result.trades.tail(MAX_MARKERS)
    marks = []
    for row in trades.itertuples(index=False):
        ex, ey = float(xmap(row.entry_bar)), float(_scale(row.entry_price, lo, hi, top, height))
        xx, xy = float(xmap(row.exit_bar)), float(_scale(row.exit_price, lo, hi, top, height))
        if row.side == "long":
            marks.append(f'<path d="M{ex:.1f},{ey + 7:.1f} l-5,8 h10 Z" class="long"/>')
        else:
            marks.append(f'<path d="M{ex:.1f},{ey - 7:.1f} l-5,-8 h10 Z" class="short"/>')
        cls = "win" if row.net_pnl > 0 else "loss"
        marks.append(f'<circle cx="{xx:.1f}" cy="{xy:.1f}" r="3" class="{cls}"/>')
    body += "".join(marks)
    body += _time_labels(result, xmap, top + height + 18)
    note = ""
    if len(result.trades) > MAX_MARKERS:
        note = f" (markers for the last {MAX_MARKERS} of {len(result.trades)} trades)"
    return _chart(
        f"{result.symbol} price, entries ▲▼ and exits ●{note}", body, int(top + height + 26)
    )


def _summary_table(stats: dict[str, Any]) -> str:
    """The summary as a table; percents (`*_pct`) and the win rate shown with a % sign."""
    rows = []
    for key, value in stats.items():
        if key.endswith("_pct") and isinstance(value, float):
            shown = f"{value:,.2f} %"
        elif key == "win_rate" and isinstance(value, float):
            shown = f"{value * 100:,.2f} %"  # summary.json keeps the fraction (0.55)
        elif isinstance(value, float):
            shown = f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
        elif isinstance(value, dict):
            shown = ", ".join(f"{k}: {v}" for k, v in value.items()) or "–"
        else:
            shown = "–" if value is None else str(value)
        rows.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(shown)}</td></tr>")
    return f'<table class="summary">{"".join(rows)}</table>'


def _trades_table(trades: pd.DataFrame) -> str:
    shown = trades[TRADE_COLUMNS].tail(MAX_TABLE_ROWS)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown.columns)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for value in row:
            text = f"{value:,.4f}" if isinstance(value, float) else str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    note = ""
    if len(trades) > MAX_TABLE_ROWS:
        note = f"<p>The last {MAX_TABLE_ROWS} of {len(trades)} trades; all are in trades.csv.</p>"
    return f'{note}<table class="trades"><tr>{head}</tr>{"".join(body)}</table>'


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px} h2{font-size:16px;margin-top:28px}
svg{width:100%;height:auto;background:#fafafa;border:1px solid #ddd}
svg text{font-size:11px;fill:#555} .grid{stroke:#e5e5e5}
.equity{fill:none;stroke:#1f77b4;stroke-width:1.5} .dd{fill:none;stroke:#d62728;stroke-width:1.2}
.price{fill:none;stroke:#333;stroke-width:1} .band{fill:#ccc;opacity:.5;stroke:none}
.long{fill:#2ca02c} .short{fill:#d62728}
.win{fill:#2ca02c;opacity:.8} .loss{fill:#d62728;opacity:.8}
table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
table.summary th{text-align:left;background:#f4f4f4}
"""


def render_html(result: BacktestResult, stats: dict[str, Any]) -> str:
    if len(result.bars) == 0:
        charts = "<p>No bars.</p>"
    else:
        dd_usd, _ = drawdown(result.equity)
        charts = (
            _line_chart(result, result.equity, "Equity (USD, marked to each close)", "equity")
            + _line_chart(result, -dd_usd, "Drawdown from peak (USD)", "dd")
            + _price_chart(result)
        )
    title = f"flowtrader backtest: {html.escape(result.symbol)}"
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{CSS}</style></head><body><h1>{title}</h1>"
        f"{_summary_table(stats)}{charts}<h2>Trades</h2>{_trades_table(result.trades)}"
        "</body></html>\n"
    )
