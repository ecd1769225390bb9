"""How many shares: fixed quantity, fixed notional, or risk-based, within caps.

Risk-based sizing risks `risk_pct` of equity between entry and stop:
``qty = floor(equity × risk_pct / |entry − stop|)``, then capped by the largest position
notional and by buying power. Whole shares only; 0 means "do not trade".
"""

from __future__ import annotations

import math
from enum import StrEnum


class SizingMode(StrEnum):
    FIXED_QTY = "fixed_qty"
    NOTIONAL = "notional"
    RISK_PCT = "risk_pct"


class SizingError(ValueError):
    """The sizing inputs cannot give a quantity (e.g. risk sizing without a stop)."""


def position_size(
    mode: SizingMode | str,
    *,
    entry_price: float,
    equity: float = 0.0,
    qty: float | None = None,
    notional_usd: float | None = None,
    risk_pct: float | None = None,
    stop_price: float | None = None,
    max_position_notional_usd: float | None = None,
    buying_power: float | None = None,
) -> int:
    """Shares to trade. `risk_pct` is a fraction (0.01 = 1 % of equity)."""
    if not (entry_price > 0 and math.isfinite(entry_price)):
        raise SizingError("entry price must be positive")
    mode = SizingMode(mode)
    if mode is SizingMode.FIXED_QTY:
        if qty is None or qty <= 0:
            raise SizingError("fixed_qty sizing needs a positive qty")
        shares = math.floor(qty + 1e-9)
    elif mode is SizingMode.NOTIONAL:
        if notional_usd is None or notional_usd <= 0:
            raise SizingError("notional sizing needs a positive notional_usd")
        shares = math.floor(notional_usd / entry_price + 1e-9)
    else:
        if risk_pct is None or risk_pct <= 0:
            raise SizingError("risk_pct sizing needs a positive risk_pct")
        if stop_price is None:
            raise SizingError("risk_pct sizing needs a stop price")
        risk_per_share = abs(entry_price - stop_price)
        if risk_per_share <= 0:
            raise SizingError("stop price equals entry price")
        shares = math.floor(equity * risk_pct / risk_per_share + 1e-9)
    for cap in (max_position_notional_usd, buying_power):
        if cap is not None:
            shares = min(shares, math.floor(max(cap, 0.0) / entry_price + 1e-9))
    return max(shares, 0)
