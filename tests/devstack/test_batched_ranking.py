"""The local stack batches as SQS would: with FLOWTRADER_RANK_WINDOW_S the worker gathers
the alerts that arrive within the window and decides them as one ranked batch, so the
cooldown's one slot goes to one of them and the others say they were outranked.

The window is Lambda's SQS `MaximumBatchingWindowInSeconds` ("The maximum amount of time to
gather records before invoking the function", 0–300 s; AWS CDK `SqsEventSourceProps`,
https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_lambda_event_sources.SqsEventSourceProps.html)."""

from __future__ import annotations

from pathlib import Path

from tests.devstack.stack import Stack, alert


def test_alerts_within_the_window_are_one_ranked_batch(tmp_path: Path):
    stack = Stack(
        tmp_path,
        FLOWTRADER_RANK_WINDOW_S="2",
        FLOWTRADER_MAX_TRADES_PER_HOUR="1",
        FLOWTRADER_MAX_OPEN_POSITIONS="0",
    )
    try:
        ids = []
        for symbol in ("AAPL", "MSFT", "NVDA"):
            status, body = stack.request("/webhook", alert(symbol))
            assert status == 202, body
            ids.append(body["alert_id"])
        decided = stack.wait_decided(ids, timeout_s=60)
        assert sorted(decided.values()) == ["filled", "rejected", "rejected"], decided
        ranks = {}
        for alert_id in ids:
            events = stack.request(f"/api/alerts/{alert_id}/journal", auth=True)[1]["events"]
            ranks[alert_id] = next(e["data"] for e in events if e["event"] == "rank")
        assert sorted(r["place"] for r in ranks.values()) == [1, 2, 3]
        assert {r["entries"] for r in ranks.values()} == {3}
        for alert_id, outcome in decided.items():
            if outcome == "rejected":
                reason = stack.request(f"/api/alerts/{alert_id}", auth=True)[1]["reason"]
                assert "outranked" in reason, reason
    finally:
        assert stack.stop() == 0, stack.console
