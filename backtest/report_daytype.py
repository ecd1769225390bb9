"""The day-type gate's figure: P/L per trade and drawdown, without and with the gate, as
one self-contained SVG (no plotting dependency; backtest/report.py draws its charts the
same way)."""

from __future__ import annotations

from html import escape

import numpy as np

WIDTH, PANEL_H, PAD = 900, 220, 48
OFF, ON = "#888888", "#1f77b4"
MAX_POINTS = 1200


def _polyline(
    values: np.ndarray, x0: float, y0: float, w: float, h: float, lo: float, hi: float, color: str
) -> str:
    if values.size == 0:
        return ""
    if values.size > MAX_POINTS:  # keep each bucket's worst (lowest) point
        values = np.array([chunk.min() for chunk in np.array_split(values, MAX_POINTS)])
    span = hi - lo or 1.0
    xs = x0 + np.linspace(0, w, values.size) if values.size > 1 else np.array([x0 + w / 2])
    ys = y0 + h - (values - lo) / span * h
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>'


def _bars(
    values: np.ndarray,
    x0: float,
    y0: float,
    w: float,
    h: float,
    lo: float,
    hi: float,
    color: str,
    offset: float,
    width: float,
) -> str:
    span = hi - lo or 1.0
    zero = y0 + h - (0 - lo) / span * h
    step = w / max(values.size, 1)
    out = []
    for i, v in enumerate(values):
        y = y0 + h - (v - lo) / span * h
        top, height = min(y, zero), abs(zero - y)
        x = x0 + i * step + offset * step
        out.append(
            f'<rect x="{x:.1f}" y="{top:.1f}" width="{max(step * width, 0.5):.1f}" '
            f'height="{max(height, 0.5):.1f}" fill="{color}"/>'
        )
    return "".join(out)


def _panel(title: str, y0: float, body: str, lo: float, hi: float) -> str:
    w = WIDTH - 2 * PAD
    return (
        f'<text x="{PAD}" y="{y0 - 8}" font-size="13">{escape(title)}</text>'
        f'<rect x="{PAD}" y="{y0}" width="{w}" height="{PANEL_H}" fill="none" stroke="#ccc"/>'
        f'<text x="{PAD - 4}" y="{y0 + 10}" font-size="10" text-anchor="end">{hi:,.0f}</text>'
        f'<text x="{PAD - 4}" y="{y0 + PANEL_H}" font-size="10" text-anchor="end">{lo:,.0f}</text>'
        + body
    )


def comparison_svg(
    curves: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> str:
    """Per source: (name, P/L per trade without, with the gate, drawdown USD per bar
    without, with). Two panels per source: P/L per trade (bars, grey without, blue with)
    and the drawdown curves."""
    w = WIDTH - 2 * PAD
    parts, y = [], 40.0
    for name, pnl_off, pnl_on, dd_off, dd_on in curves:
        both = np.concatenate([pnl_off, pnl_on, [0.0]])
        lo, hi = float(both.min()), float(both.max())
        body = _bars(pnl_off, PAD, y, w, PANEL_H, lo, hi, OFF, 0.0, 0.45)
        body += _bars(pnl_on, PAD, y, w, PANEL_H, lo, hi, ON, 0.5, 0.45)
        title = (
            f"{name}: net P/L per trade (USD) — grey without the gate ({pnl_off.size} trades, "
            f"{pnl_off.sum():,.0f}), blue with ({pnl_on.size} trades, {pnl_on.sum():,.0f})"
        )
        parts.append(_panel(title, y, body, lo, hi))
        y += PANEL_H + 50
        top = float(max(dd_off.max() if dd_off.size else 0, dd_on.max() if dd_on.size else 0))
        body = _polyline(-dd_off, PAD, y, w, PANEL_H, -top, 0.0, OFF)
        body += _polyline(-dd_on, PAD, y, w, PANEL_H, -top, 0.0, ON)
        title = (
            f"{name}: drawdown (USD, per bar) — max {dd_off.max() if dd_off.size else 0:,.0f} "
            f"without, {dd_on.max() if dd_on.size else 0:,.0f} with the gate"
        )
        parts.append(_panel(title, y, body, -top, 0.0))
        y += PANEL_H + 60
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y:.0f}" '
        f'font-family="sans-serif">' + "".join(parts) + "</svg>\n"
    )
