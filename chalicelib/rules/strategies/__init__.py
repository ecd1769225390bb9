"""Built-in strategies: signals computed over whole bar arrays, shared by live and backtest.

A strategy is a pure function ``(bars: BarArrays, **params) -> np.ndarray[int8]`` giving,
for every bar, what the strategy wants once that bar has closed (see `Signal`). Signals use
only bars ``<= i`` at index ``i``; when and at what price they fill is the executor's
business (the live order path, or the backtest's fill model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np


class Signal(IntEnum):
    """What a bar's close asks for. Stored as int8 in signal arrays."""

    NONE = 0
    LONG = 1  # be long: open one, or reverse a short into one
    SHORT = -1  # be short: open one, or reverse a long into one
    FLAT = 2  # close whatever is open
    EXIT_LONG = 3  # close a long, leave a short alone
    EXIT_SHORT = 4  # close a short, leave a long alone


@dataclass(frozen=True)
class BarArrays:
    """Bars as parallel arrays (prices in USD, volume in shares).

    `session_id` labels the trading session (exchange-local date) each bar belongs to; it
    must be non-decreasing. Daily bars have one bar per session.
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    session_id: np.ndarray

    def __len__(self) -> int:
        return int(self.close.size)


class UnknownStrategy(ValueError):
    """The configuration names a strategy that does not exist."""


StrategyFn = Callable[..., np.ndarray]


def _registry() -> dict[str, StrategyFn]:
    from chalicelib.rules.strategies.opening_range import opening_range_breakout
    from chalicelib.rules.strategies.sma_cross import sma_cross

    return {
        "sma_cross": sma_cross,
        "opening_range_breakout": opening_range_breakout,
        "orb": opening_range_breakout,
    }


def strategy_names() -> list[str]:
    return sorted(_registry())


def compute_signals(name: str, bars: BarArrays, params: dict[str, Any]) -> np.ndarray:
    """Run the named built-in strategy over `bars`; raises UnknownStrategy or TypeError."""
    registry = _registry()
    if name not in registry:
        raise UnknownStrategy(
            f"unknown strategy {name!r}; built-ins: {', '.join(sorted(registry))}"
        )
    return registry[name](bars, **params)
