"""The flow slot of a decision: one ticker's options flow, dark-pool prints and net-premium
ticks around an alert, summarised by `rules/flow.summarize_flow`.

The three vendor calls run side by side and the whole lookup is bounded by one timeout
(the source's `timeout_s`, from FLOWTRADER_UW_TIMEOUT_S, unless the caller passes a shorter
one): past it, `FlowUnavailable` is raised at once and the calls still in flight are left to
their own request timeouts. Flow alerts are required; dark-pool prints and ticks are
optional, and a missing one is named in the summary's `details["gaps"]`.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain import FlowSummary, Side
from chalicelib.ports import FlowSource, FlowUnavailable
from chalicelib.rules.flow import DEFAULT_MIN_IMBALANCE, darkpool_window_average, summarize_flow

log = logging.getLogger(__name__)

FLOW_ALERTS_LIMIT = 200  # the vendor's largest page


def _outcome(future: Future[Any], done: set[Future[Any]], what: str, budget: float) -> Any:
    if future not in done:
        raise FlowUnavailable(f"{what}: no answer within {budget:g} s")
    try:
        return future.result()
    except FlowUnavailable:
        raise
    except Exception as exc:  # a bug or an unexpected error in the source: still no flow
        raise FlowUnavailable(f"{what} failed: {type(exc).__name__}: {exc}") from exc


def flow_summary_for(
    symbol: str,
    side: Side | None,
    source: FlowSource,
    now: datetime,
    *,
    window_minutes: int,
    timeout_s: float | None = None,
    min_imbalance: float = DEFAULT_MIN_IMBALANCE,
) -> FlowSummary:
    """`symbol`'s flow over the `window_minutes` before `now`, judged against `side` (the
    alert's entry side; None for a close). Raises `FlowUnavailable` within the timeout."""
    budget = source.timeout_s if timeout_s is None else min(timeout_s, source.timeout_s)
    # Whole minutes, so concurrent alerts on one ticker ask the same question (shared cache).
    since = (now - timedelta(minutes=window_minutes)).replace(second=0, microsecond=0)
    pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="flow")
    try:
        alerts = pool.submit(
            source.flow_alerts, (symbol,), newer_than=since, limit=FLOW_ALERTS_LIMIT
        )
        darkpool = pool.submit(source.darkpool, symbol)
        ticks = pool.submit(source.net_prem_ticks, symbol)
        futures: list[Future[Any]] = [alerts, darkpool, ticks]
        done, _ = wait(futures, timeout=budget)
        prints = _outcome(alerts, done, "flow alerts", budget)
        gaps: dict[str, str] = {}
        optional: dict[str, list[Any]] = {}
        for name, future in (("darkpool", darkpool), ("net_prem_ticks", ticks)):
            try:
                optional[name] = _outcome(future, done, name, budget)
            except FlowUnavailable as exc:
                gaps[name] = str(exc)
                optional[name] = []
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    prints_dark = optional["darkpool"]
    summary = summarize_flow(
        prints,
        prints_dark,
        optional["net_prem_ticks"],
        symbol=symbol,
        side=side,
        now=now,
        window_minutes=window_minutes,
        darkpool_avg=darkpool_window_average(prints_dark, now=now, window_minutes=window_minutes),
        min_imbalance=min_imbalance,
        source=source.name,
    )
    if gaps:
        log.info("flow for %s without %s", symbol, ", ".join(sorted(gaps)))
        summary = summary.model_copy(update={"details": {**summary.details, "gaps": gaps}})
    return summary
