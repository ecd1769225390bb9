"""The daily model budget in memory (`ScoreBudget` port): tests, a local run without AWS.
The same contract as `dynamodb_score_budget` (tests/score/test_score_budget.py runs both)."""

from __future__ import annotations

from datetime import date


class InMemoryScoreBudget:
    """The same budget in memory (tests, the backtest, a local run without AWS)."""

    def __init__(self) -> None:
        self._spent: dict[date, float] = {}

    def reserve(self, day: date, amount_usd: float, cap_usd: float) -> bool:
        spent = self._spent.get(day, 0.0)
        if spent + amount_usd > cap_usd + 1e-12:
            return False
        self._spent[day] = spent + amount_usd
        return True

    def settle(self, day: date, delta_usd: float) -> None:
        self._spent[day] = self._spent.get(day, 0.0) + delta_usd

    def spent_usd(self, day: date) -> float:
        return self._spent.get(day, 0.0)
