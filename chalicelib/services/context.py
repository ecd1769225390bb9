"""`gather_context`: the one step that collects what the rules see besides the account.

The market snapshot, the day type and the options flow are fetched in parallel, each from
the source the user chose, within one deadline; the score comes after them (it reads them)
within its own. A source that fails or is late leaves its slot empty and says why in
`gaps` — the decision goes on without it, so a slow or failing vendor never blocks an
order. A late source's thread is left to finish on its own (its client's timeout bounds
it); its answer is dropped.

The gathering runs before the account lease is taken (it needs no positions), so a slow
vendor never holds up the other decisions either; `MarketView.context` then joins it with
the account the lease protects into the frozen `DecisionContext` the rules receive.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain import (
    NO_DATA,
    Account,
    Action,
    Alert,
    DayClassification,
    DecisionContext,
    FlowSummary,
    MarketPosition,
    MarketSnapshot,
    Order,
    Position,
    Score,
)

log = logging.getLogger(__name__)

MarketSource = Callable[[Alert, datetime], MarketSnapshot | None]
DaySource = Callable[[Alert, datetime], DayClassification | None]
FlowSource = Callable[[Alert, datetime], FlowSummary | None]
# The scorer reads what the other sources found; it returns the score and its journal
# record (prompt, answer, cost, fallback).
ScoreSource = Callable[[Alert, "MarketView", datetime], tuple[Score, dict[str, Any]]]

_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="context")


@dataclass(frozen=True)
class ContextSources:
    """Where each slot comes from (None: the slot stays empty, "not configured")."""

    market: MarketSource | None = None
    day: DaySource | None = None
    flow: FlowSource | None = None
    score: ScoreSource | None = None
    deadline_s: float = 1.5  # market, day type and flow together
    score_deadline_s: float = 5.0  # the scorer's own (its client times out first)


@dataclass(frozen=True)
class MarketView:
    """What the sources said about the alert's market, before the account is read."""

    market: MarketSnapshot | None = None
    day: DayClassification | None = None
    flow: FlowSummary | None = None
    score: Score | None = None
    gaps: dict[str, str] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)  # e.g. the scorer's prompt/answer

    def context(
        self,
        now: datetime,
        account: Account,
        positions: tuple[Position, ...] | list[Position],
        working_orders: tuple[Order, ...] | list[Order] = (),
    ) -> DecisionContext:
        return DecisionContext(
            now=now,
            account=account,
            positions=tuple(positions),
            working_orders=tuple(working_orders),
            market=self.market,
            day=self.day,
            flow=self.flow,
            score=self.score,
            gaps=dict(self.gaps),
            timings_ms=dict(self.timings_ms),
        )

    def as_record(self) -> dict[str, Any]:
        """The journal's view: each slot's gist, what is missing and why, how long each took."""
        record: dict[str, Any] = {"gaps": self.gaps, "timings_ms": self.timings_ms}
        if self.market is not None:
            record["market"] = self.market.model_dump(mode="json", exclude={"bars"}) | {
                "bars": len(self.market.bars)
            }
        if self.day is not None:
            record["day"] = self.day.model_dump(mode="json")
        if self.flow is not None:
            record["flow"] = self.flow.model_dump(mode="json")
        if self.score is not None:
            record["score"] = self.score.model_dump(mode="json")
        return record


def wants_score(alert: Alert) -> bool:
    """A pure exit is never scored: closing is never gated by a score, and costs nothing."""
    return alert.action is not Action.EXIT and alert.market_position is not MarketPosition.FLAT


def gather_context(
    alert: Alert,
    sources: ContextSources,
    now: datetime,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> MarketView:
    """Fill every slot the sources can within their deadlines; never raises."""
    gaps: dict[str, str] = {}
    timings: dict[str, float] = {}
    found: dict[str, Any] = {}
    started = clock()
    pending: dict[str, Future[Any]] = {}
    for name, source in (("market", sources.market), ("day", sources.day), ("flow", sources.flow)):
        if source is None:
            gaps[name] = "not configured"
            continue
        pending[name] = _POOL.submit(_timed, source, clock, alert, now)
    for name, future in pending.items():
        left = max(0.0, sources.deadline_s - (clock() - started))
        answer, gap, took = _settle(future, left, sources.deadline_s)
        if took is not None:
            timings[name] = took
        if gap:
            gaps[name] = gap
        else:
            found[name] = answer
    records: dict[str, Any] = {}
    score: Score | None = None
    view = MarketView(market=found.get("market"), day=found.get("day"), flow=found.get("flow"))
    if sources.score is None:
        gaps["score"] = "not configured"
    elif not wants_score(alert):
        gaps["score"] = "not scored: the alert only exits"
    else:
        future = _POOL.submit(_timed, sources.score, clock, alert, view, now)
        answer, gap, took = _settle(future, sources.score_deadline_s, sources.score_deadline_s)
        if took is not None:
            timings["score"] = took
        if gap:
            gaps["score"] = gap
        else:
            score, records["score"] = answer
    return MarketView(
        market=view.market,
        day=view.day,
        flow=view.flow,
        score=score,
        gaps=gaps,
        timings_ms=timings,
        records=records,
    )


def _timed(source: Callable[..., Any], clock: Callable[[], float], *args: Any) -> tuple[Any, float]:
    t0 = clock()
    answer = source(*args)
    return answer, round(1000.0 * (clock() - t0), 3)


def _settle(
    future: Future[Any], wait_s: float, deadline_s: float
) -> tuple[Any, str | None, float | None]:
    """(answer, gap, ms) of one source: a gap names the timeout or the error, never a secret
    (adapters raise plain reasons); an empty answer is a gap too."""
    try:
        answer, took = future.result(timeout=wait_s)
    except FutureTimeout:
        return None, f"timed out after {deadline_s:g} s", None
    except Exception as exc:  # a source's failure is a gap, never the decision's
        log.warning("context source failed: %s: %s", type(exc).__name__, exc)
        return None, f"failed: {type(exc).__name__}: {exc}", None
    if answer is None:
        return None, NO_DATA, took
    return answer, None, took
