"""Valid price increments, so no stop or limit is rejected for a sub-penny price.

US equities (Reg NMS rule 612): $0.01 at or above $1.00, $0.0001 below it.
"""

from __future__ import annotations

import math


def tick_size(price: float) -> float:
    return 0.01 if price >= 1.0 else 0.0001


def round_to_tick(price: float, direction: str = "nearest") -> float:
    """Round `price` to its tick: "nearest", "down" (floor) or "up" (ceil).

    Stops are rounded away from the market side that would trigger them early by the caller
    choosing the direction; the result is a float with no binary-noise digits.
    """
    tick = tick_size(price)
    steps = price / tick
    if direction == "down":
        n = math.floor(steps + 1e-9)
    elif direction == "up":
        n = math.ceil(steps - 1e-9)
    elif direction == "nearest":
        n = math.floor(steps + 0.5)
    else:
        raise ValueError(f"unknown rounding direction {direction!r}")
    decimals = 2 if tick == 0.01 else 4
    rounded = round(n * tick, decimals)
    # Rounding a price just under $1 up can cross into the penny regime; re-snap once.
    return round(rounded, 2) if rounded >= 1.0 else rounded
