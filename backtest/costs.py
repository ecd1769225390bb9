"""Commission and slippage models: the config tables, and the formulas the engine charges.

The formulas themselves are the compiled `commission_usd` / `slipped_price` in
`backtest.kernel` (callable from Python too, which is what the unit tests do), so there is
one implementation. This module turns a config table into the kernel's (model, params).

Commission (per fill; a round trip pays entry and exit):
- `percent{rate}`: qty × price × rate (0.001 = 0.1 %).
- `per_share{rate, min, max}`: qty × rate USD, at least `min` USD, at most `max` × the
  fill's value (IBKR fixed: rate 0.005, min 1.00, max 0.01). 0 disables min/max.
- `per_order{fee}`: `fee` USD per fill.
- `alpaca{sec_rate, taf_per_share, taf_max}`: no commission; sells pay the SEC fee
  (`sec_rate` × principal, default 27.80 USD per million) and the FINRA TAF
  (`taf_per_share`, default 0.000166 USD, capped at `taf_max`, default 8.30 USD per fill),
  each rounded up to the cent. Check the current rates; both change every year.
- `none{}`.

Slippage (market and stop fills only; take-profit limits fill at their price):
- `bps{bps}`: the fill is `bps` basis points worse.
- `cents{per_share}`: the fill is `per_share` USD worse (0.01 = one cent).
- `spread{bps}`: the taker pays half of a `bps`-wide quoted spread.
- `volume{impact}`: worse by impact × sqrt(qty / bar volume) of the price (square-root
  market impact; `impact` when the bar has no volume).
- `none{}`.
"""

from __future__ import annotations

from typing import Any

from backtest import kernel

SEC_FEE_RATE = 27.80e-6
FINRA_TAF_PER_SHARE = 0.000166
FINRA_TAF_MAX_USD = 8.30


class CostModelError(ValueError):
    """A commission or slippage table names an unknown model or a bad parameter."""


def _params(table: dict[str, Any], kind: str, spec: dict[str, tuple[str, ...]]) -> tuple:
    if not isinstance(table, dict) or "model" not in table:
        raise CostModelError(f"costs.{kind} must be a table with a model, e.g. {{ model = ... }}")
    model = table["model"]
    if model not in spec:
        raise CostModelError(f"costs.{kind}.model must be one of {', '.join(spec)}; got {model!r}")
    allowed = spec[model]
    unknown = sorted(set(table) - {"model", *allowed})
    if unknown:
        raise CostModelError(
            f"costs.{kind} {model}: unknown key(s) {', '.join(unknown)} "
            f"(known: {', '.join(allowed) or 'none'})"
        )
    values = {}
    for key in allowed:
        value = table.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise CostModelError(f"costs.{kind}.{key} must be a number >= 0, got {value!r}")
        values[key] = float(value)
    return model, values


_COMMISSIONS = {
    "none": (),
    "percent": ("rate",),
    "per_share": ("rate", "min", "max"),
    "per_order": ("fee",),
    "alpaca": ("sec_rate", "taf_per_share", "taf_max"),
}
_SLIPPAGES = {
    "none": (),
    "bps": ("bps",),
    "cents": ("per_share",),
    "spread": ("bps",),
    "volume": ("impact",),
}


def commission_params(table: dict[str, Any]) -> tuple[int, float, float, float]:
    """(kernel model id, c1, c2, c3) for a `[costs] commission` table."""
    model, v = _params(table, "commission", _COMMISSIONS)
    if model == "percent":
        if v["rate"] >= 0.1:
            raise CostModelError("costs.commission.rate is a fraction (0.001 = 0.1 %), < 0.1")
        return kernel.COMM_PERCENT, v["rate"], 0.0, 0.0
    if model == "per_share":
        return kernel.COMM_PER_SHARE, v["rate"], v["min"], v["max"]
    if model == "per_order":
        return kernel.COMM_PER_ORDER, v["fee"], 0.0, 0.0
    if model == "alpaca":
        return (
            kernel.COMM_ALPACA,
            float(table.get("sec_rate", SEC_FEE_RATE)),
            float(table.get("taf_per_share", FINRA_TAF_PER_SHARE)),
            float(table.get("taf_max", FINRA_TAF_MAX_USD)),
        )
    return kernel.COMM_NONE, 0.0, 0.0, 0.0


def slippage_params(table: dict[str, Any]) -> tuple[int, float]:
    """(kernel model id, s1) for a `[costs] slippage` table."""
    model, v = _params(table, "slippage", _SLIPPAGES)
    ids = {
        "none": kernel.SLIP_NONE,
        "bps": kernel.SLIP_BPS,
        "cents": kernel.SLIP_CENTS,
        "spread": kernel.SLIP_SPREAD,
        "volume": kernel.SLIP_VOLUME,
    }
    return ids[model], (next(iter(v.values())) if v else 0.0)


def commission_usd(table: dict[str, Any], qty: float, price: float, *, is_sell: bool) -> float:
    """The commission one fill pays under `table` (the engine's own formula)."""
    model, c1, c2, c3 = commission_params(table)
    return float(kernel.commission_usd(model, c1, c2, c3, float(qty), float(price), is_sell))


def fill_price(table: dict[str, Any], price: float, qty: float, volume: float, side: int) -> float:
    """The slipped market-fill price under `table`; `side` +1 buy, −1 sell."""
    model, s1 = slippage_params(table)
    return float(kernel.slipped_price(model, s1, float(price), float(qty), float(volume), side))
