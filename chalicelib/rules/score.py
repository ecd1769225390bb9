"""The deterministic setup score: a documented formula over what the model scorer sees.

It is the fallback whenever the model cannot answer (no key, timeout, error, refusal,
malformed output, daily cost cap) and the score the backtest and the ranking model use, so
live and history judge a setup by the same numbers.

Every input is read *relative to the alert's side* (s = +1 for a long, −1 for a short), so
"with the alert" is always positive. Points (together they move 50 by at most ±65):

- `trend_atr` = s · (last − the snapshot's first open) / ATR → 15 · clip(x / 3, −1, 1)
- `vwap_atr` = s · (last − VWAP) / ATR → 10 · clip(x / 2, −1, 1)
- `relative_volume` (today's volume / the usual by this time) → 10 · clip(rvol − 1, −1, 1)
- `volume_confirmed` (the breakout-volume rule's verdict) → +5 allowed, −5 denied
- `day_alignment` → 15 · x, where x is +confidence on a trend day with the side,
  −confidence on one against it, −confidence / 2 on a choppy day, −1 on a no-trade day
- `flow_agrees` (the options/dark-pool flow summary) → +10 agrees, −10 disagrees

score = clip(50 + Σ points, 0, 100), rounded to 0.1; `agrees` is whether the points add up
positive (None when they are 0). A missing input (no snapshot, no ATR, no day type, no
flow) adds 0 and is named in the reasons, so an unscored setup sits at 50.
An alert that only closes a position is not judged: 50, "closes a position".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chalicelib.domain import (
    Alert,
    DayClassification,
    DayType,
    FlowSummary,
    MarketSnapshot,
    Score,
    Side,
)

NEUTRAL = 50.0
TREND_POINTS, TREND_SCALE_ATR = 15.0, 3.0
VWAP_POINTS, VWAP_SCALE_ATR = 10.0, 2.0
RVOL_POINTS = 10.0
VOLUME_POINTS = 5.0
DAY_POINTS = 15.0
FLOW_POINTS = 10.0
# The features in a fixed order: the ranking model's inputs and the prompt's.
FEATURE_NAMES = (
    "trend_atr",
    "vwap_atr",
    "relative_volume",
    "volume_confirmed",
    "day_alignment",
    "flow_agrees",
)


def _clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class SetupFeatures:
    """What a scorer knows about one setup, each value relative to the alert's side."""

    side: int  # +1 long, −1 short, 0 a close
    trend_atr: float | None = None
    vwap_atr: float | None = None
    relative_volume: float | None = None
    volume_confirmed: bool | None = None
    day_alignment: float | None = None
    flow_agrees: bool | None = None
    day_type: DayType | None = None

    def vector(self) -> list[float]:
        """The features as numbers in `FEATURE_NAMES` order; a missing one is 0 (neutral),
        except relative volume, whose neutral value is 1."""
        return [
            self.trend_atr or 0.0,
            self.vwap_atr or 0.0,
            1.0 if self.relative_volume is None else self.relative_volume,
            0.0 if self.volume_confirmed is None else (1.0 if self.volume_confirmed else -1.0),
            self.day_alignment or 0.0,
            0.0 if self.flow_agrees is None else (1.0 if self.flow_agrees else -1.0),
        ]

    def as_dict(self) -> dict[str, float | bool | str | None]:
        """JSON-ready, for the prompt and the journal."""
        return {
            "side": {1: "long", -1: "short"}.get(self.side, "close"),
            "trend_atr": None if self.trend_atr is None else round(self.trend_atr, 3),
            "vwap_atr": None if self.vwap_atr is None else round(self.vwap_atr, 3),
            "relative_volume": (
                None if self.relative_volume is None else round(self.relative_volume, 3)
            ),
            "volume_confirmed": self.volume_confirmed,
            "day_type": self.day_type.value if self.day_type else None,
            "day_alignment": None if self.day_alignment is None else round(self.day_alignment, 3),
            "flow_agrees": self.flow_agrees,
        }


def _day_alignment(side: int, day: DayClassification) -> float:
    confidence = _clip(day.confidence, 0.0, 1.0)
    if day.day_type is DayType.NO_TRADE:
        return -1.0
    if day.day_type is DayType.CHOPPY:
        return -confidence / 2
    with_side = (day.day_type is DayType.TREND_UP) == (side > 0)
    return confidence if with_side else -confidence


def setup_features(
    side: Side | None,
    market: MarketSnapshot | None,
    day: DayClassification | None,
    flow: FlowSummary | None,
) -> SetupFeatures:
    """The features of a setup that opens `side` (None: a close, nothing to judge)."""
    if side is None:
        return SetupFeatures(side=0)
    s = 1 if side is Side.BUY else -1
    trend = vwap = rvol = None
    confirmed = None
    if market is not None:
        last = _finite(market.last_price)
        if last is None and market.bars:
            last = market.bars[-1].close
        atr = _finite(market.atr)
        if last is not None and atr is not None and atr > 0:
            if market.bars:
                trend = s * (last - market.bars[0].open) / atr
            if _finite(market.vwap) is not None:
                vwap = s * (last - market.vwap) / atr  # type: ignore[operator]
        rvol = _finite(market.relative_volume)
        if rvol is not None:
            rvol = max(rvol, 0.0)
        if market.volume_confirmation is not None:
            confirmed = market.volume_confirmation.allowed
    return SetupFeatures(
        side=s,
        trend_atr=trend,
        vwap_atr=vwap,
        relative_volume=rvol,
        volume_confirmed=confirmed,
        day_alignment=None if day is None else _day_alignment(s, day),
        flow_agrees=None if flow is None else flow.agrees,
        day_type=None if day is None else day.day_type,
    )


def score_features(features: SetupFeatures) -> Score:
    """The module docstring's formula over `features`, with a reason per input."""
    if features.side == 0:
        return Score(value=NEUTRAL, source="deterministic", reasons=("closes a position",))
    side = "long" if features.side > 0 else "short"
    points = 0.0
    reasons: list[str] = []
    flags: list[str] = []
    if features.trend_atr is None:
        reasons.append("trend: not scored (no bars or ATR)")
    else:
        p = TREND_POINTS * _clip(features.trend_atr / TREND_SCALE_ATR, -1, 1)
        points += p
        reasons.append(f"trend {features.trend_atr:+.2f} ATR for the {side}: {p:+.1f}")
        if features.trend_atr < 0:
            flags.append(f"against the session trend for a {side}")
    if features.vwap_atr is None:
        reasons.append("VWAP: not scored (no VWAP or ATR)")
    else:
        p = VWAP_POINTS * _clip(features.vwap_atr / VWAP_SCALE_ATR, -1, 1)
        points += p
        where = "above" if features.vwap_atr * features.side > 0 else "below"
        reasons.append(
            f"price {where} VWAP ({features.vwap_atr:+.2f} ATR for the {side}): {p:+.1f}"
        )
        if features.vwap_atr < 0:
            flags.append(f"{where} VWAP for a {side}")
    if features.relative_volume is None:
        reasons.append("relative volume: not scored")
    else:
        p = RVOL_POINTS * _clip(features.relative_volume - 1, -1, 1)
        points += p
        reasons.append(f"relative volume {features.relative_volume:.2f}x: {p:+.1f}")
        if features.relative_volume < 0.7:
            flags.append("low relative volume")
    if features.volume_confirmed is not None:
        p = VOLUME_POINTS if features.volume_confirmed else -VOLUME_POINTS
        points += p
        reasons.append(
            f"breakout volume {'confirmed' if features.volume_confirmed else 'not confirmed'}: "
            f"{p:+.1f}"
        )
    if features.day_alignment is None:
        reasons.append("day type: not classified")
    else:
        p = DAY_POINTS * _clip(features.day_alignment, -1, 1)
        points += p
        kind = features.day_type.value if features.day_type else "day"
        reasons.append(f"{kind} day for a {side}: {p:+.1f}")
        if features.day_type is DayType.NO_TRADE:
            flags.append("no-trade day")
        elif features.day_type is DayType.CHOPPY:
            flags.append("choppy day")
        elif features.day_alignment < 0:
            flags.append(f"trend day against the {side}")
    if features.flow_agrees is None:
        reasons.append("flow: none or balanced")
    else:
        p = FLOW_POINTS if features.flow_agrees else -FLOW_POINTS
        points += p
        verb = "agrees" if features.flow_agrees else "disagrees"
        reasons.append(f"options flow {verb}: {p:+.1f}")
        if not features.flow_agrees:
            flags.append(f"flow against the {side}")
    value = round(_clip(NEUTRAL + points, 0.0, 100.0), 1)
    return Score(
        value=value,
        source="deterministic",
        agrees=None if points == 0 else points > 0,
        reasons=tuple(reasons),
        risk_flags=tuple(flags),
    )


def deterministic_score(
    alert: Alert,
    market: MarketSnapshot | None,
    day: DayClassification | None,
    flow: FlowSummary | None,
) -> Score:
    """The setup's score by the module docstring's formula (source "deterministic")."""
    return score_features(setup_features(alert.entry_side, market, day, flow))
