"""Which flow prints are "smart money" highlights: pure, so the scanner's choice is testable
and the same in a replay.

- **sweep**: a flow alert that swept several exchanges (`is_sweep`) for at least
  `sweep_min_premium_usd` — urgency, someone paying up to be filled now;
- **repeated hits**: at least `repeat_min_alerts` flow alerts on one option contract within
  the scan, together at least `repeat_min_premium_usd` (one highlight per contract per day);
- **dark pool**: an off-exchange print of at least `darkpool_size_multiple` times the
  average size of the day's other prints (at least `darkpool_min_prints` of them) and at
  least `darkpool_min_premium_usd` of notional.

Each highlight's `key` is stable, so overlapping scans record and notify it once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain import DarkPoolPrint, FlowHighlight, FlowPrint
from chalicelib.rules.market_calendar import trading_date


@dataclass(frozen=True)
class ScanRules:
    sweep_min_premium_usd: float = 250_000.0
    repeat_min_alerts: int = 3
    repeat_min_premium_usd: float = 100_000.0
    darkpool_size_multiple: float = 10.0
    darkpool_min_premium_usd: float = 1_000_000.0
    darkpool_min_prints: int = 20

    @property
    def alert_min_premium_usd(self) -> float:
        """The smallest flow alert any rule can use (the vendor-side `min_premium`)."""
        return min(self.sweep_min_premium_usd, self.repeat_min_premium_usd / self.repeat_min_alerts)


def usd(amount: float) -> str:
    """$1.2M, $650K, $900."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(amount) >= size:
            return f"${amount / size:.1f}{suffix}"
    return f"${amount:,.0f}"


def _leaning(bullish: float, bearish: float) -> str:
    if bullish > bearish:
        return "bullish"
    if bearish > bullish:
        return "bearish"
    return "neutral"


def sweep_highlights(prints: Sequence[FlowPrint], rules: ScanRules) -> list[FlowHighlight]:
    found = []
    for p in prints:
        if not p.is_sweep or p.premium_usd < rules.sweep_min_premium_usd:
            continue
        side = "ask" if p.ask_side_premium_usd >= p.bid_side_premium_usd else "bid"
        found.append(
            FlowHighlight(
                key=f"sweep:{p.key}",
                symbol=p.symbol,
                kind="sweep",
                at=p.created_at,
                premium_usd=p.premium_usd,
                headline=f"{p.symbol} {p.option_type} sweep {usd(p.premium_usd)} at the {side} "
                f"({p.option_symbol}, {p.trade_count} trades)",
                direction=_leaning(p.bullish_premium_usd, p.bearish_premium_usd),
                option_symbol=p.option_symbol,
                details={"size": p.size, "alert_rule": p.alert_rule, "side": side},
            )
        )
    return found


def repeated_hit_highlights(prints: Sequence[FlowPrint], rules: ScanRules) -> list[FlowHighlight]:
    by_contract: dict[str, list[FlowPrint]] = defaultdict(list)
    for p in prints:
        by_contract[p.option_symbol].append(p)
    found = []
    for contract, hits in sorted(by_contract.items()):
        premium = sum(p.premium_usd for p in hits)
        if len(hits) < rules.repeat_min_alerts or premium < rules.repeat_min_premium_usd:
            continue
        first = min(hits, key=lambda p: p.created_at)
        bullish = sum(p.bullish_premium_usd for p in hits)
        bearish = sum(p.bearish_premium_usd for p in hits)
        found.append(
            FlowHighlight(
                key=f"repeat:{contract}:{trading_date(first.created_at).isoformat()}",
                symbol=first.symbol,
                kind="repeated_hits",
                at=first.created_at,
                premium_usd=premium,
                headline=f"{first.symbol} repeated hits: {len(hits)} flow alerts on {contract}, "
                f"{usd(premium)}",
                direction=_leaning(bullish, bearish),
                option_symbol=contract,
                details={"alerts": len(hits), "bullish_usd": bullish, "bearish_usd": bearish},
            )
        )
    return found


def darkpool_highlights(
    prints: Sequence[DarkPoolPrint], rules: ScanRules, *, since: datetime
) -> list[FlowHighlight]:
    """Large prints since `since` among one symbol's prints of the day."""
    live = [p for p in prints if not p.canceled]
    if len(live) < rules.darkpool_min_prints:
        return []
    total_size = sum(p.size for p in live)
    found = []
    for p in live:
        if p.executed_at < since or p.premium_usd < rules.darkpool_min_premium_usd:
            continue
        others = (total_size - p.size) / (len(live) - 1)
        if others <= 0 or p.size < rules.darkpool_size_multiple * others:
            continue
        multiple = p.size / others
        ident = p.tracking_id or f"{p.executed_at.isoformat()}:{p.size}:{p.price:g}"
        found.append(
            FlowHighlight(
                key=f"darkpool:{p.symbol}:{ident}",
                symbol=p.symbol,
                kind="darkpool",
                at=p.executed_at,
                premium_usd=p.premium_usd,
                headline=f"{p.symbol} dark pool {p.size:,} shares {usd(p.premium_usd)} at "
                f"{p.price:g} ({multiple:.0f}x the day's average print)",
                details={
                    "price": p.price,
                    "size": p.size,
                    "average_size": round(others, 2),
                    "nbbo_bid": p.nbbo_bid,
                    "nbbo_ask": p.nbbo_ask,
                },
            )
        )
    return found


def find_highlights(
    prints: Sequence[FlowPrint],
    darkpool_by_symbol: Mapping[str, Sequence[DarkPoolPrint]],
    rules: ScanRules,
    *,
    since: datetime,
) -> list[FlowHighlight]:
    """Every highlight in one scan's prints (flow alerts since `since`, each symbol's
    dark-pool prints of the day), each key once, oldest first."""
    recent = [p for p in prints if p.created_at >= since]
    unique = {p.key: p for p in recent}.values()
    found = sweep_highlights(list(unique), rules) + repeated_hit_highlights(list(unique), rules)
    for symbol in sorted(darkpool_by_symbol):
        found += darkpool_highlights(darkpool_by_symbol[symbol], rules, since=since)
    by_key = {h.key: h for h in found}
    return sorted(by_key.values(), key=lambda h: (h.at, h.key))
