"""The gate: runs every check on a proposed order and reserves the cooldown slot atomically.

Live (process_alert) and the backtest use it the same way::

    gate = Gate.from_limits(RiskLimits(max_trades_per_hour=3, max_daily_loss_usd=500))
    result = gate.admit(Proposal(intent, account, positions), state, now)
    if result.allowed:
        ...place the order...   # if the broker refuses it: gate.release(proposal, state)
    else:
        result.reason           # "cooldown: 3 trades on the account in the last 60 min ..."

`evaluate` runs all checks (no short-circuit, so the journal shows each verdict) and writes
nothing. `admit` evaluates, then — only when every check allowed — asks each reserving
check (the cooldown) to claim its slot in `state` atomically; a claim lost to a concurrent
order turns into a cooldown denial. `state` is any `RiskState`: `InMemoryRiskState` in the
backtest, the DynamoDB store live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from chalicelib.domain import Verdict
from chalicelib.rules.checks import (
    Check,
    Cooldown,
    DailyLossLimit,
    FlowAgreement,
    KillSwitch,
    MarketHours,
    MaxGrossExposure,
    MaxOpenPositions,
    MaxPositionNotional,
    MinScore,
    NoTradeDay,
    PatternDayTrader,
    Proposal,
    ReservingCheck,
    VolumeConfirmation,
)
from chalicelib.rules.risk_state import RiskState

__all__ = ["Gate", "GateResult", "Proposal", "RiskLimits", "default_checks"]


@dataclass(frozen=True)
class RiskLimits:
    """Every limit the default checks enforce. A limit of 0 turns its check off."""

    kill_switch: bool = False
    market_hours_only: bool = True
    max_trades_per_hour: int = 3
    cooldown_per_symbol: int = 0
    cooldown_window: timedelta = field(default=timedelta(minutes=60))
    max_daily_loss_usd: float = 0.0
    max_open_positions: int = 0
    max_position_notional_usd: float = 0.0
    max_gross_exposure_usd: float = 0.0
    pdt_guard: bool = True
    # Day type and volume (issue 11): the score check reads `choppy_min_score` (0: no raise)
    # on a choppy day; entries need volume confirmation when `require_volume_confirmation`.
    choppy_min_score: float = 0.0
    require_volume_confirmation: bool = False
    # Flow (issue 12): deny entries whose options flow disagrees with their side.
    require_flow_agreement: bool = False
    # Score (issue 12): entries need at least this score (0..100; 0: off).
    min_score: float = 0.0


def default_checks(limits: RiskLimits) -> tuple[Check, ...]:
    """The standard checks, cheapest and most absolute first."""
    return (
        KillSwitch(engaged_by_setting=limits.kill_switch),
        MarketHours(enabled=limits.market_hours_only),
        NoTradeDay(),
        VolumeConfirmation(enabled=limits.require_volume_confirmation),
        FlowAgreement(required=limits.require_flow_agreement),
        MinScore(min_score=limits.min_score, choppy_min_score=limits.choppy_min_score),
        DailyLossLimit(max_loss_usd=limits.max_daily_loss_usd),
        MaxOpenPositions(max_positions=limits.max_open_positions),
        MaxPositionNotional(max_notional_usd=limits.max_position_notional_usd),
        MaxGrossExposure(max_exposure_usd=limits.max_gross_exposure_usd),
        PatternDayTrader(enabled=limits.pdt_guard),
        Cooldown(
            max_trades=limits.max_trades_per_hour,
            per_symbol=limits.cooldown_per_symbol,
            window=limits.cooldown_window,
        ),
    )


@dataclass(frozen=True)
class GateResult:
    """Every check's verdict, in order; allowed only when all of them allowed."""

    verdicts: tuple[Verdict, ...]

    @property
    def allowed(self) -> bool:
        return all(v.allowed for v in self.verdicts)

    @property
    def denials(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.allowed)

    @property
    def reason(self) -> str:
        """The denials' reasons joined ("" when allowed): what the alert's outcome says."""
        return "; ".join(v.reason for v in self.denials)

    @property
    def until(self) -> datetime | None:
        """When the latest denial lifts, where every denial knows (else None)."""
        untils = [v.until for v in self.denials]
        if not untils or any(u is None for u in untils):
            return None
        return max(u for u in untils if u is not None)

    def as_records(self) -> list[dict[str, Any]]:
        """The verdicts as JSON-ready dicts, for the journal and the alert's details."""
        return [v.model_dump(mode="json", exclude_none=True) for v in self.verdicts]


class Gate:
    """Runs `checks` in order; `admit` also reserves what the reserving checks hold."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = tuple(checks)

    @classmethod
    def from_limits(cls, limits: RiskLimits) -> Gate:
        return cls(default_checks(limits))

    def evaluate(self, proposal: Proposal, state: RiskState, now: datetime) -> GateResult:
        """Every check's verdict; writes nothing."""
        return GateResult(tuple(check(proposal, state, now) for check in self.checks))

    def admit(self, proposal: Proposal, state: RiskState, now: datetime) -> GateResult:
        """Evaluate, then reserve the cooldown slot(s) atomically if everything allowed."""
        result = self.evaluate(proposal, state, now)
        if not result.allowed:
            return result
        reserved: list[ReservingCheck] = []
        for index, check in enumerate(self.checks):
            reserve = getattr(check, "reserve", None)
            if reserve is None:
                continue
            verdict = reserve(proposal, state, now)
            if not verdict.allowed:
                for earlier in reserved:
                    earlier.release(proposal, state)
                verdicts = list(result.verdicts)
                verdicts[index] = verdict
                return GateResult(tuple(verdicts))
            reserved.append(cast(ReservingCheck, check))
        return result

    def release(self, proposal: Proposal, state: RiskState) -> None:
        """Give back reserved slots when the order was not placed (the broker refused it)."""
        for check in self.checks:
            release = getattr(check, "release", None)
            if release is not None:
                release(proposal, state)
