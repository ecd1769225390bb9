"""A queue batch of several alerts: gather every context at once, then decide in rank order.

The contexts are gathered in parallel before any decision (each within its own deadline, as
a single alert's is), the alerts are ranked (`rules/ranking.py`) and the worker decides them
one by one in that order, each with the context gathered here. A batch of one is decided as
it always was. An alert that cannot be read or is already decided is left to
`process_alert`, which says why, after the ranked ones.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain import Alert
from chalicelib.ports import AlertStore
from chalicelib.rules.rank_model import RankModel
from chalicelib.rules.ranking import Signal, Standing, batch_order, rank_of
from chalicelib.rules.score import setup_features
from chalicelib.services.attempt import CLAIMABLE
from chalicelib.services.context import ContextSources, MarketView, gather_context, wants_score

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """What the batch gathered for one alert: its context and its standing."""

    view: MarketView
    standing: Standing


def prepare_batch(
    alert_ids: list[str],
    store: AlertStore,
    sources: ContextSources,
    now: datetime,
    *,
    model: RankModel | None = None,
) -> tuple[list[str], dict[str, Prepared]]:
    """(the order to decide `alert_ids` in, what was prepared for each ranked one)."""
    alerts: dict[str, Alert] = {}
    for alert_id in dict.fromkeys(alert_ids):
        record = store.get(alert_id)
        if record is None or record["status"] not in CLAIMABLE:
            continue
        try:
            alerts[alert_id] = Alert.model_validate(record["alert"])
        except ValueError:
            continue  # process_alert records why
    if len(alerts) < 2:
        return list(dict.fromkeys(alert_ids)), {}
    with ThreadPoolExecutor(max_workers=min(len(alerts), 8), thread_name_prefix="batch") as pool:
        futures = {
            a: pool.submit(gather_context, alert, sources, now) for a, alert in alerts.items()
        }
        views = {a: f.result() for a, f in futures.items()}
    signals = []
    for alert_id, alert in alerts.items():
        view = views[alert_id]
        features = setup_features(alert.entry_side, view.market, view.day, view.flow)
        rank, basis = rank_of(features, view.score, model)
        signals.append(Signal(alert_id, not wants_score(alert), rank, basis))
    standings = batch_order(signals)
    prepared = {s.alert_id: Prepared(views[s.alert_id], s) for s in standings}
    order = [s.alert_id for s in standings]
    order += [a for a in dict.fromkeys(alert_ids) if a not in prepared]
    log.info("batch of %d ranked: %s", len(order), [(s.alert_id, s.rank) for s in standings])
    return order, prepared
