"""Signals that arrive together compete by rank for the cooldown's remaining slots.

The queue hands the worker the alerts that arrived together in one batch (a bar close that
fires several strategies, or `FLOWTRADER_RANK_WINDOW_S` of batching). They are decided one
after another under the account lease, so the order *is* the competition: the cooldown
(`Cooldown` in rules/checks.py) gives its remaining slots to the first entries it sees.
`batch_order` puts alerts that only exit first (they take no slot and reduce risk), then
entries best-ranked first; ties and unranked entries keep their arrival order.

An entry's rank is the ranking model's P(winner) (`rules/rank_model.py`, written by
`python -m backtest rank-train`) when one is configured, else its setup score (GPT or the
deterministic formula, 0–100, as a fraction), else none (ranked last).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.domain import Score
from chalicelib.rules.rank_model import RankModel
from chalicelib.rules.score import SetupFeatures


@dataclass(frozen=True)
class Signal:
    """One alert of a batch, as it competes: `exits_only` alerts never compete."""

    alert_id: str
    exits_only: bool
    rank: float | None = None
    basis: str = "unranked"


@dataclass(frozen=True)
class Standing:
    """Where an alert stood in its batch, journaled with its decision."""

    alert_id: str
    rank: float | None
    basis: str
    place: int  # 1-based among the batch's entries (0: an exit, it does not compete)
    entries: int  # how many entries competed
    ahead: tuple[str, ...] = field(default_factory=tuple)  # better-ranked entries

    def as_record(self) -> dict[str, object]:
        return {
            "rank": None if self.rank is None else round(self.rank, 4),
            "basis": self.basis,
            "place": self.place,
            "entries": self.entries,
            "ahead": list(self.ahead),
        }

    def outranked_note(self) -> str:
        """What a cooldown denial adds when better-ranked entries of the batch took slots."""
        if not self.ahead:
            return ""
        rank = "unranked" if self.rank is None else f"rank {self.rank:.2f} ({self.basis})"
        return (
            f"; outranked: {rank}, {self.place} of {self.entries} entries that arrived "
            f"together, after {', '.join(self.ahead)}"
        )


def rank_of(
    features: SetupFeatures, score: Score | None, model: RankModel | None
) -> tuple[float | None, str]:
    """(rank, what it is): the model's P(winner), else the score as a fraction, else None."""
    if model is not None:
        return model.probability(features), "model P(winner)"
    if score is not None:
        return score.value / 100.0, f"{score.source} score"
    return None, "unranked"


def batch_order(signals: list[Signal]) -> list[Standing]:
    """The order to decide a batch in, with each alert's standing (module docstring)."""
    exits = [s for s in signals if s.exits_only]
    entries = [s for s in signals if not s.exits_only]
    arrival = {s.alert_id: i for i, s in enumerate(signals)}
    entries.sort(key=lambda s: (s.rank is None, -(s.rank or 0.0), arrival[s.alert_id]))
    order = [Standing(s.alert_id, s.rank, s.basis, 0, len(entries)) for s in exits]
    for place, s in enumerate(entries, start=1):
        ahead = tuple(e.alert_id for e in entries[: place - 1])
        order.append(Standing(s.alert_id, s.rank, s.basis, place, len(entries), ahead))
    return order
