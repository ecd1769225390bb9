"""Signals that arrive together (one SQS batch) compete by rank for the cooldown's slots
(issue 12): through app.py's queue handler, on the embedded AWS and the paper broker, with
the cooldown at one trade an hour. The score slot is a port; here it answers per ticker, as
the GPT scorer or the formula would with different setups.

The batch is Lambda's SQS event source's (AWS CDK `SqsEventSourceProps`,
https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_lambda_event_sources.SqsEventSourceProps.html):
"batchSize … Valid Range: Minimum value of 1. Maximum value of 10" without a batching window;
"maxBatchingWindow … Maximum value of 5 minutes. Default: no batching window. The lambda
function will be invoked immediately with the records that are available"; and
"reportBatchItemFailures: Allow functions to return partially successful responses for a
batch of records" — the `batchItemFailures` these tests read."""

from __future__ import annotations

import json

import pytest

from chalicelib import bootstrap
from chalicelib.domain import Score
from chalicelib.services.context import ContextSources
from tests.ingress.helpers import alert_body, post, sqs_event

SCORES = {"AAPL": 40.0, "MSFT": 90.0, "NVDA": 70.0}


@pytest.fixture
def scored(client, monkeypatch):
    monkeypatch.setenv("FLOWTRADER_MAX_TRADES_PER_HOUR", "1")
    monkeypatch.setenv("FLOWTRADER_MARKET_HOURS_ONLY", "false")
    built = bootstrap.Container.context_sources

    def with_scores(self):
        sources = built.fget(self)

        def score(alert, view, now):
            value = SCORES[alert.symbol]
            return Score(value=value, source="gpt", reasons=(f"{alert.symbol} setup",)), {}

        return ContextSources(
            market=sources.market,
            day=sources.day,
            flow=sources.flow,
            score=score,
            deadline_s=sources.deadline_s,
            score_deadline_s=sources.score_deadline_s,
        )

    monkeypatch.setattr(bootstrap.Container, "context_sources", property(with_scores))
    bootstrap.reset()
    return client


def _alert(client, symbol: str, **fields) -> str:
    body = alert_body(ticker=f"NASDAQ:{symbol}", **fields)
    return json.loads(post(client, body).body)["alert_id"]


def _journal(alert_id: str) -> dict:
    return {e["event"]: e["data"] for e in bootstrap.container().state_store.journal(alert_id)}


def test_the_best_ranked_entry_of_a_batch_gets_the_one_slot_and_the_others_say_why(scored):
    from app import process_alerts

    ids = {s: _alert(scored, s) for s in ("AAPL", "MSFT", "NVDA")}  # arrival order
    exit_id = _alert(scored, "TSLA", action="exit")
    batch = [json.dumps({"alert_id": ids[s]}) for s in ("AAPL", "MSFT", "NVDA")]
    result = process_alerts(sqs_event(*batch, json.dumps({"alert_id": exit_id})), None)

    assert result == {"batchItemFailures": []}
    store = bootstrap.container().alert_store
    status = {s: store.get(a) for s, a in ids.items()}
    assert status["MSFT"]["status"] == "filled", status["MSFT"]["reason"]
    for loser, place in (("NVDA", 2), ("AAPL", 3)):
        reason = status[loser]["reason"]
        assert status[loser]["status"] == "rejected"
        assert "cooldown" in reason
        assert f"outranked: rank {SCORES[loser] / 100:.2f} (gpt score), {place} of 3" in reason
        assert ids["MSFT"] in reason
    assert store.get(exit_id)["status"] == "ignored"  # nothing held: an exit takes no slot
    ranks = {s: _journal(a)["rank"] for s, a in ids.items()}
    assert [ranks[s]["place"] for s in ("MSFT", "NVDA", "AAPL")] == [1, 2, 3]
    assert ranks["NVDA"]["ahead"] == [ids["MSFT"]]
    assert _journal(exit_id)["rank"]["place"] == 0
    orders = bootstrap.container().broker.list_orders()
    assert [o.symbol for o in orders] == ["MSFT"]  # one order, the best-ranked


def test_a_batch_of_one_is_decided_as_before_without_a_rank(scored):
    from app import process_alerts

    alert_id = _alert(scored, "NVDA")
    assert process_alerts(sqs_event(json.dumps({"alert_id": alert_id})), None) == {
        "batchItemFailures": []
    }
    assert bootstrap.container().alert_store.get(alert_id)["status"] == "filled"
    assert "rank" not in _journal(alert_id)


def test_a_redelivered_batch_decides_nothing_twice(scored):
    from app import process_alerts

    ids = [_alert(scored, s) for s in ("AAPL", "MSFT")]
    event = sqs_event(*(json.dumps({"alert_id": a}) for a in ids))
    process_alerts(event, None)
    process_alerts(event, None)  # SQS delivers the batch again
    orders = bootstrap.container().broker.list_orders()
    assert [o.symbol for o in orders] == ["MSFT"]


def test_a_batch_records_each_outcome_before_it_answers_and_a_failed_record_is_redelivered(
    scored, monkeypatch
):
    """In a batch an alert's outcome is written while the next one is decided; the batch
    answers the queue only once every outcome is written, and one that could not be is
    reported for redelivery, whose retry finds the order and records it (never places it
    again)."""
    from app import process_alerts

    ids = {s: _alert(scored, s) for s in ("AAPL", "MSFT")}
    store = bootstrap.container().alert_store
    honest = store.record_outcome

    def flaky(alert_id, *args, **kwargs):
        if alert_id == ids["MSFT"] and kwargs.get("details") is not None:
            raise RuntimeError("the alerts table is unreachable")
        return honest(alert_id, *args, **kwargs)

    monkeypatch.setattr(store, "record_outcome", flaky)
    event = sqs_event(*(json.dumps({"alert_id": ids[s]}) for s in ("AAPL", "MSFT")))
    assert process_alerts(event, None) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert store.get(ids["AAPL"])["status"] == "rejected"  # outranked, and recorded
    assert store.get(ids["MSFT"])["status"] == "received"  # decided, not recorded

    monkeypatch.setattr(store, "record_outcome", honest)
    again = sqs_event(json.dumps({"alert_id": ids["MSFT"]}))
    assert process_alerts(again, None) == {"batchItemFailures": []}
    record = store.get(ids["MSFT"])
    assert record["status"] == "filled"
    assert "already placed" in record["reason"]
    assert [o.symbol for o in bootstrap.container().broker.list_orders()] == ["MSFT"]
